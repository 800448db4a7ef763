"""Driver of the mini-batch SparseDream pass: BLAS products around small Numba kernels.

See :mod:`fastsd.kernels.minibatch` for the scheme and why it keeps its accuracy.
"""
from __future__ import annotations

import numpy as np

from ._threads import blas_threads as limit_blas
from .kernels.common import all_finite
from .kernels.minibatch import (
    batch_drive, batch_relative_error, batch_responses, positive_update,
)
from .kernels.sparsedream import BETA, GAMMA, PREC, SP, XI


class MiniBatchPass:
    """Work arrays for mini-batches of ``batch_size`` samples, reused across calls."""

    def __init__(self, n_neurons: int, n_features: int, batch_size: int, dtype):
        self.batch_size = batch_size
        self.WT = np.empty((n_features, n_neurons), dtype)
        self.A = np.empty((batch_size, n_neurons), dtype)
        self.O = np.empty((batch_size, n_neurons), dtype)
        self.R = np.empty((batch_size, n_features), dtype)
        self.ST = np.empty((n_features, n_neurons), dtype)
        self.p = np.empty(n_neurons, dtype)

    def run(self, X, order, start, stop, W, t, L, hp, prune_every, blas_threads=1) -> int:
        """Positions ``start <= k < stop`` of ``order`` in batches, state in place.

        A batch is pruned after its update if it holds a position ``k`` with
        ``k % prune_every == 0``. ``start`` should be a multiple of the batch size for
        the batches to line up across calls. Returns -1, or the first position of a
        batch after which the state was no longer finite. BLAS runs on
        ``blas_threads`` threads meanwhile (see :mod:`fastsd._threads`; the results do
        not depend on it).
        """
        with limit_blas(blas_threads):
            return self._run(X, order, start, stop, W, t, L, hp, prune_every)

    def _run(self, X, order, start, stop, W, t, L, hp, prune_every) -> int:
        xi, sp, gamma, beta, prec = hp[XI], hp[SP], hp[GAMMA], hp[BETA], hp[PREC]
        WT = self.WT
        WT[...] = W.T
        status = -1
        for lo in range(start, stop, self.batch_size):
            hi = min(lo + self.batch_size, stop)
            rows = order[lo:hi]
            A, O, R = self.A[:hi - lo], self.O[:hi - lo], self.R[:hi - lo]
            batch_drive(X, rows, WT, A)
            batch_responses(A, t, L, sp, gamma, beta, self.p, O)
            np.matmul(O, WT.T, out=R)
            batch_relative_error(X, rows, R, prec)
            np.matmul(R.T, O, out=self.ST)
            prune = (-lo) % prune_every < hi - lo  # some k in [lo, hi) is a multiple
            positive_update(WT, self.ST, xi, prec, prune)
            if (prune or hi == stop) and not (
                    all_finite(WT) and all_finite(t) and all_finite(L)):
                status = lo
                break
        W[...] = WT.T
        return status
