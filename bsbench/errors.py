"""The one exception type for user errors.

Anything the user can fix (a bad flag, a missing file, malformed data, an
impossible configuration) raises `BsbenchError` with a one-line message that
names the problem. The CLI turns it into that line on stderr and exit code 2;
no traceback is shown.
"""


class BsbenchError(Exception):
    """A user-facing error: the message is one line and names the problem."""


class OptionsError(BsbenchError):
    """A policy option outside its allowed values (raised by the options' `validate()`)."""
def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty): what a
    one-line error may quote of a library's failure."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
