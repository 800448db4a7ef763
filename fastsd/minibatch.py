"""Driver of the mini-batch SparseDream pass: BLAS products around small Numba kernels.

See :mod:`fastsd.kernels.minibatch` for the scheme and why it keeps its accuracy.
"""
from __future__ import annotations

import numpy as np

from .kernels.common import all_finite
from .kernels.minibatch import batch_relative_error, batch_responses, positive_update


class MiniBatchPass:
    """Work arrays for mini-batches of ``batch_size`` samples, reused across calls."""

    def __init__(self, n_neurons: int, n_features: int, batch_size: int, dtype):
        self.batch_size = batch_size
        self.Xb = np.empty((batch_size, n_features), dtype)
        self.A = np.empty((batch_size, n_neurons), dtype)
        self.O = np.empty((batch_size, n_neurons), dtype)
        self.R = np.empty((batch_size, n_features), dtype)
        self.S = np.empty((n_neurons, n_features), dtype)
        self.p = np.empty(n_neurons, dtype)

    def run(self, X, order, start, stop, W, t, L, hp, prune_every) -> int:
        """Positions ``start <= k < stop`` of ``order`` in batches, state in place.

        A batch is pruned after its update if it holds a position ``k`` with
        ``k % prune_every == 0``. ``start`` should be a multiple of the batch size for
        the batches to line up across calls. Returns -1, or the first position of a
        batch after which the state was no longer finite.
        """
        from .kernels.sparsedream import BETA, GAMMA, PREC, SP, XI

        xi, sp, gamma, beta, prec = hp[XI], hp[SP], hp[GAMMA], hp[BETA], hp[PREC]
        for lo in range(start, stop, self.batch_size):
            hi = min(lo + self.batch_size, stop)
            b = hi - lo
            Xb, A, O, R = self.Xb[:b], self.A[:b], self.O[:b], self.R[:b]
            np.take(X, order[lo:hi], axis=0, out=Xb)
            np.matmul(Xb, W.T, out=A)
            batch_responses(A, t, L, sp, gamma, beta, self.p, O)
            np.matmul(O, W, out=R)
            batch_relative_error(Xb, R, prec)
            np.matmul(O.T, R, out=self.S)
            prune = (-lo) % prune_every < b  # some k in [lo, hi) is a multiple
            positive_update(W, self.S, xi, prec, prune)
            if prune or hi == stop:
                if not (all_finite(W) and all_finite(t) and all_finite(L)):
                    return lo
        return -1
