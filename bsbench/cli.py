"""The `bsbench` command line: the group, one-line error handling, and command discovery.

Each command lives in its own module under `bsbench/commands/` and exposes a
click command (or group) named `command`. User errors end with one line on
stderr and exit code 2; no traceback. Ctrl-C exits 130, SIGTERM 143, each
after the interrupted run's record is written (interrupts.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import NoReturn

import click

import bsbench.commands as package
from bsbench import __version__
from bsbench.errors import BsbenchError
from bsbench.interrupts import EXIT_INTERRUPTED, SignalsSeen, sigterm_as_interrupt
from bsbench.redaction import redact
from bsbench.safe_text import plain


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bsbench")
def cli() -> None:
    """Benchmark and compare LLM batching schedulers on one shared model runner."""


def _add_commands() -> None:

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        command = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "command", None)
        if isinstance(command, click.Command):
            cli.add_command(command)


_add_commands()


def fail(message: str) -> NoReturn:
    """Print a one-line user error and exit 2."""
    click.echo(f"bsbench: error: {plain(redact(message.splitlines()[0])) if message else 'unknown error'}", err=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2, Ctrl-C into 130 and
    SIGTERM into 143 (both after the interrupted run's record is written; see interrupts.py)."""
    with sigterm_as_interrupt() as signals:
        code = _run(argv, signals)
    sys.exit(signals.exit_code(code))


def _run(argv: list[str] | None, signals: SignalsSeen) -> int:
    try:
        # standalone_mode=False makes click *return* the code of a command's Exit(n) instead of raising
        code = cli.main(args=argv, prog_name="bsbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # a command's own sys.exit(n)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        raise
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"bsbench: {'terminated' if signals.terminated else 'interrupted'}", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        fail(exc.format_message())
    except BsbenchError as exc:
        fail(str(exc))
    except BrokenPipeError:
        return 0
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
