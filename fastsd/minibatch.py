"""Driver of the mini-batch SparseDream pass (the scheme: :mod:`fastsd.kernels.minibatch`)."""
from __future__ import annotations

import numba
import numpy as np

from .kernels.columns import PARTS, column_cuts
from .kernels.minibatch import minibatch_pass


class MiniBatchPass:
    """Work arrays for mini-batches of ``batch_size`` samples, reused across calls."""

    def __init__(self, n_neurons: int, n_features: int, batch_size: int, dtype,
                 min_response: float = 0.0):
        self.batch_size = batch_size
        self.min_response = min_response
        self.WT = np.empty((n_features, n_neurons), dtype)
        self.LT = np.empty((n_neurons, n_neurons), dtype)
        self.A = np.empty((batch_size, n_neurons), dtype)
        self.AP = np.empty((PARTS, batch_size, n_neurons), dtype)
        self.O = np.empty((batch_size, n_neurons), dtype)
        self.G = np.empty((batch_size, n_features), dtype)
        self.p = np.empty(n_neurons, dtype)
        # active sets of a batch: neurons per sample and samples per neuron
        self.neurons = np.empty((batch_size, n_neurons), np.int32)
        self.n_neurons = np.empty(batch_size, np.int32)
        self.samples = np.empty((n_neurons, batch_size), np.int32)
        self.n_samples = np.empty(n_neurons, np.int32)
        self.changed = np.empty(n_neurons, np.bool_)
        self.dirty = np.ones(n_neurons, np.bool_)
        self.cuts = column_cuts(n_features)
        self.IDX = np.empty((PARTS, n_features), np.int64)
        self.S = np.empty((PARTS, n_features), dtype)
        self.finite = np.ones(PARTS, np.bool_)

    def run(self, X, order, start, stop, W, t, L, hp, prune_every, threads=1) -> int:
        """Positions ``start <= k < stop`` of ``order`` in batches, state in place.

        ``start`` should be a multiple of the batch size for the batches to line up
        across calls. ``threads`` (1 or 2; results do not depend on it) work on the
        weight half of each batch. Returns -1, or the first position of a batch after
        which the state was no longer finite (the state is then garbage).
        """
        self.WT[...] = W.T
        self.LT[...] = L.T  # the kernel reads the inhibition by columns of L
        self.dirty[:] = True  # W may have been changed between calls
        dtype = W.dtype.type
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(threads, PARTS, before)))
        try:
            return minibatch_pass(X, order, start, stop, self.batch_size, W, self.WT, t,
                                  self.LT, hp, prune_every, dtype(self.min_response),
                                  self.A, self.AP, self.O, self.G, self.p,
                                  self.neurons, self.n_neurons, self.samples,
                                  self.n_samples, self.changed, self.dirty, self.cuts,
                                  self.IDX, self.S, self.finite)
        finally:
            numba.set_num_threads(before)
            L[...] = self.LT.T
