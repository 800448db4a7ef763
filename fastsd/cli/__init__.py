"""The ``fastsd`` command line: one module per subcommand.

Each module in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and
sets ``func`` to the function that runs it with the parsed arguments and returns an
exit code. Errors a user can fix (bad values, missing files, unreadable data) are
printed as one line on stderr with exit code 2, never as a traceback; so is a model
too large for the memory available.
"""
from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv=None) -> int:
    """Entry point of the ``fastsd`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("fastsd: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"fastsd {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
