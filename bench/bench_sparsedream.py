"""Per-sample SparseDream: fastsd's kernel against the notebook's numpy loop.

One thread on both sides (the acceptance figure is per core)::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python -m pytest bench/bench_sparsedream.py --benchmark-enable

(``test_fastsd_scaling`` times the field's sizes, N = 400, 1600, 6400, on the first
samples of an epoch, with the threads the environment gives), or, for the ratio
measured in one run (6000 MNIST samples, N=100, interleaved rounds)::

    python bench/bench_sparsedream.py            # sets the thread variables itself
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # before numpy is imported, so BLAS obeys
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from notebook import notebook_sparsedream  # noqa: E402

from fastsd import SparseDream  # noqa: E402

N_SAMPLES, N_NEURONS = 6000, 100
RATES = dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005, anneal=False)


def _setup(x_train, seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(x_train.shape[0])[:N_SAMPLES]
    W0 = rng.uniform(0.1, 1.0, (N_NEURONS, x_train.shape[1]))
    return order, W0


def run_notebook(x64, order, W0):
    return notebook_sparsedream(x64[order], W0.copy(), np.zeros(N_NEURONS),
                                np.zeros((N_NEURONS, N_NEURONS)), **RATES)


def make_fastsd(X, W0, dtype):
    """A model with the same initial state, and its input in the model's dtype."""
    model = SparseDream(N_NEURONS, **RATES, dtype=dtype)
    model.weights_ = W0.astype(dtype)
    model.thresholds_ = np.zeros(N_NEURONS, dtype)
    model.inhibition_ = np.zeros((N_NEURONS, N_NEURONS), dtype)
    return model, np.ascontiguousarray(X, dtype=dtype)


@pytest.fixture(scope="module")
def data(mnist):
    x64 = mnist.x_train.astype(np.float64)
    return x64, *_setup(x64)


def test_notebook_numpy(benchmark, data):
    x64, order, W0 = data
    benchmark.group = "sparsedream per-sample, 6000 MNIST samples, N=100"
    benchmark.pedantic(run_notebook, args=(x64, order, W0), rounds=2, iterations=1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fastsd(benchmark, data, dtype):
    x64, order, W0 = data
    benchmark.group = "sparsedream per-sample, 6000 MNIST samples, N=100"
    model, X = make_fastsd(x64, W0, dtype)
    model.partial_fit(X, order=order[:10])  # compile outside the timing

    benchmark.pedantic(run_fastsd, args=(X, order, W0, dtype), rounds=5, iterations=1)


#: Samples timed at the field's sizes: three chunks and more (the pass may then choose
#: two threads) up to N = 1600; fewer at 6400, where a sample takes ~10 ms.
SCALE_SAMPLES = {400: 13_000, 1600: 13_000, 6400: 1_300}


@pytest.mark.parametrize("n_neurons", sorted(SCALE_SAMPLES))
def test_fastsd_scaling(benchmark, data, n_neurons):
    """The exact rule at N = 400, 1600, 6400 (float32, sp = 1/N, beta = 0.005), on the
    first samples of an epoch from a fresh model."""
    x64 = data[0]
    X = x64.astype(np.float32)
    order = np.random.default_rng(0).permutation(X.shape[0])[:SCALE_SAMPLES[n_neurons]]
    rates = dict(RATES, sp=1.0 / n_neurons)
    benchmark.group = f"sparsedream per-sample float32, N={n_neurons}"
    SparseDream(n_neurons, **rates, dtype="float32").partial_fit(X, order=order[:10])

    def run():
        model = SparseDream(n_neurons, **rates, dtype="float32", random_state=0)
        return model.partial_fit(X, order=order)

    benchmark.pedantic(run, rounds=1, iterations=1)


def run_fastsd(X, order, W0, dtype):
    """The samples of ``order`` in that order, like the notebook's ``inputs = X[perm]``:
    only they are gathered and validated, then one pass runs over them."""
    model, _ = make_fastsd(X[:1], W0, dtype)
    return model.partial_fit(X[order], order=np.arange(order.size))


def main(rounds: int = 5) -> None:
    """Interleaved rounds (numpy, float64, float32, numpy, ...): each ratio compares runs
    made seconds apart, so a machine whose speed drifts (shared cores, clock changes)
    shifts both sides alike. Prints the best time of each side, the ratio of the best
    times and the median and range of the per-round ratios."""
    from fastsd.datasets import load_mnist

    x64 = load_mnist(download=False).x_train.astype(np.float64)
    order, W0 = _setup(x64)
    print(f"{N_SAMPLES} MNIST samples, N={N_NEURONS}, one thread "
          f"(NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), {rounds} interleaved "
          f"rounds, load average {os.getloadavg()[0]:.2f}")
    runs = {"notebook numpy loop": lambda: run_notebook(x64, order, W0)}
    for dtype in ("float64", "float32"):
        model, X = make_fastsd(x64, W0, dtype)
        model.partial_fit(X, order=order[:10])  # compile
        runs[f"fastsd {dtype}"] = lambda X=X, dtype=dtype: run_fastsd(X, order, W0, dtype)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    numpy_times = np.array(times["notebook numpy loop"])
    for name, ts in times.items():
        best = min(ts)
        line = f"  {name:<20}: {best:7.3f} s  {N_SAMPLES / best:9,.0f} samples/s"
        if name != "notebook numpy loop":
            ratios = numpy_times / np.array(ts)
            line += (f"  ratio of best {numpy_times.min() / best:5.1f}x, per round median "
                     f"{np.median(ratios):5.1f}x (range {ratios.min():.1f}-{ratios.max():.1f})")
        print(line)


if __name__ == "__main__":
    main()
