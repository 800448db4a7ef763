"""``fastsd eval``: WTA accuracies, linear probe and per-class errors of a saved model."""
from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING

from .common import add_data_argument, add_saved_model_command, load_data

if TYPE_CHECKING:
    from ..base import PrototypeModel


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fastsd eval`` to the subcommand parsers."""
    p = add_saved_model_command(
        subparsers, "eval", help="evaluate a saved model on the data set it was trained on",
        description="Load a model (.npz) and a data set (the one it was trained on, if "
                    "its file says, else MNIST, unless --dataset or --data say "
                    "otherwise), print the WTA test accuracy for every "
                    "score that applies (cosine, raw, response), the linear probe's "
                    "accuracy, the neurons without class and the errors per class.")
    add_data_argument(p, saved_model=True)
    p.add_argument("--no-probe", action="store_true",
                   help="skip the linear probe (a few seconds)")
    p.add_argument("--probe-features", default=None,
                   choices=["logit", "response", "drive"],
                   help="features of the linear probe (see fastsd.probe.linear_probe; "
                        "default: logit if the rule defines logits, else drive)")
    p.set_defaults(func=run)


def describe(model: PrototypeModel, path: str | os.PathLike) -> str:
    """One line naming the model: type, neurons, dtype, samples seen."""
    params = model.get_params()
    seen = getattr(model, "samples_seen_", None)
    parts = [f"{type(model).__name__}", f"{params.get('n_neurons', '?')} neurons",
             str(params.get("dtype", "float64"))]
    if seen is not None:
        parts.append(f"{seen} samples seen")
    return f"model: {path} ({', '.join(parts)})"


def run(args: argparse.Namespace) -> int:
    """Evaluate a saved model (WTA scores, probe, class errors); returns the exit code."""
    from .. import load
    from ..evaluate import wta_all

    model = load(args.model)
    print(describe(model, args.model))
    data = load_data(args, model)
    start = time.perf_counter()
    results = wta_all(model, data.x_train, data.y_train, data.x_test, data.y_test)
    seconds = time.perf_counter() - start
    print()
    print(f"{'evaluation':<26} {'test accuracy':>13}  {'neurons without class':>21}")
    for score, res in results.items():
        print(f"{score + ' WTA':<26} {100 * res.accuracy:>12.2f}%  "
              f"{len(res.unassigned):>21}")
    if not args.no_probe:
        from ..probe import linear_probe
        start_probe = time.perf_counter()
        probe = linear_probe(model, data.x_train, data.y_train, data.x_test, data.y_test,
                             features=args.probe_features)
        note = "" if probe.converged else f" (not converged in {probe.n_iter} iterations)"
        print(f"{'linear probe (' + probe.features + ')':<26} "
              f"{100 * probe.accuracy:>12.2f}%{note}")
        probe_seconds = time.perf_counter() - start_probe
    print()
    cosine = results["cosine"]
    print("errors per class, " + cosine.table())
    print()
    timing = f"WTA evaluation {seconds:.2f} s"
    if not args.no_probe:
        timing += f", linear probe {probe_seconds:.1f} s"
    print(timing)
    return 0
