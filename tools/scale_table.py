"""Accuracy and training time against the number of neurons N, against k-means.

    PYTHONPATH=. python tools/scale_table.py --results bench/results/scale.jsonl \\
        [--methods sd,kh,kmeans,sd-notebook,kh-notebook] [--neurons 100,400,1600] \\
        [--seeds 0,1,2] [--data mnist | digits | mnist-subset:K] \\
        [--evaluate validation | test] [--validation 10000]
    PYTHONPATH=. python tools/scale_table.py --results ... --summary [--literature]

Methods:

- a rule name (``sd``, ``kh``, ``softhebb``, ...): ``fastsd.train(X, rule=...,
  n_neurons=N, random_state=seed)``, i.e. the class defaults (``"auto"`` settings for
  N) and the rule's default epochs for N and the data size (``docs/scaling.md``): what
  a user who changes only N gets;
- ``RULE-PRESET`` (``sd-notebook``, ``kh-notebook``): the same with ``preset=PRESET``;
- ``kmeans``: scikit-learn's ``KMeans(n_clusters=N, n_init=1, random_state=seed)`` on
  the training images (scikit-learn is needed for this method and for ``digits`` only).

Every method is scored alike: ``fastsd.evaluate.wta(..., score="cosine")`` of the
weights (k-means: the cluster centres). ``--evaluate validation`` (default) trains on
all but the last ``--validation`` training images and scores on those; ``test`` trains
on the whole training set and scores on the test set. Data: ``mnist``; ``digits``
(scikit-learn's 1797 8x8 digits scaled to [0, 1], shuffled by a fixed permutation
``default_rng(0)``, the first 1500 as training set, the other 297 as test set);
``mnist-subset:K`` (the first K MNIST training images, the full test set).

The time is that of the fit alone (``time.perf_counter``), after an untimed warm-up fit
of the same settings on 200 images, so no run pays for loading or compiling kernels.
Each (method, N, seed) appends one JSON line to ``--results`` as soon as it ends; a
rerun skips those already there, so an interrupted run resumes. ``--summary`` writes
``scale_table.md``, ``accuracy_vs_n.png`` and ``time_vs_n.png`` (``tools/scale_summary.py``)
into ``--out`` (default: the results file's folder). ``--epochs`` overrides the rules'
epochs, for smoke tests only (the table then says so).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import fastsd  # noqa: E402
import scale_summary  # noqa: E402
from fastsd.evaluate import cosine_wta  # noqa: E402
from fastsd.rules import rule_class, rule_names  # noqa: E402

DIGITS_TRAIN = 1500  #: training images of the ``digits`` split (the other 297 test)
WARM_ROWS = 200  #: images of the untimed warm-up fit


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def parse_method(method: str) -> tuple[str | None, str | None]:
    """``(rule, preset)`` of a method name; ``(None, None)`` for ``kmeans``.

    Raises
    ------
    ValueError
        For a name that is neither ``kmeans``, a rule nor ``RULE-PRESET``.
    """
    if method == "kmeans":
        return None, None
    rule, _, preset = method.partition("-")
    if rule not in rule_names() or preset and preset not in rule_class(rule).presets:
        known = ["kmeans", *rule_names(),
                 *(f"{r}-{p}" for r in rule_names() for p in rule_class(r).presets)]
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(known)}")
    return rule, preset or None


def _kmeans_class():
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise SystemExit("method 'kmeans' and data 'digits' need scikit-learn, an "
                         "optional dependency of this tool: pip install scikit-learn")
    return KMeans


def load_data(name: str, evaluate: str, validation: int) -> dict:
    """Training and evaluation arrays of data set ``name`` for ``evaluate``.

    Returns
    -------
    dict
        ``x_train, y_train, x_eval, y_eval`` and the record fields ``data``,
        ``evaluated_on``, ``n_train``, ``n_eval``.
    """
    if name == "digits":
        _kmeans_class()  # the same optional dependency
        from sklearn.datasets import load_digits
        digits = load_digits()
        order = np.random.default_rng(0).permutation(len(digits.target))
        x = (digits.data[order] / 16.0).astype(np.float32)
        y = digits.target[order].astype(np.int64)
        x_train, y_train, x_test, y_test = (x[:DIGITS_TRAIN], y[:DIGITS_TRAIN],
                                            x[DIGITS_TRAIN:], y[DIGITS_TRAIN:])
    elif name == "mnist" or name.startswith("mnist-subset:"):
        from fastsd.datasets import load_mnist
        data = load_mnist()
        x_train, y_train, x_test, y_test = (data.x_train, data.y_train, data.x_test,
                                            data.y_test)
        if name != "mnist":
            k = name.partition(":")[2]
            if not k.isdigit() or not 1 <= int(k) <= len(y_train):
                raise SystemExit(f"--data {name}: K must be 1..{len(y_train)}")
            x_train, y_train = x_train[:int(k)], y_train[:int(k)]
    else:
        raise SystemExit(f"unknown --data {name!r}; choose mnist, digits or "
                         "mnist-subset:K")
    if evaluate == "validation":
        if not 0 < validation < len(y_train):
            raise SystemExit(f"--validation {validation} must be between 1 and "
                             f"{len(y_train) - 1} (the training images of {name})")
        x_train, y_train, x_test, y_test = (x_train[:-validation], y_train[:-validation],
                                            x_train[-validation:], y_train[-validation:])
    return dict(x_train=x_train, y_train=y_train, x_eval=x_test, y_eval=y_test, data=name,
                evaluated_on=evaluate, n_train=len(y_train), n_eval=len(y_test))


def run_one(method: str, n: int, seed: int, data: dict, epochs: int | None) -> dict:
    """Train and score one (method, N, seed); the fields of its record that vary.

    A preset's ``samples_per_epoch`` larger than the training set is cut to its size
    (and recorded so). A rule that diverges gives ``accuracy`` None and ``error``.

    Returns
    -------
    dict
        ``accuracy`` (fraction), ``seconds`` (fit only), ``epochs``, ``params``.
    """
    x, y = data["x_train"], data["y_train"]
    rule, preset = parse_method(method)
    if rule is None:
        km = _kmeans_class()(n_clusters=n, n_init=1, random_state=seed)
        start = time.perf_counter()
        km.fit(x)
        seconds = time.perf_counter() - start
        weights, used = km.cluster_centers_, None
        params = {**km.get_params(), "n_iter_": int(km.n_iter_)}
    else:
        over = {} if epochs is None else {"epochs": epochs}
        _, _, fit = fastsd.train.settings(rule, preset, n_neurons=n, **over)
        if (fit["samples_per_epoch"] or 0) > len(x):  # a preset's, on small data
            over["samples_per_epoch"] = fit["samples_per_epoch"] = len(x)
        fastsd.train(x[:WARM_ROWS], rule=rule, preset=preset, n_neurons=n,
                     random_state=seed, epochs=1, samples_per_epoch=None)  # warm-up
        start = time.perf_counter()
        try:
            model = fastsd.train(x, rule=rule, preset=preset, n_neurons=n,
                                 random_state=seed, progress=False, **over)
        except fastsd.TrainingDiverged as exc:  # a result too: these settings fail
            return dict(accuracy=None, seconds=time.perf_counter() - start,
                        epochs=fit["epochs"], params=None, error=str(exc))
        seconds = time.perf_counter() - start
        fit = fastsd.train.fit_arguments(model, fit, len(x))
        params = {k: (v.name if isinstance(v, np.dtype) else v)  # "auto" resolved
                  for k, v in model._check_params().items()}
        weights, used = model, fit["epochs"]
        params["samples_per_epoch"] = fit["samples_per_epoch"]
    result = cosine_wta(weights, x, y, data["x_eval"], data["y_eval"])
    return dict(accuracy=float(result.accuracy), seconds=seconds, epochs=used,
                params=params)


def key(record: dict) -> tuple:
    """What identifies a run: method, N, seed and the setting it was measured in."""
    return (record["method"], int(record["n_neurons"]), int(record["seed"]),
            *(record.get(k) for k in scale_summary.SETTING))


def append_record(path, record: dict) -> None:
    """Append ``record`` as one JSON line in one write, then fsync.

    A torn last line left by a crash is ended first, so it stays one bad line that
    :func:`scale_summary.read_records` skips.
    """
    line = json.dumps(record, default=str).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def summarize(args) -> None:
    """Write the table and the pictures of ``args.results`` into ``args.out``."""
    records = scale_summary.read_records(args.results)
    try:
        records = scale_summary.select(records, data=args.data, evaluated_on=args.evaluate,
                                       epochs_override=args.epochs)
    except ValueError as exc:
        raise SystemExit(str(exc))
    if not records:
        raise SystemExit(f"no results in {args.results} for this setting")
    from fastsd._io import atomic_open
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    literature, r = args.literature, records[0]
    if literature and not r["data"].startswith("mnist"):
        print(f"--literature: the quoted figures are for MNIST, not added for {r['data']}")
        literature = False
    stats = scale_summary.aggregate(records)
    text = scale_summary.markdown(stats, records, literature)
    with atomic_open(os.path.join(out, "scale_table.md"), "w") as fh:
        fh.write(text)
    split = "validation split" if r["evaluated_on"] == "validation" else "test set"
    title = f"{r['data']}: cosine WTA on the {split} ({r['n_eval']} images)"
    pngs = scale_summary.pictures(stats, out, literature, title)
    print(text + "\nwrote " + ", ".join(map(str, [os.path.join(out, "scale_table.md"),
                                                  *pngs])))


def parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, help="JSON-lines file of the runs")
    p.add_argument("--methods", default="sd,kh,kmeans")
    p.add_argument("--neurons", type=_ints, default=[100, 400, 1600])
    p.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    p.add_argument("--data", default=None, help="mnist (default), digits, mnist-subset:K")
    p.add_argument("--evaluate", choices=("validation", "test"), default=None,
                   help="default validation")
    p.add_argument("--validation", type=int, default=10_000,
                   help="images of the validation split (the last of the training set)")
    p.add_argument("--epochs", type=int, default=None, help="smoke tests only")
    p.add_argument("--summary", action="store_true",
                   help="only write the table and pictures from --results")
    p.add_argument("--out", default=None, help="folder of the summary files")
    p.add_argument("--literature", action="store_true",
                   help="add the quoted Diehl & Cook 2015 figures (MNIST test set)")
    return p


def main(argv=None) -> None:
    """Run the missing (method, N, seed) runs, or with ``--summary`` summarize them."""
    args = parser().parse_args(argv)
    if args.summary:
        return summarize(args)
    args.data, args.evaluate = args.data or "mnist", args.evaluate or "validation"
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        for method in methods:
            parse_method(method)
    except ValueError as exc:
        raise SystemExit(str(exc))
    if "kmeans" in methods:
        _kmeans_class()
    data = load_data(args.data, args.evaluate, args.validation)
    setting = dict(data=args.data, evaluated_on=args.evaluate, n_eval=data["n_eval"],
                   epochs_override=args.epochs)
    done = {key(r) for r in scale_summary.read_records(args.results)}
    for n in args.neurons:
        for method in methods:
            for seed in args.seeds:
                record = dict(method=method, n_neurons=n, seed=seed, **setting)
                if key(record) in done:
                    print(f"{method} N={n} seed={seed}: done before, skipped")
                    continue
                record.update(run_one(method, n, seed, data, args.epochs),
                              n_train=data["n_train"], cpu=cpu_model(),
                              cores=os.cpu_count(), fastsd=fastsd.__version__,
                              finished=time.strftime("%Y-%m-%d %H:%M:%S"))
                append_record(args.results, record)
                done.add(key(record))
                acc = record["accuracy"]
                print(f"{method} N={n} seed={seed}: "
                      + (f"diverged: {record['error']}" if acc is None else
                         f"{100 * acc:.2f}% in {record['seconds']:.2f} s"), flush=True)


if __name__ == "__main__":
    main()
