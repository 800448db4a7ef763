"""Krotov & Hopfield: fastsd's compiled pass against the notebook-style numpy loop.

One 60k-sample MNIST epoch at N=100 (batches of 100, p=2, k=2, delta=0.4)::

    python -m pytest bench/bench_krotov.py --benchmark-enable

uses the threads the environment gives (both cores by default: Numba threads for fastsd,
OpenBLAS threads for numpy); prefix ``NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` for
the per-core figure. Script mode::

    python bench/bench_krotov.py [--epochs 10] [--eps0 0.05] [--repeat 3]

times both sides in one run, each with all threads and with one thread (numpy's BLAS
limited through threadpoolctl when it is installed; fastsd with all threads allowed
probes and may run on one, see ``KrotovHopfield``'s notes, and the line says what it
used), prints samples/s and the ratio of the best times, then trains both for the same
epochs from the same initial weights and permutations with the faster setting of each
and prints their cosine WTA test accuracies. Times are whole ``fit`` calls (input checks
included) and whole notebook epochs (the per-epoch copy ``M[perm]`` included).

``python bench/bench_krotov.py --scale`` instead times one float32 epoch at N = 100, 400,
1600 and 6400 (fresh model, batch 100, p=2, k=2) with all threads (the probe decides)
and with one, and the notebook loop on the first ``--notebook-samples`` samples of a
permutation, extrapolated to the epoch (the line says so). pytest-benchmark has the same
rows in the group "Krotov-Hopfield float32 scaling" (the notebook on 6000 samples there).

On a machine whose cores are busy with other work, multi-threaded runs of either side
can be several times *slower* than single-threaded ones (threads wait for each other at
every batch); the script prints the load average so the figures can be read in context.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numba
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from krotov_notebook import notebook_init, notebook_krotov  # noqa: E402

from fastsd import passes  # noqa: E402
from fastsd.krotov import KrotovHopfield  # noqa: E402

N_NEURONS, BATCH = 100, 100
RULE = dict(delta=0.4, p=2.0, k=2)
GROUP = "Krotov-Hopfield, one 60k MNIST epoch, N=100, batch 100"
SCALE_NS = (100, 400, 1600, 6400)
SCALE_GROUP = "Krotov-Hopfield float32 scaling, one 60k MNIST epoch, batch 100"
NOTEBOOK_SAMPLES = 6000


def run_notebook(x64, seed=0, *, epochs=1, eps0=0.02, n_neurons=N_NEURONS):
    """The notebook loop with the shared protocol: W from the generator, then one
    permutation per epoch."""
    rng = np.random.default_rng(seed)
    W = notebook_init(rng, n_neurons, x64.shape[1])
    return notebook_krotov(x64, W, rng, Nep=epochs, eps0=eps0, Num=BATCH, **RULE)


def run_fastsd(X, dtype, seed=0, *, epochs=1, eps0=0.02, n_neurons=N_NEURONS):
    model = KrotovHopfield(n_neurons, eps0=eps0, batch_size=BATCH, dtype=dtype,
                           random_state=seed, **RULE)
    return model.fit(X, epochs=epochs).weights_


@pytest.fixture(scope="module")
def x64(mnist):
    return mnist.x_train.astype(np.float64)


def test_notebook_numpy(benchmark, x64):
    benchmark.group = GROUP
    benchmark.pedantic(run_notebook, args=(x64,), rounds=2, iterations=1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fastsd(benchmark, x64, dtype):
    benchmark.group = GROUP
    X = np.ascontiguousarray(x64, dtype=dtype)
    run_fastsd(X[:1000], dtype)  # compile outside the timing
    benchmark.pedantic(run_fastsd, args=(X, dtype), rounds=3, iterations=1)


@pytest.mark.parametrize("n_neurons", SCALE_NS)
def test_fastsd_scaling(benchmark, x64, n_neurons):
    benchmark.group = SCALE_GROUP
    X = np.ascontiguousarray(x64, dtype=np.float32)
    run_fastsd(X[:1000], "float32", n_neurons=n_neurons)  # compile, touch the memory
    benchmark.pedantic(run_fastsd, args=(X, "float32"), kwargs=dict(n_neurons=n_neurons),
                       rounds=3, iterations=1)


@pytest.mark.parametrize("n_neurons", SCALE_NS)
def test_notebook_scaling_first_6000(benchmark, x64, n_neurons):
    """The notebook loop on 6000 samples (a tenth of the epoch: multiply by 10)."""
    benchmark.group = SCALE_GROUP
    benchmark.pedantic(run_notebook, args=(x64[:NOTEBOOK_SAMPLES],),
                       kwargs=dict(n_neurons=n_neurons), rounds=1, iterations=1)


# -- script mode ------------------------------------------------------------------------
def _blas_threads(n):
    """Limit numpy's BLAS to ``n`` threads (no-op without threadpoolctl or if None)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("  (threadpoolctl not installed: BLAS thread count not changed)")
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


@contextlib.contextmanager
def _numba_threads(n):
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def scale(x64, repeat, notebook_samples):
    """Print the ``--scale`` table: float32 epochs at each of :data:`SCALE_NS`."""
    x32 = np.ascontiguousarray(x64, dtype=np.float32)
    n = x64.shape[0]
    all_threads = numba.config.NUMBA_NUM_THREADS
    print(f"{SCALE_GROUP}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"best of {repeat}, wall time of fit (warm)")
    for n_neurons in SCALE_NS:
        run_fastsd(x32[:1000], "float32", n_neurons=n_neurons)  # compile
        cells = []
        for threads in sorted({all_threads, 1}, reverse=True):
            with _numba_threads(threads):
                used = set()

                def fit():
                    passes._CHOOSER._choices.clear()  # probe afresh
                    run_fastsd(x32, "float32", n_neurons=n_neurons)
                    used.update(v[0] for v in passes._CHOOSER._choices.values())
                t = _best_of(fit, repeat)
            cells.append((threads, t, used))
        with _blas_threads(1):
            t_nb = _best_of(lambda: run_notebook(x64[:notebook_samples],
                                                 n_neurons=n_neurons), 1)
        t_nb *= n / notebook_samples
        line = f"  N={n_neurons:<5}"
        for threads, t, used in cells:
            note = f" (used {'/'.join(map(str, sorted(used)))})" if threads > 1 else ""
            line += f"  <= {threads} threads{note}: {t:6.3f} s"
        best = min(t for _, t, _ in cells)
        line += (f"  | notebook, 1 BLAS thread, {notebook_samples} samples x "
                 f"{n / notebook_samples:g}: {t_nb:7.2f} s  ({t_nb / best:5.1f}x)")
        print(line, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs of the accuracy comparison (default %(default)s)")
    parser.add_argument("--eps0", type=float, default=0.05,
                        help="initial rate of the accuracy comparison (default "
                             "%(default)s; the timing uses the notebook preset's 0.02)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats, best kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", action="store_true",
                        help="time float32 epochs at N = 100, 400, 1600, 6400 instead")
    parser.add_argument("--notebook-samples", type=int, default=NOTEBOOK_SAMPLES,
                        help="samples the notebook runs in --scale (extrapolated)")
    args = parser.parse_args(argv)

    from fastsd.datasets import load_mnist
    from fastsd.evaluate import cosine_wta

    data = load_mnist(download=False)
    x64 = data.x_train.astype(np.float64)
    if args.scale:
        scale(x64, args.repeat, args.notebook_samples)
        return
    x32 = data.x_train.astype(np.float32)
    n = x64.shape[0]
    all_threads = numba.config.NUMBA_NUM_THREADS
    print(f"{GROUP}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(other users' work slows multi-threaded runs); best of runs, wall time")
    for dtype, X in (("float64", x64), ("float32", x32)):
        run_fastsd(X[:1000], dtype)  # compile

    times, best_threads = {}, {}
    for threads in sorted({all_threads, 1}, reverse=True):
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        with _blas_threads(None if threads == all_threads else 1):
            t = _best_of(lambda: run_notebook(x64), max(1, args.repeat - 1))
        times["notebook", threads] = (f"notebook numpy, {label}", t)
        with _numba_threads(threads):
            for dtype, X in (("float64", x64), ("float32", x32)):
                passes._CHOOSER._choices.clear()  # probe afresh
                t = _best_of(lambda: run_fastsd(X, dtype), args.repeat)
                name = f"fastsd {dtype}, {label}"
                if threads > 1:
                    chosen = {v[0] for v in passes._CHOOSER._choices.values()}
                    name = f"fastsd {dtype}, <= {threads} (used {'/'.join(map(str, chosen))})"
                times[dtype, threads] = (name, t)
    for name, t in times.values():
        print(f"  {name:<32}: {t:7.3f} s  {n / t:9,.0f} samples/s")
    best = {}
    for side in ("notebook", "float64", "float32"):
        threads, t = min(((th, t) for (sd, th), (_, t) in times.items() if sd == side),
                         key=lambda item: item[1])
        best[side], best_threads[side] = t, threads
    for dtype in ("float64", "float32"):
        print(f"  ratio fastsd {dtype} / notebook numpy, best thread setting of each: "
              f"{best['notebook'] / best[dtype]:5.1f}x")

    print(f"\naccuracy after {args.epochs} epochs, eps0={args.eps0}, seed {args.seed}, same "
          "initial weights and permutations (cosine WTA, test set):")
    results = {}
    with _blas_threads(None if best_threads["notebook"] == all_threads else 1):
        start = time.perf_counter()
        results["notebook numpy"] = (run_notebook(x64, args.seed, epochs=args.epochs,
                                                  eps0=args.eps0),
                                     time.perf_counter() - start)
    for dtype, X in (("float64", x64), ("float32", x32)):
        with _numba_threads(best_threads[dtype]):
            start = time.perf_counter()
            results[f"fastsd {dtype}"] = (run_fastsd(X, dtype, args.seed,
                                                     epochs=args.epochs, eps0=args.eps0),
                                          time.perf_counter() - start)
    for name, (W, t) in results.items():
        r = cosine_wta(W, data.x_train, data.y_train, data.x_test, data.y_test)
        print(f"  {name:<16}: {100 * r.accuracy:6.2f}%  ({len(r.unassigned)} unit(s) "
              f"without class; trained in {t:6.1f} s)")


if __name__ == "__main__":
    main()
