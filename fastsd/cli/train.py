"""``fastsd train``: train a rule on MNIST, report accuracy, save model and picture.

``--rule sd`` (default) is SparseDream; ``--rule kh`` is Krotov & Hopfield's rule.
"""
from __future__ import annotations

from .._compile import stop as stop_warming
from .._compile import warm_evaluator
from ..api import TRAIN_DEFAULTS
from .common import add_data_argument, add_model_arguments, model_params
from .krotov_args import add_krotov_arguments, krotov_params

#: ``--rule kh`` defaults: the settings found to reach ~91% cosine WTA with 100 units.
KROTOV_TRAIN = dict(eps0=0.05, delta=0.2, epochs=20, samples_per_epoch=0)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train SparseDream (or Krotov-Hopfield) on MNIST",
        description="Train on MNIST, print the cosine WTA test accuracy and the time "
                    "taken, save the model (.npz) and a weight picture (.png).")
    p.add_argument("--rule", choices=["sd", "kh"], default="sd",
                   help="sd = SparseDream (default), kh = Krotov & Hopfield")
    add_model_arguments(p, {**TRAIN_DEFAULTS, "prec": 1e-10})
    add_krotov_arguments(p, KROTOV_TRAIN)
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs, a fresh permutation each (default: sd "
                        f"{TRAIN_DEFAULTS['epochs']}, kh {KROTOV_TRAIN['epochs']})")
    p.add_argument("--samples-per-epoch", type=int, default=None,
                   help=f"samples per epoch, 0 = all 60000 (default: sd "
                        f"{TRAIN_DEFAULTS['samples_per_epoch'] or 'all'}, kh all)")
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
    from ..datasets import load_mnist
    from ..evaluate import cosine_wta
    from ..krotov import KrotovHopfield
    from ..sparsedream import SparseDream

    grid = parse_grid(args.grid)
    if args.rule == "kh":
        model = KrotovHopfield(**krotov_params(args))
        defaults = KROTOV_TRAIN
    else:
        model = SparseDream(**model_params(args))
        defaults = TRAIN_DEFAULTS
    params = model._check_params()  # fail on bad flags before loading data
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    per_epoch = (args.samples_per_epoch if args.samples_per_epoch is not None
                 else defaults["samples_per_epoch"]) or None
    # On first use the evaluator compiles in a second process while this one compiles
    # the training pass (each takes seconds; Numba compiles one function at a time).
    warming = warm_evaluator(params["dtype"])
    try:
        data = load_mnist(args.data)
        print(f"data: {data.source}")
        model.fit(data.x_train, data.y_train, epochs=epochs, samples_per_epoch=per_epoch,
                  eval_set=(data.x_test, data.y_test), progress=not args.no_progress)
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
