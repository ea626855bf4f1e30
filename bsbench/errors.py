"""The one exception type for user errors.

Anything the user can fix (a bad flag, a missing file, malformed data, an
impossible configuration) raises `BsbenchError` with a one-line message that
names the problem. The CLI turns it into that line on stderr and exit code 2;
no traceback is shown.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """"did you mean 'continuous'?" for the choice closest to a mistyped `name` (difflib), or '' when none is
    close enough to be a typo of it."""
    options = list(choices)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6) or \
        difflib.get_close_matches(str(name).lower(), options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


class BsbenchError(Exception):
    """A user-facing error: the message is one line and names the problem."""


class OptionsError(BsbenchError):
    """A policy option outside its allowed values (raised by the options' `validate()`)."""
def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty): what a
    one-line error may quote of a library's failure."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
