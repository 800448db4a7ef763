"""``fastsd train``: train a rule on MNIST (or ``--dataset`` / ``--data``), report accuracy, save model and picture.

``--rule`` picks a registered rule (:mod:`fastsd.rules`); its parameters are flags
(:mod:`fastsd.cli.rule_args`) that default to the rule's class defaults, and
``--preset`` starts from one of the rule's named settings.
"""
from __future__ import annotations

import argparse
import os
import sys

from .._compile import stop as stop_warming
from .._compile import warm_evaluator
from ..rules import DEFAULT_RULE, rule_classes, rule_names
from .common import add_data_argument, load_data
from .rule_args import add_rule_arguments, flag, rule_params


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fastsd train`` (with every registered rule's flags) to the subcommand parsers."""
    names = rule_names()
    presets = sorted({p for cls in rule_classes().values() for p in cls.presets})
    p = subparsers.add_parser(
        "train", help="train a rule (SparseDream by default) on MNIST or --dataset",
        description="Train on MNIST (or --dataset / --data), print the cosine WTA test accuracy and the time "
                    "taken, save the model (.npz) and a weight picture (.png).")
    p.add_argument("--rule", choices=names, default=None,
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
                   help="samples per epoch, 0 = all (default all)")
    add_rule_arguments(p)
    add_data_argument(p)
    p.add_argument("--out", default=None,
                   help="where to save the model, after every epoch (a checkpoint; "
                        "default model.npz, or the file given to --resume)")
    p.add_argument("--resume", default=None, metavar="MODEL",
                   help="continue the interrupted training saved in MODEL, exactly as "
                        "it would have run (same data; no rule, preset, epoch or "
                        "parameter flags)")
    p.add_argument("--weights-png", default="weights.png",
                   help="where to draw the weight tapestry ('' to skip)")
    p.add_argument("--grid", default=None, metavar="ROWSxCOLS",
                   help="tapestry grid, e.g. 10x10 (default: near-square)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """'10x10' -> (10, 10); None stays None."""
    if text is None:
        return None
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--grid must look like 10x10, got {text!r}") from None
    return rows, cols


def run(args: argparse.Namespace) -> int:
    """Train the chosen rule on the data set (or resume), report, save model and picture;
    returns the exit code."""
    from ..evaluate import cosine_wta
    from ..fitting import check_checkpoint_path

    grid = parse_grid(args.grid)
    if args.out == "":
        raise ValueError("--out must name a file, got ''")
    model, fit = _resumed(args) if args.resume else _new_model(args)
    out = args.out or args.resume or "model.npz"
    check_checkpoint_path(out)
    params = model._check_params()  # fail on bad flags before loading data
    if grid is not None:
        from ..plotting import grid_shape
        grid_shape(params["n_neurons"], grid)  # a bad --grid fails now, not after training
    # On first use the evaluator compiles in a second process while this one compiles
    # the training pass (each takes seconds; Numba compiles one function at a time).
    warming = warm_evaluator(params["dtype"])
    before = _file_id(out)
    try:
        data = load_data(args, model if args.resume else None)
        options = dict(eval_set=(data.x_test, data.y_test), progress=not args.no_progress,
                       checkpoint=out)
        if args.resume:
            model.resume_fit(data.x_train, data.y_train, **options)
        else:
            from ..train import fit_arguments
            fit = fit_arguments(model, fit, len(data.x_train))
            model.fit(data.x_train, data.y_train, **fit, **options)
    except KeyboardInterrupt:
        _report_interrupt(out if _file_id(out) != before else args.resume)
        raise
    finally:
        stop_warming(warming)
    model.dataset_ = data.name  # so that eval and plot read the same data set
    model.save(out)
    seconds = model.history_["seconds"][-1]
    result = cosine_wta(model.weights_, data.x_train, data.y_train, data.x_test,
                        data.y_test)
    print(f"trained {model.samples_seen_} samples in {seconds:.1f} s "
          f"({model.samples_seen_ / max(seconds, 1e-9):,.0f} samples/s; compilation and "
          "evaluation excluded)")
    print(f"cosine WTA test accuracy: {100 * result.accuracy:.2f}%")
    print(f"model saved to {out}")
    if args.weights_png:
        from ..plotting import plot_weights
        plot_weights(model.weights_, args.weights_png, image_shape=data.image_shape,
                     grid=grid, labels=list(result.neuron_classes),
                     title=f"{type(model).__name__} weights, cosine WTA "
                           f"{100 * result.accuracy:.1f}%")
        print(f"weights drawn to {args.weights_png}")
    return 0


def _new_model(args):
    """The model and fit arguments that the rule, preset and parameter flags ask for."""
    from ..rules import rule_class
    from ..train import settings

    rule = args.rule or DEFAULT_RULE
    given = rule_params(args, rule_class(rule))
    if args.epochs is not None:
        given["epochs"] = args.epochs
    if args.samples_per_epoch is not None:
        given["samples_per_epoch"] = args.samples_per_epoch or None
    cls, params, fit = settings(rule, args.preset, **given)
    return cls(**params), fit


def _resumed(args):
    """The model saved in ``--resume``; flags that would change the run are refused."""
    from ..persistence import load

    given = [name for name, value in (("--rule", args.rule), ("--preset", args.preset),
                                      ("--epochs", args.epochs),
                                      ("--samples-per-epoch", args.samples_per_epoch))
             if value is not None]
    given += [flag(dest[len("rule_"):]) for dest, value in vars(args).items()
              if dest.startswith("rule_") and value is not None]
    if given:
        raise ValueError(f"--resume continues the saved run as it was; drop "
                         f"{', '.join(given)}")
    model = load(args.resume)
    progress = getattr(model, "_fit_progress", None)
    if progress is None:
        raise ValueError(f"{args.resume} holds no unfinished training to resume (it was "
                         "not written by fastsd train or fit(..., checkpoint=))")
    if progress.finished:
        print(f"{args.resume}: all {progress.epochs} epochs were already done; "
              "evaluating it")
    else:
        print(f"resuming {args.resume}: epoch {progress.epochs_done} of "
              f"{progress.epochs} done")
    return model, None


def _file_id(path):
    """What tells whether ``path`` was rewritten (None if it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _report_interrupt(written: str | None) -> None:
    """Tell, after Ctrl-C, which checkpoint holds the run and how to continue it.
    ``written``: the file this run wrote or resumed from, None if neither."""
    from ..persistence import load
    progress = None
    if written is not None:
        try:
            progress = load(written)._fit_progress
        except (ValueError, OSError):
            progress = None
    if progress is None:
        print("\ninterrupted before the first epoch ended: no checkpoint was written",
              file=sys.stderr)
        return
    print(f"\ninterrupted: {written} holds epoch {progress.epochs_done} of "
          f"{progress.epochs}; continue with: fastsd train --resume {written}",
          file=sys.stderr)
