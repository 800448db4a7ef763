"""Driver of the mini-batch SparseDream pass (the scheme: :mod:`fastsd.kernels.minibatch`)."""
from __future__ import annotations

import numba
import numpy as np

from .kernels.columns import PARTS, column_cuts
from .kernels.minibatch import is_symmetric, minibatch_pass


class MiniBatchPass:
    """Work arrays for mini-batches of ``batch_size`` samples, reused across calls.

    ``min_response`` and ``saturate``: see :func:`fastsd.kernels.minibatch.minibatch_pass`.
    """

    def __init__(self, n_neurons: int, n_features: int, batch_size: int, dtype,
                 min_response: float = 0.0, saturate: bool = False):
        self.batch_size = batch_size
        self.min_response = min_response
        self.saturate = saturate
        self.WT = np.empty((n_features, n_neurons), dtype)
        self.LT = None  # Lᵀ, for a non-symmetric L only (allocated when needed)
        self.u = np.empty(n_neurons, np.float64)  # column sums of Lᵀ
        self.pending = np.zeros(1, dtype)  # of L, not yet added to it (kernel docs)
        self.next_start = None  # where a call continuing the last one starts
        self.symmetric = True  # L is its own transpose (then not copied)
        self.A = np.empty((batch_size, n_neurons), dtype)
        self.AP = np.empty((PARTS, batch_size, n_neurons), dtype)
        self.O = np.empty((batch_size, n_neurons), dtype)
        self.G = np.empty((batch_size, n_features), dtype)
        self.P = np.empty((2, n_neurons), dtype)
        self.off = np.empty(n_neurons, np.int32)
        # active sets of a batch: neurons per sample and samples per neuron
        self.neurons = np.empty((batch_size, n_neurons), np.int32)
        self.n_neurons = np.empty(batch_size, np.int32)
        self.n_read = np.empty(batch_size, np.int32)
        self.samples = np.empty((n_neurons, batch_size), np.int32)
        self.n_samples = np.empty(n_neurons, np.int32)
        self.changed = np.empty(n_neurons, np.bool_)
        self.dirty = np.ones(n_neurons, np.bool_)
        self.cuts = column_cuts(n_features)
        self.IDX = np.empty((PARTS, batch_size, n_features), np.int32)
        self.NNZ = np.empty((PARTS, batch_size), np.int64)
        self.S = np.empty((PARTS, n_features), dtype)
        self.finite = np.ones(PARTS, np.bool_)

    def run(self, X, order, start, stop, W, t, L, hp, prune_every, threads=1) -> int:
        """Positions ``start <= k < stop`` of ``order`` in batches, state in place.

        ``start`` should be a multiple of the batch size for the batches to line up
        across calls. A call that starts where the previous one stopped continues its
        pass: ``L`` must not be changed in between, as it lacks the constant part of
        the inhibition updates until the end of ``order`` (or the next multiple of
        ``FLUSH_EVERY``, :func:`fastsd.kernels.minibatch.minibatch_pass`); the result
        does not depend on how a pass is split into calls. ``threads`` (1 or 2; results
        do not depend on it) work on the weight half of each batch. Returns -1, or the
        first position of a batch after which the state was no longer finite (the state
        is then garbage).
        """
        fresh = start != self.next_start
        if fresh and start and self.pending[0]:
            raise ValueError(f"this call must continue the pass at {self.next_start}")
        if fresh:  # else W, Wᵀ and L are as the last call left them
            self.WT[...] = W.T
            self.dirty[:] = True
            # The kernel reads the inhibition by columns of L. A symmetric L (as every
            # L that starts symmetric, zero for example, stays) is its own transpose
            # and is updated in place; any other is copied in and out transposed.
            self.symmetric = is_symmetric(L)
            if not self.symmetric:
                if self.LT is None:
                    self.LT = np.empty_like(L)
                self.LT[...] = L.T
        LT = L if self.symmetric else self.LT
        dtype = W.dtype.type
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(threads, PARTS, before)))
        bad = -1
        try:
            bad = minibatch_pass(X, order, start, stop, self.batch_size, W, self.WT, t, LT,
                                 self.u, self.pending, fresh, hp, prune_every,
                                 dtype(self.min_response),
                                 self.saturate, self.A, self.AP, self.O, self.G, self.P,
                                 self.off, self.neurons, self.n_neurons, self.n_read,
                                 self.samples, self.n_samples, self.changed, self.dirty,
                                 self.cuts, self.IDX, self.NNZ, self.S, self.finite)
            return bad
        finally:
            numba.set_num_threads(before)
            self.next_start = stop if bad < 0 else None
            if bad >= 0:
                self.pending[0] = 0
            if not self.symmetric:
                L[...] = LT.T
