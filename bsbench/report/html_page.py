"""A self-contained HTML report page: a table of contents, then sections; no external URL, no script.

Every report page bsbench writes (compare --html, sweep and capacity
report.html) is built here. Text from records, spec files and paths goes
through `safe_text.html_text`; plots are embedded as base64 PNG data URIs (or
linked by a path relative to the page), so the page opens from disk, offline.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bsbench.report.style import scheduler_color
from bsbench.safe_text import html_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-top:1px solid #ddd;padding-top:1em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
thead th{background:#f4f4f4}td.best{font-weight:bold;color:#0a7d2c}
td.ratio,th.ratio{color:#777}
table.config td,table.config th{text-align:left}table.config td:first-child{color:#555;white-space:nowrap}
.note{background:#fff6e0;border-left:4px solid #f0a500;padding:.5em 1em;margin:.5em 0}
.simulated{color:#8b008b;font-weight:bold}
nav.toc{background:#f7f7f7;border:1px solid #e3e3e3;padding:.5em 1.5em;margin:1em 0}
nav.toc ol{margin:.3em 0;padding-left:1.5em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0;display:block}
.runs{font-size:.85em;color:#555}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:baseline}
"""


@dataclass(slots=True)
class Section:
    """One entry of the table of contents and its body: HTML fragments, user text already escaped.
    `anchor` (optional) seeds the section's id; write_page makes it unique and [a-z0-9-] only."""

    title: str
    body: list[str] = field(default_factory=list)
    anchor: str = ""


def anchor_for(title: str, taken: set[str]) -> str:
    """A unique id made of [a-z0-9-] from a title (never user-controlled markup)."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "section"
    anchor, n = base, 2
    while anchor in taken:
        anchor, n = f"{base}-{n}", n + 1
    taken.add(anchor)
    return anchor


def img_tag(png: Path, page: Path, embed: bool = True) -> str:
    """An <img> of `png`: a data URI when `embed`, else a path relative to the page (the PNG must stay beside it)."""
    alt = html_text(png.stem.replace("_", " "))
    if embed:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return f"<img alt='{alt}' src='data:image/png;base64,{data}'>"
    rel = Path(os.path.relpath(png.resolve(), page.resolve().parent)).as_posix()
    return f"<img alt='{alt}' src='{html_text(rel)}'>"


def swatch(scheduler: str) -> str:
    """A small square in the scheduler's colour (the same colour as its lines in the plots)."""
    return f"<span class='swatch' style='background:{scheduler_color(scheduler)}'></span>"


def key_value_table(rows: Iterable[tuple[str, str]], raw_values: bool = False) -> str:
    """A two-column table; values are escaped unless `raw_values` (then they must be escaped HTML)."""
    cells = "".join(f"<tr><td>{html_text(k)}</td><td>{v if raw_values else html_text(v)}</td></tr>" for k, v in rows)
    return f"<table class='config'><tbody>{cells}</tbody></table>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain table of text cells (all escaped)."""
    head = "".join(f"<th>{html_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str, cls: str = "") -> str:
    return f"<p{f' class={chr(39)}{cls}{chr(39)}' if cls else ''}>{html_text(text)}</p>"


def write_page(path: str | Path, title: str, sections: Sequence[Section], intro: Sequence[str] = ()) -> Path:
    """Write the page atomically: the title, `intro` fragments, a table of contents, then every section."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for section in sections:
        section.anchor = anchor_for(section.anchor or section.title, taken)
    toc = "".join(f"<li><a href='#{s.anchor}'>{html_text(s.title)}</a></li>" for s in sections)
    body = [f"<h1>{html_text(title)}</h1>", *intro,
            f"<nav class='toc' id='contents'><b>Contents</b><ol>{toc}</ol></nav>"]
    for section in sections:
        body.append(f"<h2 id='{section.anchor}'>{html_text(section.title)}</h2>")
        body += section.body
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html_text(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
