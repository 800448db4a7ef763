"""``fastsd sweep``: run a hyper-parameter sweep from a TOML config, or summarize one."""
from __future__ import annotations

import argparse
import os
import sys

from .common import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fastsd sweep`` to the subcommand parsers."""
    p = subparsers.add_parser(
        "sweep", help="run a hyper-parameter sweep on Dask, or summarize its results",
        description="Run every (setting, seed) of CONFIG.toml that is not yet in the "
                    "results file, on a local Dask cluster (one single-threaded worker "
                    "process per core) or an existing one, appending one JSON line per "
                    "run; then print the summary. Runs are scored on a validation split "
                    "held out of the end of the training set unless evaluate = \"test\". "
                    "With --summary FILE, only print the summary of a results file (and "
                    "optionally plot it).",
        epilog="Config: [sweep] rule, seeds, results, scheduler, workers, probe, data, "
               "retries, evaluate, validation; "
               "[base] fixed parameters; [grid] name = [values] (cartesian product) or "
               "[[settings]] tables. See sweeps/example.toml.")
    p.add_argument("config", nargs="?", metavar="CONFIG.toml", help="sweep config")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address (tcp://host:8786) or scheduler file of a running Dask "
                        "cluster (default: start a local one)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--results", metavar="FILE", help="results file (JSON Lines); "
                   "overrides the config's")
    p.add_argument("--data", metavar="PATH", help="MNIST location (see fastsd train)")
    p.add_argument("--probe", action="store_true", default=None,
                   help="also evaluate the linear probe")
    p.add_argument("--evaluate", choices=("validation", "test"),
                   help="score runs on the validation split (the config's validation "
                        "images held out of the end of the training set) or on the test "
                        "set (trained on all training images); overrides the config's "
                        "(default: validation)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = p.add_argument_group("summary")
    g.add_argument("--summary", metavar="FILE",
                   help="print the summary of this results file instead of running")
    g.add_argument("--by", metavar="PARAM", action="append",
                   help="group by this parameter only (repeatable; default: full setting)")
    g.add_argument("--metric", default="cosine",
                   help="cosine, response, probe, seconds or eval_seconds "
                        "(default %(default)s)")
    g.add_argument("--top", type=positive_int, metavar="K",
                   help="show only the best K rows (K >= 1)")
    g.add_argument("--plot", metavar="PARAM", help="plot the metric against PARAM")
    g.add_argument("--out", metavar="PNG", help="where to write the plot "
                   "(default sweep-PARAM.png)")
    p.set_defaults(func=run, _parser=p)


def _summary(path, args) -> None:
    from ..sweep import format_summary, plot_sweep, summarize

    rows = summarize(path, by=args.by, metric=args.metric)
    print(format_summary(rows, max_rows=args.top))
    if args.plot:
        out = args.out or f"sweep-{args.plot}.png"
        plot_sweep(path, args.plot, out, metric=args.metric)
        print(f"plot written to {out}")


def run(args: argparse.Namespace) -> int:
    """Run a sweep config and/or summarise its results; returns the exit code."""
    from ..sweep import SweepError, load_config, sweep

    parser = args._parser
    if (args.config is None) == (args.summary is None):
        parser.error("give either CONFIG.toml or --summary FILE")
    if args.out and not args.plot:
        parser.error("--out needs --plot PARAM")
    if args.summary is not None:
        _summary(args.summary, args)
        return 0
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    kwargs = load_config(args.config, check_settings=False)  # sweep() checks them
    for name, value in (("scheduler", args.scheduler), ("n_workers", args.workers),
                        ("results", args.results), ("data", args.data),
                        ("probe", args.probe), ("evaluate", args.evaluate)):
        if value is not None:
            kwargs[name] = value
    if args.scheduler is not None and args.workers is None:
        kwargs.pop("n_workers", None)  # the config's local-cluster size does not apply
    kwargs.setdefault("results", "sweep.jsonl")
    kwargs["progress"] = not args.no_progress
    try:
        sweep(**kwargs)
    except SweepError as exc:
        print(f"fastsd sweep: error: {exc}", file=sys.stderr)
        status = 1
    else:
        status = 0
    if os.path.exists(kwargs["results"]):
        print(f"results: {kwargs['results']}")
        _summary(kwargs["results"], args)
    return status
