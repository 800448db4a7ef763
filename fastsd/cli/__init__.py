"""The ``fastsd`` command line: one module per subcommand.

Each module in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and
sets ``func`` to the function that runs it with the parsed arguments and returns an
exit code. Errors a user can fix (bad values, missing files, unreadable data) are
printed as one line on stderr with exit code 2, never as a traceback; so is a model
too large for the memory available. Ctrl-C ends a command with exit code 130, and a
closed output pipe (``fastsd eval ... | head``) quietly with 141.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

from .._version import __version__

COMMANDS = ["train", "eval", "plot", "sweep"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog="fastsd",
        description="Fast, exact SparseDream and competing local-learning networks.")
    parser.add_argument("--version", action="version", version=f"fastsd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastsd`` console script."""
    try:
        parser = build_parser()  # imports numba, scikit-learn and the rules
    except KeyboardInterrupt:
        print("fastsd: interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print("fastsd: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"fastsd {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _stdout_closed() -> int:
    """The reader of our output went away (``fastsd eval ... | head``): stop quietly,
    as command-line tools do, with the status of SIGPIPE (128 + 13).

    Standard output is pointed at ``os.devnull`` so that the interpreter's own flush at
    exit does not report the broken pipe again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured)
        pass
    return 141


def console() -> None:
    """The ``fastsd`` console script and ``python -m fastsd``: :func:`main`, then exit
    with its status. Ctrl-C after the command's work is done (while the interpreter
    shuts down) no longer kills the process by SIGINT: the work is complete."""
    code = main()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
