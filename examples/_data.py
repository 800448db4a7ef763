"""What the examples share: their command line and the MNIST data they run on.

``--small`` runs an example in seconds on the first 2 000 training and 1 000 test
images, with fewer neurons and at most 20 epochs (the test suite runs every example
that way); its figures show that the code works, not what the rules can do.
"""
from __future__ import annotations

import argparse
import dataclasses

import fastsd
from fastsd.datasets import Dataset, load_mnist

#: Training and test images, and the most epochs, of ``--small``.
SMALL_TRAIN, SMALL_TEST, SMALL_EPOCHS = 2000, 1000, 20


def parse_args(description: str, neurons: int, small_neurons: int,
               **extra: dict) -> argparse.Namespace:
    """The example's arguments: ``--small``, ``--neurons`` (default ``neurons``, or
    ``small_neurons`` with ``--small``), and ``extra`` options as
    ``name=add_argument keywords``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--small", action="store_true",
                        help=f"run in seconds on {SMALL_TRAIN} training and {SMALL_TEST} "
                             "test images with fewer neurons (as the tests do)")
    parser.add_argument("--neurons", type=int, default=None,
                        help=f"number of neurons (default {neurons}; {small_neurons} "
                             "with --small)")
    for name, options in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", **options)
    args = parser.parse_args()
    if args.neurons is None:
        args.neurons = small_neurons if args.small else neurons
    return args


def epochs(model: fastsd.PrototypeModel, n_samples: int, small: bool) -> int:
    """The rule's default number of epochs for ``n_samples`` images per epoch (defaults
    follow N, ``docs/scaling.md``), at most ``SMALL_EPOCHS`` with ``small``."""
    default = model.default_epochs(n_samples)
    return min(default, SMALL_EPOCHS) if small else default


def load_data(small: bool) -> Dataset:
    """MNIST (see ``fastsd.datasets.load_mnist`` for where it is found), cut to the
    first images with ``small``."""
    data = load_mnist()
    if not small:
        return data
    return dataclasses.replace(data, x_train=data.x_train[:SMALL_TRAIN],
                               y_train=data.y_train[:SMALL_TRAIN],
                               x_test=data.x_test[:SMALL_TEST],
                               y_test=data.y_test[:SMALL_TEST])
