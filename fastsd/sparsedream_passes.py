"""SparseDream's training passes: the exact per-sample rule and mini-batches.

Both run a compiled kernel (:mod:`fastsd.kernels.sparsedream`,
:mod:`fastsd.kernels.minibatch`) over working copies of the state, in chunks cut by
:func:`fastsd.passes.run_pass`. With ``anneal``, ``xi`` changes once per chunk.
"""
from __future__ import annotations

import warnings

import numba
import numpy as np

from ._tunables import PARTS, PARTS_MIN_NEURONS
from .kernels import sparsedream as kernel
from .kernels.inputs import (
    SparseDreamRates, minibatch_options, minibatch_scratch, sample_scratch,
)
from .kernels.minibatch import is_symmetric, minibatch_pass
from .passes import Pass, Schedule


class _SparseDreamPass(Pass):
    """What both passes share: the state, the rates, annealing, messages."""

    def __init__(self, state: dict, params: dict, rates: SparseDreamRates,
                 schedule: Schedule | None):
        self.W, self.t = state["weights_"], state["thresholds_"]
        self.L = state["inhibition_"]
        self.rates, self.params = rates, params
        self.batch_size = params["batch_size"]
        self.anneal = schedule if params["anneal"] else None

    def run(self, X, order, start, stop, threads) -> int:
        if self.anneal is not None:  # one rate per chunk (run_pass cuts calls at its
            # multiples of ``self.chunk``), from the chunk's start
            done = self.anneal.at(start - start % self.chunk)
            xi = self.W.dtype.type(self.params["xi"] * (1 - done))
            self.rates = self.rates._replace(xi=xi)
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

    def __init__(self, state, params, rates, schedule):
        super().__init__(state, params, rates, schedule)
        N = self.W.shape[0]
        self.scratch = sample_scratch(*self.W.shape, self.W.dtype)
        self.max_threads = (1 if N < PARTS_MIN_NEURONS
                            else min(numba.get_num_threads(), PARTS))

    def _run(self, X, order, start, stop, threads) -> int:
        args = (X, order, start, stop, self.W, self.t, self.L, self.rates,
                self.params["prune_every"], self.scratch)
        if threads == 1:
            return kernel.sparsedream_pass(*args)
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return kernel.sparsedream_pass_parts(*args)
        finally:
            numba.set_num_threads(before)


class MiniBatchPass(_SparseDreamPass):
    """Mini-batches of ``batch_size`` (:mod:`fastsd.kernels.minibatch`); the weight
    half of each batch may use two threads (same numbers)."""

    def __init__(self, state, params, rates, schedule):
        super().__init__(state, params, rates, schedule)
        self.work = MiniBatchWork(*self.W.shape, self.batch_size, self.W.dtype,
                                  params["min_response"], params["saturate_excitation"])
        self.max_threads = min(numba.get_num_threads(), PARTS)

    def _run(self, X, order, start, stop, threads) -> int:
        return self.work.run(X, order, start, stop, self.W, self.t, self.L, self.rates,
                             self.params["prune_every"], threads)


class MiniBatchWork:
    """The arrays of the mini-batch kernel for batches of ``batch_size`` samples
    (:func:`fastsd.kernels.inputs.minibatch_scratch`), carried across the calls of a
    pass, and ``Lᵀ`` for a non-symmetric ``L``.

    ``min_response`` and ``saturate``: see :class:`fastsd.kernels.inputs.MiniBatchOptions`.
    """

    def __init__(self, n_neurons: int, n_features: int, batch_size: int, dtype,
                 min_response: float = 0.0, saturate: bool = False):
        self.batch_size = batch_size
        self.min_response = min_response
        self.saturate = saturate
        self.scratch = minibatch_scratch(n_neurons, n_features, batch_size, dtype)
        self.LT = None  # Lᵀ, for a non-symmetric L only (allocated when needed)
        self.next_start = None  # where a call continuing the last one starts
        self.symmetric = True  # L is its own transpose (then not copied)

    def run(self, X, order, start, stop, W, t, L, rates, prune_every, threads=1) -> int:
        """Positions ``start <= k < stop`` of ``order`` in batches, state in place.

        ``rates``: :func:`fastsd.kernels.inputs.sparsedream_rates` in ``W``'s dtype.
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
        scratch = self.scratch
        fresh = start != self.next_start
        if fresh and start and scratch.pending[0]:
            raise ValueError(f"this call must continue the pass at {self.next_start}")
        if fresh:  # else W, Wᵀ and L are as the last call left them
            scratch.WT[...] = W.T
            scratch.dirty[:] = True
            # The kernel reads the inhibition by columns of L. A symmetric L (as every
            # L that starts symmetric, zero for example, stays) is its own transpose
            # and is updated in place; any other is copied in and out transposed.
            self.symmetric = is_symmetric(L)
            if not self.symmetric:
                if self.LT is None:
                    self.LT = np.empty_like(L)
                self.LT[...] = L.T
        LT = L if self.symmetric else self.LT
        options = minibatch_options(self.batch_size, prune_every, self.min_response,
                                    self.saturate, W.dtype)
        before = numba.get_num_threads()
        numba.set_num_threads(max(1, min(threads, PARTS, before)))
        bad = -1
        try:
            bad = minibatch_pass(X, order, start, stop, W, t, LT, rates, options, scratch,
                                 fresh)
            return bad
        finally:
            numba.set_num_threads(before)
            self.next_start = stop if bad < 0 else None
            if bad >= 0:
                scratch.pending[0] = 0
            if not self.symmetric:
                L[...] = LT.T
