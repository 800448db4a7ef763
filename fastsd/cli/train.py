"""``fastsd train``: train a rule on MNIST, report accuracy, save model and picture.

``--rule`` picks a registered rule (:mod:`fastsd.rules`); its parameters are flags
(:mod:`fastsd.cli.rule_args`) that default to the rule's class defaults, and
``--preset`` starts from one of the rule's named settings.
"""
from __future__ import annotations

from .._compile import stop as stop_warming
from .._compile import warm_evaluator
from ..rules import DEFAULT_RULE, rule_classes, rule_names
from .common import add_data_argument
from .rule_args import add_rule_arguments, rule_params


def register(subparsers) -> None:
    """Add ``fastsd train`` (with every registered rule's flags) to the subcommand parsers."""
    names = rule_names()
    presets = sorted({p for cls in rule_classes().values() for p in cls.presets})
    p = subparsers.add_parser(
        "train", help="train a rule (SparseDream by default) on MNIST",
        description="Train on MNIST, print the cosine WTA test accuracy and the time "
                    "taken, save the model (.npz) and a weight picture (.png).")
    p.add_argument("--rule", choices=names, default=DEFAULT_RULE,
                   help="the learning rule: " + ", ".join(
                       f"{n} = {cls.__name__}" for n, cls in rule_classes().items())
                   + f" (default {DEFAULT_RULE})")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="start from a named setting of the rule (flags still override "
                        f"it): {', '.join(presets) or 'none'}")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs, a fresh permutation each (default: the rule's "
                        "default for --neurons, docs/scaling.md; at 100 neurons on "
                        "MNIST: " + ", ".join(
                            f"{n} {cls().default_epochs(60000)}"
                            for n, cls in rule_classes().items()) + ")")
    p.add_argument("--samples-per-epoch", type=int, default=None,
                   help="samples per epoch, 0 = all 60000 (default all)")
    add_rule_arguments(p)
    add_data_argument(p)
    p.add_argument("--out", default="model.npz", help="where to save the model")
    p.add_argument("--weights-png", default="weights.png",
                   help="where to draw the weight tapestry ('' to skip)")
    p.add_argument("--grid", default=None, metavar="ROWSxCOLS",
                   help="tapestry grid, e.g. 10x10 (default: near-square)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def parse_grid(text):
    """'10x10' -> (10, 10); None stays None."""
    if text is None:
        return None
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--grid must look like 10x10, got {text!r}") from None
    return rows, cols


def run(args) -> int:
    """Train the chosen rule on MNIST, report, save model and picture; returns the exit code."""
    from ..datasets import load_mnist
    from ..evaluate import cosine_wta
    from ..rules import rule_class
    from ..train import fit_arguments, settings

    grid = parse_grid(args.grid)
    given = rule_params(args, rule_class(args.rule))
    if args.epochs is not None:
        given["epochs"] = args.epochs
    if args.samples_per_epoch is not None:
        given["samples_per_epoch"] = args.samples_per_epoch or None
    cls, params, fit = settings(args.rule, args.preset, **given)
    model = cls(**params)
    params = model._check_params()  # fail on bad flags before loading data
    # On first use the evaluator compiles in a second process while this one compiles
    # the training pass (each takes seconds; Numba compiles one function at a time).
    warming = warm_evaluator(params["dtype"])
    try:
        data = load_mnist(args.data)
        print(f"data: {data.source}")
        fit = fit_arguments(model, fit, len(data.x_train))
        model.fit(data.x_train, data.y_train, **fit, eval_set=(data.x_test, data.y_test),
                  progress=not args.no_progress)
    finally:
        stop_warming(warming)
    seconds = model.history_["seconds"][-1]
    result = cosine_wta(model.weights_, data.x_train, data.y_train, data.x_test,
                        data.y_test)
    print(f"trained {model.samples_seen_} samples in {seconds:.1f} s "
          f"({model.samples_seen_ / seconds:,.0f} samples/s; compilation and evaluation "
          f"excluded)")
    print(f"cosine WTA test accuracy: {100 * result.accuracy:.2f}%")
    model.save(args.out)
    print(f"model saved to {args.out}")
    if args.weights_png:
        from ..plotting import plot_weights
        plot_weights(model.weights_, args.weights_png, image_shape=data.image_shape,
                     grid=grid, labels=list(result.neuron_classes),
                     title=f"{type(model).__name__} weights, cosine WTA "
                           f"{100 * result.accuracy:.1f}%")
        print(f"weights drawn to {args.weights_png}")
    return 0
