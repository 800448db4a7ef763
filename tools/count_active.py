"""Count, per sample, the responses that clear the floor through a mini-batch epoch.

    PYTHONPATH=. python tools/count_active.py N [n_samples] [saturate 0/1]

Fresh model in the benchmark setting (float32, B=100, sp=1/N, beta=0.005, xi=0.02,
gamma=1, min_response 1e-6), run batch by batch so that every batch's active sets can
be read: ``o`` active (``o >= min_response``, the rows of the inhibition update and of
the weight products) and the rows of ``L`` read for ``L p̃`` (the fewer of the ``p̃ != 0``
and the ``p̃ != 1``). Prints means per sample over tenths of the pass.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from fastsd import SparseDream
from fastsd.datasets import load_mnist
from fastsd.sparsedream_passes import MiniBatchWork as MiniBatchPass


def main():
    N = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
    saturate = bool(int(sys.argv[3])) if len(sys.argv) > 3 else True
    X = load_mnist().x_train.astype(np.float32)
    model = SparseDream(N, xi=0.02, sp=1 / N, gamma=1.0, beta=0.005, batch_size=100,
                        dtype="float32", random_state=0)
    model._init_state(X.shape[1], np.random.default_rng(0), np.float32)
    W, t, L = model.weights_, model.thresholds_, model.inhibition_
    rates = model._kernel_rates(model._check_params())
    order = np.random.default_rng(0).permutation(60000)[:n]
    work = MiniBatchPass(N, X.shape[1], 100, np.float32, 1e-6, saturate)
    o_active, read = [], []
    clock = time.perf_counter()
    for lo in range(0, n, 100):
        assert work.run(X, order, lo, lo + 100, W, t, L, rates, 100) == -1
        o_active.append(work.scratch.n_neurons.copy())
        read.append(work.scratch.n_read.copy())
    seconds = time.perf_counter() - clock
    o_active, read = np.concatenate(o_active), np.concatenate(read)
    print(f"N={N} samples={n} saturate={saturate} ({seconds:.0f} s)  per sample: "
          f"o active mean {o_active.mean():.1f} max {o_active.max()}; rows of L read "
          f"mean {read.mean():.1f} max {read.max()}")
    for part in np.array_split(np.arange(n), 10):
        print(f"  samples {part[0]:5d}-{part[-1]:5d}: o active {o_active[part].mean():8.1f}"
              f"  rows read {read[part].mean():8.1f}  (first 100: o {o_active[part[:100]].mean():.1f},"
              f" read {read[part[:100]].mean():.1f})")


if __name__ == "__main__":
    main()
