"""Cosine WTA on MNIST (60k train + 10k test, N=100): fastsd against the notebook's numpy.

pytest-benchmark (warm: kernels compiled and MNIST loaded before timing)::

    python -m pytest bench/bench_evaluate.py --benchmark-enable -p no:cacheprovider

Script mode, both timings and their ratio from one run::

    python bench/bench_evaluate.py [--repeat 5]

The numpy evaluator is transcribed in the notebook's style (``wta_classification``:
one matrix product for the training winners, then a Python loop over the test samples)
and gets float64 inputs, as in the notebook. fastsd gets the float32 arrays that
``load_mnist`` returns, as a user would pass them (it validates them on every call).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pytest


def notebook_wta_classification(w, x_train, y_train, x_test, y_test):
    """The notebook's ``wta_classification``; returns (accuracy, neuron classes, incorrect)."""
    flat_x = x_train
    train_lbls = y_train
    w = w / np.array([np.linalg.norm(w, axis=1)]).T
    wins = np.argmax(w @ flat_x.T, axis=0)
    n_wins = np.zeros((w.shape[0], 10))
    for (n_i, lbl) in zip(wins, train_lbls):
        n_wins[n_i][lbl] += 1
    n_cls = np.argmax(n_wins, axis=1)
    num_test = y_test.shape[0]
    test_v = x_test / np.array([np.linalg.norm(x_test, axis=1)]).T
    num_correct = 0
    incorrect = np.zeros(10)
    for i in range(num_test):
        w_mul_v = w @ test_v[i].T
        n_max = np.argmax(w_mul_v)
        pre = n_cls[n_max]
        if pre == y_test[i]:
            num_correct += 1
        else:
            incorrect[y_test[i]] += 1
    return num_correct / num_test, n_cls, incorrect


def setup():
    """MNIST, a quickly trained N=100 SparseDream, and float64 copies for numpy."""
    from fastsd import SparseDream
    from fastsd.datasets import load_mnist
    from fastsd.evaluate import cosine_wta

    data = load_mnist(download=False)
    model = SparseDream(n_neurons=100, random_state=0).fit(data.x_train[:20000])
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    args64 = (data.x_train.astype(np.float64), data.y_train,
              data.x_test.astype(np.float64), data.y_test)
    cosine_wta(model.weights_, *args)  # compile / load the kernels: time warm
    return model, args, args64


@pytest.fixture(scope="module")
def prepared():
    from fastsd.datasets import DataError
    try:
        return setup()
    except DataError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"MNIST not available: {exc}")


def test_fastsd_cosine_wta(benchmark, prepared):
    from fastsd.evaluate import cosine_wta
    model, args, _ = prepared
    result = benchmark(cosine_wta, model.weights_, *args)
    assert result.accuracy > 0.7


def test_notebook_cosine_wta(benchmark, prepared):
    model, args, args64 = prepared
    acc, _, _ = benchmark.pedantic(notebook_wta_classification,
                                   args=(model.weights_, *args64), rounds=2, iterations=1)
    assert acc > 0.7


def best_of(repeat, fn, *args):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    opts = parser.parse_args(argv)
    from fastsd.evaluate import cosine_wta

    model, args, args64 = setup()
    fast, result = best_of(opts.repeat, cosine_wta, model.weights_, *args)
    fast64, _ = best_of(opts.repeat, cosine_wta, model.weights_, *args64)
    slow, (acc, classes, incorrect) = best_of(max(1, opts.repeat // 2),
                                              notebook_wta_classification,
                                              model.weights_, *args64)
    same = (acc == result.accuracy and np.array_equal(classes, result.neuron_classes)
            and np.array_equal(incorrect, result.misclassified))
    print("cosine WTA, MNIST 60000 train + 10000 test, N=100 (best of "
          f"{opts.repeat}, warm)")
    print(f"  fastsd (float32 inputs)      {fast:8.3f} s   accuracy {100 * acc:.2f}%")
    print(f"  fastsd (float64 inputs)      {fast64:8.3f} s")
    print(f"  notebook numpy (float64)     {slow:8.3f} s")
    print(f"  speed-up                     {slow / fast:8.1f} x")
    print(f"  identical results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
