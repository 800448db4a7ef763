"""SparseDream's training passes: the exact per-sample rule and mini-batches.

Both run a compiled kernel (:mod:`fastsd.kernels.sparsedream`,
:mod:`fastsd.kernels.minibatch`) over working copies of the state, in chunks cut by
:func:`fastsd.passes.run_pass`. With ``anneal``, ``xi`` changes once per chunk.
"""
from __future__ import annotations

import warnings

import numba
import numpy as np

from ._tunables import ALIGN, PARTS, PARTS_MIN_NEURONS, ROW_BLOCK, SAMPLES_PER_CALL
from .kernels import sparsedream as kernel
from .kernels.columns import column_cuts
from .kernels.minibatch import is_symmetric, minibatch_pass
from .passes import Pass, Schedule


class _SparseDreamPass(Pass):
    """What both passes share: the state, the packed rates, annealing, messages."""

    def __init__(self, state: dict, params: dict, hp: np.ndarray,
                 schedule: Schedule | None):
        self.W, self.t = state["weights_"], state["thresholds_"]
        self.L = state["inhibition_"]
        self.hp, self.params = hp, params
        self.batch_size = params["batch_size"]
        self.chunk = -(-SAMPLES_PER_CALL // self.batch_size) * self.batch_size
        self.anneal = schedule if params["anneal"] else None

    def run(self, X, order, start, stop, threads) -> int:
        if self.anneal is not None:  # one rate per chunk, from the chunk's start
            done = self.anneal.at(start - start % self.chunk)
            self.hp[kernel.XI] = self.params["xi"] * (1 - done)
        return self._run(X, order, start, stop, threads)

    def state(self) -> dict:
        return {"weights_": self.W, "thresholds_": self.t, "inhibition_": self.L}

    def diverged(self, position: int) -> str:
        p = self.params
        return (f"training diverged: weights, thresholds or inhibition became NaN or "
                f"infinite by sample {position} of this pass (xi={p['xi']}, "
                f"gamma={p['gamma']}, beta={p['beta']}); lower the rates. The model keeps "
                "the state it had before this pass.")

    def finish(self) -> None:
        dead = int(np.sum(~self.W.any(axis=1)))
        if dead:
            warnings.warn(f"{dead} of {self.W.shape[0]} neurons have all-zero weights "
                          f"(pruned away); xi={self.params['xi']} may be too large",
                          RuntimeWarning, stacklevel=5)


class ExactPass(_SparseDreamPass):
    """The exact per-sample rule; from ``PARTS_MIN_NEURONS`` neurons on it may split
    its work on ``W`` and ``L`` over two threads (same numbers)."""

    def __init__(self, state, params, hp, schedule):
        super().__init__(state, params, hp, schedule)
        N, m = self.W.shape
        dtype = self.W.dtype
        self.a, self.p, self.o = (np.empty(N, dtype) for _ in range(3))
        self.r, self.g = (np.empty(m, dtype) for _ in range(2))
        self.rows, self.cols = kernel.part_cuts(N, ROW_BLOCK), kernel.part_cuts(m, ALIGN)
        self.max_threads = (1 if N < PARTS_MIN_NEURONS
                            else min(numba.get_num_threads(), PARTS))

    def _run(self, X, order, start, stop, threads) -> int:
        args = (X, order, start, stop, self.W, self.t, self.L, self.hp,
                self.params["prune_every"], self.a, self.p, self.o, self.r, self.g)
        if threads == 1:
            return kernel.sparsedream_pass(*args)
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return kernel.sparsedream_pass_parts(*args, self.rows, self.cols)
        finally:
            numba.set_num_threads(before)


class MiniBatchPass(_SparseDreamPass):
    """Mini-batches of ``batch_size`` (:mod:`fastsd.kernels.minibatch`); the weight
    half of each batch may use two threads (same numbers)."""

    def __init__(self, state, params, hp, schedule):
        super().__init__(state, params, hp, schedule)
        self.work = MiniBatchWork(*self.W.shape, self.batch_size, self.W.dtype,
                                  params["min_response"], params["saturate_excitation"])
        self.max_threads = min(numba.get_num_threads(), PARTS)

    def _run(self, X, order, start, stop, threads) -> int:
        return self.work.run(X, order, start, stop, self.W, self.t, self.L, self.hp,
                             self.params["prune_every"], threads)


class MiniBatchWork:
    """Work arrays of the mini-batch kernel for batches of ``batch_size`` samples.

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
