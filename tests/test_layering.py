"""Import boundaries the design promises: engine/ never imports the layers above it."""

import ast
from pathlib import Path

import bsbench

PACKAGE = Path(bsbench.__file__).parent
ABOVE_ENGINE = ("bsbench.schedulers", "bsbench.bench", "bsbench.commands", "bsbench.cli", "bsbench.report",
                "bsbench.sweep", "bsbench.gate", "bsbench.capacity", "bsbench.plots", "bsbench.plot_base",
                "bsbench.html_page", "bsbench.html_report")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_engine_imports_nothing_above_it():
    offending = [
        f"{path.name}: {name}"
        for path in sorted((PACKAGE / "engine").glob("*.py"))
        for name in _imports(path)
        if name.startswith(ABOVE_ENGINE)
    ]
    assert offending == []


def test_the_layering_check_sees_imports():
    # the scan must see a real import, or the test above could pass vacuously
    assert "bsbench.engine.plan" in _imports(PACKAGE / "engine" / "loop.py")
