"""The root of every error the package raises on purpose, and how a command reports one.

Two kinds, told apart by what the user can do about them:

* `PaeeUserError` (exit status 2): the caller's input, options or environment are at fault (a bad
  document, a checkpoint that is not one, an option the target cannot do, a runtime not installed).
  Fixing the input fixes the run.
* `PaeeFailure` (exit status 1): the input was fine and the package could not do the job (an exported
  graph disagrees with PyTorch, a server did not start, an engine did not build).

Every console script runs its body through `run_command`: a `PaeeError` becomes one line on stderr
and its exit status; anything else is a bug and keeps its traceback. This module imports nothing of
the package, so every floor can use it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Exit status of a command whose input was at fault / whose job failed.
USER_ERROR_STATUS = 2
FAILURE_STATUS = 1


class PaeeError(Exception):
    """Base class of every error the package raises on purpose."""

    exit_status = FAILURE_STATUS


class PaeeUserError(PaeeError, ValueError):
    """The caller's input, options or environment are at fault; the message says what to change."""

    exit_status = USER_ERROR_STATUS


class PaeeFailure(PaeeError, RuntimeError):
    """The input was valid and the package could not do what was asked; the message says what broke."""

    exit_status = FAILURE_STATUS


class ConfigError(PaeeUserError):
    """A configuration that cannot be built (the message shows the bad values)."""


def report(error: PaeeError, prog: str | None = None) -> int:
    """Print ``prog: error: message`` on stderr (no traceback) and return the error's exit status."""
    prog = prog or Path(sys.argv[0]).name or "paee"
    print(f"{prog}: error: {error}", file=sys.stderr)
    return error.exit_status


def run_command(body: Callable[[], int], prog: str | None = None) -> int:
    """Run a console script's body; a `PaeeError` is reported in one line with its exit status, and so is
    an `OSError` (a file that cannot be written, a full disk: the environment's, exit status 2).

    SIGTERM (``kill``, an orchestrator stopping the job) ends the body with `SystemExit` (status 143), so
    that its cleanups run as on Ctrl-C: no scratch folder or partial output outlives the command."""
    previous = None
    if threading.current_thread() is threading.main_thread():  # signal handlers belong to the main thread
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return body()
    except PaeeError as error:
        return report(error, prog)
    except OSError as error:
        return report(PaeeUserError(str(error)), prog)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def console_script(build_parser: Callable[[], Any], body: Callable[[Any], int]) -> Callable[[Sequence[str] | None], int]:
    """A console script's ``main(argv)``: parse the arguments with ``build_parser()``, then run ``body(args)``
    through `run_command` under the parser's program name."""

    def main(argv: Sequence[str] | None = None) -> int:
        parser = build_parser()
        args = parser.parse_args(argv)
        return run_command(lambda: body(args), parser.prog)

    return main


__all__ = [
    "FAILURE_STATUS", "USER_ERROR_STATUS", "ConfigError", "PaeeError", "PaeeFailure", "PaeeUserError", "console_script", "report", "run_command",
]  # fmt: skip
