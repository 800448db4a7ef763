"""Mini-batch SparseDream: one 60k MNIST epoch at N=100 against the other training paths.

    python -m pytest bench/bench_minibatch.py --benchmark-enable

times, from the same fresh initial state and sample order, a warm first epoch of
fastsd's mini-batch pass (float32; B=100 with the default ``min_response`` 1e-6, also on
one thread only, and with 0, and B=50 with 1e-4), the exact
per-sample float32 pass, and one epoch of Krotov & Hopfield's notebook-style numpy code
(batches of 100), the comparison the second research note makes. Rates: ξ=0.02, γ=1,
β=0.005. The one-run table with ratios and accuracies is ``tools/bench_table.py``.

``test_sparsedream_large`` times one epoch from a fresh model at N = 100, 400, 1600 and
6400 with ``sp = 1/N`` (float32, B=100, default ``min_response``), as a user would call
it: ``SparseDream(N, ..., random_state=0).partial_fit(X)``.
"""
from __future__ import annotations

import os
import sys

import numba
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from bench_krotov import run_notebook as run_krotov_notebook  # noqa: E402

from fastsd import SparseDream  # noqa: E402

N_NEURONS = 100
RATES = dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005, anneal=False)
GROUP = "one 60k MNIST epoch, N=100: SparseDream mini-batch vs others"


@pytest.fixture(scope="module")
def data(mnist):
    rng = np.random.default_rng(0)
    W0 = rng.uniform(0.1, 1.0, (N_NEURONS, mnist.x_train.shape[1])).astype(np.float32)
    return mnist.x_train.astype(np.float32), rng.permutation(mnist.x_train.shape[0]), W0


def one_epoch(X, order, W0, batch_size, min_response):
    model = SparseDream(N_NEURONS, **RATES, batch_size=batch_size,
                        min_response=min_response, dtype="float32")
    model.weights_ = W0.copy()
    model.thresholds_ = np.zeros(N_NEURONS, np.float32)
    model.inhibition_ = np.zeros((N_NEURONS, N_NEURONS), np.float32)
    return model.partial_fit(X, order=order)


@pytest.mark.parametrize("batch_size, min_response, threads",
                         [(100, 1e-6, None), (100, 1e-6, 1), (50, 1e-4, None),
                          (100, 0.0, None), (1, 1e-6, None)],
                         ids=["B100", "B100-1thread", "B50-floor1e-4", "B100-dense",
                              "per-sample"])
def test_sparsedream(benchmark, data, batch_size, min_response, threads):
    X, order, W0 = data
    benchmark.group = GROUP
    before = numba.get_num_threads()
    numba.set_num_threads(threads or before)
    try:
        one_epoch(X, order[:500], W0, batch_size, min_response)  # compile, untimed
        model = benchmark.pedantic(one_epoch, args=(X, order, W0, batch_size, min_response),
                                   rounds=3, iterations=1)
    finally:
        numba.set_num_threads(before)
    assert np.isfinite(model.weights_).all()


def test_krotov_notebook_numpy(benchmark, mnist):
    benchmark.group = GROUP
    x64 = mnist.x_train.astype(np.float64)
    benchmark.pedantic(run_krotov_notebook, args=(x64,), rounds=2, iterations=1)


@pytest.mark.parametrize("n_neurons", [100, 400, 1600, 6400])
def test_sparsedream_large(benchmark, mnist, n_neurons):
    X = mnist.x_train.astype(np.float32)
    rates = dict(RATES, sp=1 / n_neurons)
    benchmark.group = "one 60k MNIST epoch, fresh model, sp=1/N: SparseDream B=100 by N"

    def epoch():
        return SparseDream(n_neurons, **rates, batch_size=100, dtype="float32",
                           random_state=0).partial_fit(X)

    SparseDream(n_neurons, **rates, batch_size=100, dtype="float32").partial_fit(X[:500])
    model = benchmark.pedantic(epoch, rounds=3 if n_neurons <= 1600 else 1, iterations=1)
    assert np.isfinite(model.weights_).all()
