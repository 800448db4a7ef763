"""``fastsd plot``: pictures of a saved model (weights, confusion, class errors, curve)."""
from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fastsd plot`` to the subcommand parsers."""
    from .common import add_data_argument, add_saved_model_command

    p = add_saved_model_command(
        subparsers, "plot", help="draw pictures of a saved model",
        description="Write weights.png (weight tapestry, each tile labelled with its "
                    "cosine WTA class), confusion.png, class_errors.png and, if the model "
                    "has a training history, learning_curve.png.")
    p.add_argument("--out-dir", default=".", metavar="DIR",
                   help="directory for the PNG files (created if needed)")
    add_data_argument(p, saved_model=True)
    p.add_argument("--grid", default=None, metavar="ROWSxCOLS",
                   help="tapestry grid, e.g. 10x10 (default: near-square)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw the pictures of a saved model; returns the exit code."""
    from .. import load
    from ..evaluate import wta
    from ..plotting import (plot_class_errors, plot_confusion, plot_learning_curve,
                            plot_weights)
    from .common import load_data
    from .eval import describe
    from .train import parse_grid

    grid = parse_grid(args.grid)
    model = load(args.model)
    print(describe(model, args.model))
    data = load_data(args, model)
    result = wta(model, data.x_train, data.y_train, data.x_test, data.y_test)
    os.makedirs(args.out_dir, exist_ok=True)
    acc = f"cosine WTA {100 * result.accuracy:.1f}%"
    name = type(model).__name__

    def draw(plot, filename, *values, **options):
        path = os.path.join(args.out_dir, filename)
        plot(*values, path, **options)
        print(f"wrote {path}")

    labels = [None if c < 0 else int(c) for c in result.neuron_classes]
    draw(plot_weights, "weights.png", model.weights_, image_shape=data.image_shape,
         grid=grid, labels=labels, title=f"{name} weights, {acc}")
    draw(plot_confusion, "confusion.png", result.confusion,
         title=f"{name}: confusion, {acc}")
    draw(plot_class_errors, "class_errors.png", result.misclassified, result.support,
         title=f"{name}: errors per class, {acc}")
    history = getattr(model, "history_", None) or {}
    if any(a == a for a in history.get("accuracy", [])):  # some point is not NaN
        draw(plot_learning_curve, "learning_curve.png", history,
             title=f"{name}: learning curve")
    else:
        print("no test accuracies in the model's training history (train with labels "
              "and eval_set): learning_curve.png skipped")
    return 0
