"""Strings bsbench did not write (from records, spec files, dataset files, paths) made safe to show.

- `plain`: control characters (ESC, BEL, C1 ...; not tab or newline) become
  visible `\\xNN` escapes, so a name cannot move the cursor, recolour the
  terminal or set its title (OSC). For click.echo and other plain output.
- `markup`: `plain`, then rich markup escaped, for anything interpolated into
  a rich string, table title, column or cell: a scheduler named `[/x]` or an
  --out path with brackets prints as written instead of crashing rich.
- `html_text`: `plain`, then HTML-escaped (quotes too), for any text put into
  an HTML page (element content or attribute value).
- `csv_cell`: `plain`, and a cell a spreadsheet would run as a formula
  (= + - @ tab CR at the start) gets a leading apostrophe (OWASP's advice).
"""

from __future__ import annotations

import html
import re
from typing import Any

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(value: Any) -> str:
    """str(value) with every control character but tab and newline shown as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def markup(value: Any) -> str:
    """str(value) safe to interpolate into rich markup: control characters and markup escaped."""
    return escape(plain(value))


def html_text(value: Any) -> str:
    """str(value) safe inside HTML text or a quoted attribute: control characters shown, & < > " ' escaped."""
    return html.escape(plain(value), quote=True)


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet evaluates: strings starting like a formula get a leading apostrophe;
    numbers and None pass unchanged."""
    if not isinstance(value, str):
        return value
    text = plain(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
