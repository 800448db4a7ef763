"""The speed table: every training path at N = 100, 400, 1600, 6400, in one run.

    python tools/bench_table.py [--neurons 100 400 1600 6400] [--quick]
                                [--out bench/results/speed_table]

For each N and path: the seconds of one 60k-sample MNIST epoch from a fresh model, and
of the next epoch (an already-trained model), float32 unless said otherwise. Paths whose
epoch would take minutes (the numpy references, the exact per-sample rule at large N)
are timed on the first ``S`` samples of the epoch and extrapolated to 60 000, and the
table says so (``S`` in the "timed" column). Kernels are compiled before timing.
Settings: SparseDream ``xi=0.02, sp=1/N, gamma=1, beta=0.005`` (mini-batches B=100,
``min_response`` default); Krotov-Hopfield ``eps0=0.02, delta=0.4, p=2, k=2``, batch
100. Then one default ``fastsd.train()`` run (N=100, per-sample, 8 epochs) with its
per-epoch seconds. Writes ``OUT.json`` and ``OUT.md`` atomically and prints the
Markdown; ``--from-json OUT.json`` only rewrites the Markdown from a saved run.
``--quick`` times ten times fewer samples (a smoke run). Ratios to the numpy code are
taken on the trained epochs (the first numpy epoch also starts BLAS's threads).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)

from bandwidth import cpu_model  # noqa: E402
from krotov_notebook import notebook_init, notebook_krotov  # noqa: E402
from notebook import notebook_sparsedream  # noqa: E402

import fastsd  # noqa: E402
from fastsd._io import atomic_open  # noqa: E402
from fastsd.datasets import load_mnist  # noqa: E402

EPOCH = 60_000
#: Samples timed per path and N (None: the whole epoch); the rest is extrapolated.
SUBSET = {
    "numpy SparseDream (notebook loop, float64)": {100: 6000, 400: 2000, 1600: 300, 6400: 20},
    # at least three chunks of 4096 at N >= 1024, so the pass can choose two threads
    "fastsd per-sample": {100: None, 400: None, 1600: 20000, 6400: 12300},
    "fastsd mini-batch B=100": {100: None, 400: None, 1600: None, 6400: None},
    "numpy Krotov-Hopfield (notebook, float64)": {100: None, 400: 20000, 1600: 6000,
                                                  6400: 1000},
    "fastsd Krotov-Hopfield": {100: None, 400: None, 1600: None, 6400: None},
}


def sparsedream_rates(n: int) -> dict:
    return dict(xi=0.02, sp=1.0 / n, gamma=1.0, beta=0.005, anneal=False)


KH = dict(eps0=0.02, delta=0.4, p=2.0, k=2, batch_size=100)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _two_epochs(make, X, orders) -> tuple[float, float]:
    """Seconds of a pass over ``orders[0]`` from a fresh model, then over ``orders[1]``."""
    model = make()
    model.partial_fit(X[:200], order=np.arange(200))  # compile (a throwaway model)
    model = make()
    return tuple(_timed(lambda o=o: model.partial_fit(X, order=o)) for o in orders)


def measure(path: str, n: int, X32, X64, rng_seed: int) -> dict:
    """One row: seconds per 60k epoch, fresh and trained (extrapolated if subset)."""
    size = SUBSET[path][n] or EPOCH
    rng = np.random.default_rng(rng_seed)
    orders = [rng.permutation(EPOCH)[:size], rng.permutation(EPOCH)[:size]]
    m = X32.shape[1]
    if path.startswith("numpy SparseDream"):
        W = rng.uniform(0.1, 1.0, (n, m))
        t, L = np.zeros(n), np.zeros((n, n))
        times = []
        for order in orders:
            start = time.perf_counter()
            W, t, L = notebook_sparsedream(X64[order], W, t, L, **sparsedream_rates(n))
            times.append(time.perf_counter() - start)
    elif path.startswith("numpy Krotov"):
        W = notebook_init(rng, n, m)
        times = []
        for order in orders:
            start = time.perf_counter()
            notebook_krotov(X64[order], W, rng, Nep=2, epochs=1, eps0=KH["eps0"],
                            delta=KH["delta"], p=KH["p"], k=KH["k"], Num=KH["batch_size"])
            times.append(time.perf_counter() - start)
    else:
        if path == "fastsd Krotov-Hopfield":
            def make():
                return fastsd.KrotovHopfield(n, **KH, dtype="float32", random_state=0)
        else:
            batch = 100 if "mini-batch" in path else 1
            def make():  # noqa: E306
                return fastsd.SparseDream(n, **sparsedream_rates(n), batch_size=batch,
                                          dtype="float32", random_state=0)
        times = list(_two_epochs(make, X32, orders))
    factor = EPOCH / size
    return dict(path=path, n_neurons=n, timed_samples=size,
                fresh_s=times[0] * factor, trained_s=times[1] * factor)


def default_train_run(X) -> dict:
    """One default ``fastsd.train`` run: the seconds of each of its epochs."""
    fastsd.train(X[:500], epochs=1, random_state=0)  # compile
    model = fastsd.train(X, random_state=0)
    seconds = np.diff(model.history_["seconds"])
    return dict(epochs=[float(s) for s in seconds], total=float(np.sum(seconds)),
                slowest_over_fastest=float(seconds.max() / seconds.min()))


def markdown(rows, train_run, header) -> str:
    lines = [header, "",
             "| path | N | fresh epoch s | trained epoch s | timed samples | "
             "vs numpy (same rule and N, trained epochs) |", "|---|---:|---:|---:|---:|---:|"]
    reference = {}
    for row in rows:
        if row["path"].startswith("numpy"):
            reference[("Krotov" in row["path"], row["n_neurons"])] = row["trained_s"]
    for row in rows:
        ref = reference.get(("Krotov" in row["path"], row["n_neurons"]))
        ratio = "" if row["path"].startswith("numpy") or ref is None else \
            f"{ref / row['trained_s']:.1f}x"
        timed = f"{row['timed_samples']:,}" + (" (extrapolated)"
                                                if row["timed_samples"] < EPOCH else "")
        lines.append(f"| {row['path']} | {row['n_neurons']} | {row['fresh_s']:.2f} | "
                     f"{row['trained_s']:.2f} | {timed} | {ratio} |")
    epochs = ", ".join(f"{s:.2f}" for s in train_run["epochs"])
    lines += ["", f"Default `fastsd.train()` (N=100, per-sample, float32, 8 epochs): "
                  f"{train_run['total']:.1f} s; epochs {epochs} s; slowest / fastest "
                  f"{train_run['slowest_over_fastest']:.2f}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[100, 400, 1600, 6400])
    parser.add_argument("--paths", nargs="+", default=list(SUBSET), choices=list(SUBSET),
                        metavar="PATH", help="subset of the paths (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="time ten times fewer samples (smoke run)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                      "speed_table"))
    parser.add_argument("--from-json", default=None, metavar="JSON",
                        help="rewrite OUT.md from a saved OUT.json, measuring nothing")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as fh:
            meta = json.load(fh)
        text = markdown(meta["rows"], meta["default_train"], meta["header"])
        with atomic_open(args.out + ".md", "w") as fh:
            fh.write(text)
        print(text)
        return
    data = load_mnist(download=False)
    X32 = data.x_train.astype(np.float32)
    X64 = data.x_train.astype(np.float64)
    if args.quick:
        for path in SUBSET:
            SUBSET[path] = {n: (s or EPOCH) // 10 for n, s in SUBSET[path].items()}
    header = (f"One 60k-sample MNIST epoch per row, measured in one run on {cpu_model()}, "
              f"{os.cpu_count()} cores, Numba threads {numba.get_num_threads()} "
              f"({time.strftime('%Y-%m-%d %H:%M')}); float32 unless said.")
    print(header, flush=True)
    rows = []
    for n in args.neurons:
        for path in args.paths:
            row = measure(path, n, X32, X64, rng_seed=n)
            rows.append(row)
            print(f"  N={n:<5} {path:<45} fresh {row['fresh_s']:8.2f} s  trained "
                  f"{row['trained_s']:8.2f} s  (timed {row['timed_samples']})", flush=True)
    train_run = default_train_run(X32)
    text = markdown(rows, train_run, header)
    meta = dict(machine=cpu_model(), cores=os.cpu_count(), date=time.strftime("%Y-%m-%d"),
                fastsd=fastsd.__version__, numba_threads=numba.get_num_threads(),
                sparsedream="xi=0.02, sp=1/N, gamma=1, beta=0.005", krotov=KH, rows=rows,
                default_train=train_run, header=header)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_open(args.out + ".json", "w") as fh:
        json.dump(meta, fh, indent=2)
    with atomic_open(args.out + ".md", "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
