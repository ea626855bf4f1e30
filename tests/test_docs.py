"""The documentation holds together: a short README, links that resolve, every scheduler named.

Pure file reading: no bsbench import, no subprocess, so it runs in milliseconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 300

# [text](target) and ![alt](target); the target has no spaces and may carry a "title"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def doc_files() -> list[Path]:
    files = [README, ROOT / "benchmarks" / "README.md", ROOT / "workloads" / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links inside code are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    found = []
    for line in prose_lines(text):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link either
        found += LINK.findall(line)
    return found


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, spaces to '-', punctuation except '-' and '_' dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and '_'
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: {target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: {target}: no heading with anchor #{anchor}")
    return problems


def defined_schedulers() -> list[str]:
    """The name of every scheduler class registered in bsbench/schedulers/ (files with `@register`)."""
    names = []
    for path in sorted((ROOT / "bsbench" / "schedulers").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if not re.search(r"^@register\b", text, re.MULTILINE):
            continue
        names += re.findall(r"^\s+name(?:\s*:\s*[\w\[\]]+)?\s*=\s*[\"']([\w\-]+)[\"']", text, re.MULTILINE)
    return names


def section(text: str, title: str) -> str:
    """The text under the level-2 heading `title`, up to the next level-2 heading."""
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES} (move detail to docs/)"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    assert broken_links(path) == []


def test_readme_scheduler_table_names_every_scheduler():
    names = defined_schedulers()
    assert {"static", "continuous", "uellm", "bucket", "distserve"} <= set(names), names
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    first_cells = {line.split("|")[1].strip() for line in rows}
    missing = [n for n in names if f"`{n}`" not in first_cells]
    assert missing == [], f"README's scheduler table lacks {missing}"


def test_readme_quick_start_has_the_two_commands():
    block = re.search(r"```[^\n]*\n(.*?)```", section(README.read_text(encoding="utf-8"), "Quick start"), re.DOTALL)
    assert block, "the Quick start section has no code block"
    assert "bsbench demo" in block.group(1)
    assert "python -m pytest -q" in block.group(1)


# The checks themselves: each must be able to fail.


def test_link_check_catches_a_broken_link_and_a_bad_anchor(tmp_path: Path):
    (tmp_path / "a.md").write_text("# Top\n\n## Serving a policy: `bsbench serve`\n\n## Top\n", encoding="utf-8")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md) [ok](a.md#serving-a-policy-bsbench-serve) [ok](a.md#top-1) [ok](https://x.org/none.md)\n"
        "```\n[in code](nowhere.md)\n```\n"
        "[gone](missing.md) [bad](a.md#no-such-heading)\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "b.md: missing.md: no such file",
        "b.md: a.md#no-such-heading: no heading with anchor #no-such-heading",
    ]


def test_slug_rule():
    assert github_slug("vLLM's result files") == "vllms-result-files"
    assert github_slug("Disaggregated prefill and decode (`--instances`, `--link`, `distserve`)") == (
        "disaggregated-prefill-and-decode---instances---link-distserve"
    )
    assert github_slug("run_benchmark and repeats") == "run_benchmark-and-repeats"


def test_no_machine_path_in_the_package_or_the_docs():
    """A path of the machine bsbench was written on (/work/..., /home/NAME, /Users/NAME) means nothing to a reader."""
    machine = re.compile(r"(?<![\w.~])/(?:work|home|Users)/\w")
    files = doc_files() + sorted((ROOT / "bsbench").rglob("*.py"))
    found = [f"{path.relative_to(ROOT)}:{n}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if machine.search(line)]
    assert found == []
