"""The layers the design promises, checked on every import (module level and inside functions alike).

Each part of the package has a rank; an import may point only to a part of the same or a lower rank, and
no two parts may import each other. `PARTS` is the whole map: a new folder or top-level module must be
placed in it, or the test fails.
"""

import ast
from pathlib import Path

import bsbench

PACKAGE = Path(bsbench.__file__).parent

# lowest first: a part may import only parts at or below its own rank
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "units", "values", "paths", "safe_json", "safe_text", "jsonio", "progress", "interrupts",
     "environment", "hub", "stats", "redaction"),
    ("workloads",),
    ("record",),
    ("metrics",),
    ("engine",),
    ("model", "predictor"),
    ("sim", "schedulers"),
    ("openai_client",),
    ("backends",),
    ("report", "serve"),
    ("experiments",),
    ("commands",),
    ("cli", "__main__", "__init__"),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """The part of `bsbench.a.b...`: its folder or top-level module; `bsbench` alone is the package's __init__."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    """Every bsbench module `path` imports, wherever the import statement stands."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bsbench":  # from bsbench import metrics, __version__
                names += [f"bsbench.{a.name}" for a in node.names if a.name != "__version__"]
            else:
                names.append(node.module)
    return [n for n in names if n == "bsbench" or n.startswith("bsbench.")]


def _arrows() -> list[tuple[str, str, str]]:
    """(from part, to part, 'file -> module') for every import that crosses parts."""
    arrows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        source = _part(module)
        for name in _imports(path):
            target = _part(name)
            if target != source:
                arrows.append((source, target, f"{path.relative_to(PACKAGE)} -> {name}"))
    return arrows


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert sorted(parts - set(RANK)) == []


def test_imports_point_down_the_layers_only():
    upward = [where for source, target, where in _arrows() if RANK[target] > RANK[source]]
    assert upward == []


def test_no_two_parts_import_each_other():
    pairs = {(s, t) for s, t, _ in _arrows()}
    assert sorted((s, t) for s, t in pairs if (t, s) in pairs and s < t) == []


def test_the_check_sees_imports_inside_functions_too():
    # the scan must see real imports, or the tests above could pass vacuously
    assert "bsbench.engine.plan" in _imports(PACKAGE / "engine" / "instance.py")
    sources = {s for s, _, _ in _arrows()}
    assert {"commands", "experiments", "backends", "engine", "report"} <= sources
    # commands/run.py imports the backends inside its command function (torch stays out of start-up)
    assert any(w.startswith("commands/run.py -> bsbench.backends") for _, _, w in _arrows())


def _imports_inside_functions(path: Path) -> list[tuple[int, bool]]:
    """(line, has a comment) of every import statement inside a function of `path`."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[tuple[int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, True)
            elif isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                above = lines[child.lineno - 2].strip() if child.lineno >= 2 else ""
                found.append((child.lineno, "#" in lines[child.lineno - 1] or above.startswith("#")))
            else:
                visit(child, in_function)

    visit(ast.parse("\n".join(lines)), False)
    return found


def test_imports_inside_functions_are_lazy_heavy_ones_and_say_so():
    # an import inside a function hides an arrow from the module's header; it is there only to keep a heavy
    # dependency (torch, transformers, pandas, an optional extra, ...) out of start-up, and a comment says which
    uncommented = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
                   for line, commented in _imports_inside_functions(path) if not commented]
    assert uncommented == []
    assert len(_imports_inside_functions(PACKAGE / "predictor" / "learned.py")) > 0  # the scan sees them
