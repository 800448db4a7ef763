"""The speed table: every training path on one 60k MNIST epoch at N=100, in one run.

    python tools/bench_table.py [--threads 1] [--out bench/results/speed_table]

Rows: the notebook-style numpy SparseDream loop, fastsd per-sample float64 and float32,
fastsd mini-batch, Krotov & Hopfield's notebook-style numpy code, fastsd
Krotov-Hopfield. For each: samples/s (warm: Numba compiles before timing), the ratio to
the numpy SparseDream loop, and the cosine WTA test accuracy after that one epoch
(seed 0). Writes ``OUT.json`` and ``OUT.md`` atomically and prints the Markdown.
``--threads`` caps Numba's and BLAS's threads (set before numpy is imported).
"""
from __future__ import annotations

import argparse
import os
import sys


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for Numba and BLAS (default: all cores)")
    parser.add_argument("--out", default="bench/results/speed_table",
                        help="output path without extension")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="SparseDream mini-batch size (default %(default)s)")
    return parser.parse_args(argv)


ARGS = _parse(sys.argv[1:]) if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from krotov_notebook import notebook_init, notebook_krotov  # noqa: E402
from notebook import notebook_sparsedream  # noqa: E402

import fastsd  # noqa: E402
from fastsd._io import atomic_open  # noqa: E402
from fastsd.datasets import load_mnist  # noqa: E402
from fastsd.evaluate import cosine_wta  # noqa: E402

N = 100
SD = dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005)
KH = dict(eps0=0.05, delta=0.4, p=2.0, k=2)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    args = ARGS
    data = load_mnist()
    x64 = data.x_train.astype(np.float64)
    x32 = data.x_train.astype(np.float32)
    n = x64.shape[0]

    def accuracy(W):
        return cosine_wta(W, data.x_train, data.y_train, data.x_test, data.y_test).accuracy

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    rows = []

    def add(name, seconds, W, note=""):
        rows.append(dict(path=name, seconds=seconds, samples_per_s=n / seconds,
                         accuracy=accuracy(W), note=note))
        print(f"  {name:<40} {seconds:7.2f} s  {n / seconds:10,.0f} samples/s  "
              f"{100 * rows[-1]['accuracy']:.2f}%", flush=True)

    print(f"one {n}-sample epoch, N={N}; {machine()}; threads={args.threads or 'all'}")
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    W0 = rng.uniform(0.1, 1.0, (N, x64.shape[1]))

    sec, (W, _, _) = timed(lambda: notebook_sparsedream(
        x64[order], W0.copy(), np.zeros(N), np.zeros((N, N)), **SD))
    add("numpy SparseDream loop (notebook)", sec, W, "float64")

    def sparsedream(dtype, batch):
        def make():
            model = fastsd.SparseDream(N, **SD, batch_size=batch, dtype=dtype)
            model.weights_ = W0.astype(dtype)
            model.thresholds_ = np.zeros(N, dtype)
            model.inhibition_ = np.zeros((N, N), dtype)
            return model
        X = x32 if dtype == "float32" else x64
        make().partial_fit(X, order=order[:2 * batch])  # compile
        model = make()
        sec, _ = timed(lambda: model.partial_fit(X, order=order))
        return sec, model.weights_

    add("fastsd SparseDream per-sample float64", *sparsedream("float64", 1))
    add("fastsd SparseDream per-sample float32", *sparsedream("float32", 1))
    add(f"fastsd SparseDream mini-batch B={args.batch_size} float32",
        *sparsedream("float32", args.batch_size))

    def kh_numpy():
        r = np.random.default_rng(0)
        W = notebook_init(r, N, x64.shape[1])
        return notebook_krotov(x64, W, r, Nep=1, Num=100, **KH)

    sec, W = timed(kh_numpy)
    add("numpy Krotov-Hopfield (notebook style)", sec, W, "float64, batch 100")
    for dtype, X in (("float64", x64), ("float32", x32)):
        fastsd.KrotovHopfield(N, **KH, dtype=dtype, random_state=0).fit(X[:2000])
        model = fastsd.KrotovHopfield(N, **KH, dtype=dtype, random_state=0)
        sec, _ = timed(lambda: model.fit(X, epochs=1))
        add(f"fastsd Krotov-Hopfield {dtype}", sec, model.weights_, "batch 100")

    base = rows[0]["seconds"]
    for row in rows:
        row["ratio_to_numpy_sparsedream"] = base / row["seconds"]
    md = [f"One 60k-sample MNIST epoch, N={N}, measured in one run on {machine()}, "
          f"threads: {args.threads or 'all'} ({time.strftime('%Y-%m-%d')}).", "",
          "| training path | s / epoch | samples/s | vs numpy SparseDream | "
          "cosine WTA after 1 epoch |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        md.append(f"| {row['path']} | {row['seconds']:.2f} | {row['samples_per_s']:,.0f} "
                  f"| {row['ratio_to_numpy_sparsedream']:.1f}x | "
                  f"{100 * row['accuracy']:.2f}% |")
    text = "\n".join(md) + "\n"
    meta = dict(machine=machine(), threads=args.threads, date=time.strftime("%Y-%m-%d"),
                fastsd=fastsd.__version__, sparsedream=SD, krotov=KH, rows=rows)
    with atomic_open(args.out + ".json", "w") as fh:
        json.dump(meta, fh, indent=2)
    with atomic_open(args.out + ".md", "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
