"""The exact per-sample SparseDream pass and the batched network response.

The pass walks a given sample order inside compiled code. Per sample it reads ``W``
twice: once for the reconstruction ``r = Wᵀ o`` and once for the fused weight update,
which also accumulates the next sample's drive ``a = W v`` from the freshly updated
rows, so ``W`` is not read a third time (except on the one-in-``prune_every`` pruning
steps). With inhibition it reads and writes ``L`` once more (step 5 fused with ``L p``).

:func:`sparsedream_pass_parts` is the same pass with that work split over two threads
(rows of ``W`` and ``L``, columns for the reconstruction): at large N a sample moves
megabytes and two cores stream them faster than one.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._tunables import JIT, PARALLEL_JIT, ROW_BLOCK
from .common import (
    all_finite, excite, forward, inhibit, lateral, matvec,
    needs_inhibition, prefetch_row, reconstruct, relative_error, update_inhibition,
    update_thresholds,
)

@njit(**JIT)
def _step6(w, c, gj):
    """One weight after step 6, ``w + w ξ o_i g_j`` with ``c = ξ o_i``."""
    return w + w * c * gj


@njit(**JIT)
def _update_weights(W, o, g, xi, v_next, a_next, lo, hi):
    """Step 6 for rows ``lo <= i < hi``, and ``a_next = W v_next`` from the updated rows
    (``lo`` a multiple of ``ROW_BLOCK``, so every row gets the same arithmetic).

    Four rows per sweep over ``j``: ``g[j]`` and ``v_next[j]`` are loaded once for four
    weights. Row by row, those two extra loads per weight made the loop bound by loads
    rather than by moving ``W`` (1.5x slower).
    """
    n_cols = W.shape[1]
    zero = W.dtype.type(0)
    i = lo
    while i + ROW_BLOCK <= hi:
        c0, c1, c2, c3 = xi * o[i], xi * o[i + 1], xi * o[i + 2], xi * o[i + 3]
        s0 = s1 = s2 = s3 = zero
        for j in range(n_cols):
            gj = g[j]
            vj = v_next[j]
            w0 = _step6(W[i, j], c0, gj)
            w1 = _step6(W[i + 1, j], c1, gj)
            w2 = _step6(W[i + 2, j], c2, gj)
            w3 = _step6(W[i + 3, j], c3, gj)
            W[i, j] = w0
            W[i + 1, j] = w1
            W[i + 2, j] = w2
            W[i + 3, j] = w3
            s0 += w0 * vj
            s1 += w1 * vj
            s2 += w2 * vj
            s3 += w3 * vj
        a_next[i], a_next[i + 1], a_next[i + 2], a_next[i + 3] = s0, s1, s2, s3
        i += ROW_BLOCK
    for i in range(i, hi):
        c = xi * o[i]
        s = zero
        for j in range(n_cols):
            w = _step6(W[i, j], c, g[j])
            W[i, j] = w
            s += w * v_next[j]
        a_next[i] = s


@njit(**JIT)
def _prune(W, prec, v_next, a_next):
    """Step 8, ``W[W <= prec] = 0`` (NaN is kept), and ``a_next = W v_next`` afresh.

    A separate pass: pruning is due on one sample in ``prune_every`` and a select in the
    update loop would slow down every other sample.
    """
    n_rows, n_cols = W.shape
    for i in range(n_rows):
        s = W.dtype.type(0)
        for j in range(n_cols):
            w = W[i, j]
            if w <= prec:
                w = W.dtype.type(0)
                W[i, j] = w
            s += w * v_next[j]
        a_next[i] = s


@njit(**JIT, inline="always")
def _inputs(X, order, k):
    """``v`` and ``v_next`` of position ``k``; starts loading the row after them."""
    n = order.shape[0]
    v = X[order[k]]
    v_next = X[order[k + 1]] if k + 1 < n else v
    if k + 2 < n:  # v_next is in flight already; start the one after it
        prefetch_row(X[order[k + 2]])
    return v, v_next


@njit(**JIT, inline="always")
def _lateral_args(k, start, o_prev, p, beta):
    """``(previous responses, beta, pending)`` for the step 5 finished at position ``k``.

    The first sample of a pass uses ``L`` as given (not pending). The first of a later
    call finds the previous call's update applied already: the same arithmetic with
    ``beta = 0`` (``p`` stands in for the finite previous responses).
    """
    if k == start and start > 0:
        return p, p.dtype.type(0), True
    return o_prev, beta, k > start


@njit(**JIT, inline="always")
def _finish_sample(k, stop, prune_every, W, t, L, o, rates, v_next, a, use_L):
    """Step 7, and step 8 if due, for the sample at position ``k`` with responses ``o``;
    at a pruning step or the end of the call, the finiteness check (True: not finite).
    The last sample's step 5 is applied here (the others' in the next response)."""
    sp, beta, prec = rates.sp, rates.beta, rates.prec
    update_thresholds(t, o, rates.gamma, sp)
    prune = k % prune_every == 0
    if prune:
        _prune(W, prec, v_next, a)
    if not (prune or k == stop - 1):
        return False
    if k == stop - 1 and use_L:
        update_inhibition(L, o, beta, sp * sp)
    return not (all_finite(W) and all_finite(t) and all_finite(L))


@njit(**JIT)
def sparsedream_pass(X, order, start, stop, W, t, L, rates, prune_every, scratch):
    """Run the SparseDream rule on ``X[order[0]], X[order[1]], ...`` in place.

    Parameters
    ----------
    X : (n, m) array
        Inputs, same dtype as the state.
    order : (n,) int64 array
        Sample indices; position ``k`` in it decides pruning (``k % prune_every == 0``).
    start, stop : int
        Run positions ``start <= k < stop`` of ``order``. A pass may be split into
        consecutive calls: for ``start > 0``, ``a`` must hold the drive left by the
        previous call, so the split does not change any result.
    W, t, L : arrays (N, m), (N,), (N, N)
        State, updated in place.
    rates : :class:`fastsd.kernels.inputs.SparseDreamRates`
        ``xi, sp, gamma, beta, prec`` in the state's dtype
        (:func:`fastsd.kernels.inputs.sparsedream_rates`).
    prune_every : int
    scratch : :class:`fastsd.kernels.inputs.SampleScratch`
        Work arrays (:func:`fastsd.kernels.inputs.sample_scratch`); its drive ``a``
        carries the next sample's ``W v`` between calls.

    Returns
    -------
    int
        -1 if the pass finished with finite ``W``, ``t`` and ``L``; otherwise the position
        at which non-finite state was first seen (checked at every pruning step and at
        the end), and the state is then garbage.
    """
    if start >= stop:
        return -1
    N, m = W.shape
    a, p, o, r, g = scratch.a, scratch.p, scratch.o, scratch.r, scratch.g
    xi, sp2, prec = rates.xi, rates.sp * rates.sp, rates.prec
    use_L = needs_inhibition(L, rates.beta)
    o_prev = np.empty_like(o)
    if start == 0:
        matvec(W, X[order[0]], a)
    for k in range(start, stop):
        v, v_next = _inputs(X, order, k)
        q, beta, pending = _lateral_args(k, start, o_prev, p, rates.beta)
        excite(a, t, p, o, use_L)
        if use_L:
            lateral(L, q, beta, sp2, p, o, pending, 0, N)
        inhibit(a, t, o, use_L)
        reconstruct(W, o, r, 0, m)
        relative_error(v, r, prec, g)
        _update_weights(W, o, g, xi, v_next, a, 0, N)
        if _finish_sample(k, stop, prune_every, W, t, L, o, rates, v_next, a, use_L):
            return k
        o, o_prev = o_prev, o  # step 5 of this sample happens in the next lateral
    return -1


def part_cuts(n: int, step: int) -> np.ndarray:
    """Boundaries ``[0, c, n]`` of two parts, ``c`` a multiple of ``step`` near ``n / 2``."""
    cut = min(n, (n // 2 + step // 2) // step * step)
    return np.array([0, cut, n], dtype=np.int64)


@njit(**PARALLEL_JIT)
def _lateral_region(L, o_prev, beta, sp2, p, lp, pending, rows):
    """:func:`fastsd.kernels.common.lateral` on the row parts of ``rows``, in parallel."""
    for part in prange(rows.shape[0] - 1):
        lateral(L, o_prev, beta, sp2, p, lp, pending, rows[part], rows[part + 1])


@njit(**PARALLEL_JIT)
def _error_region(W, o, v, prec, r, g, cols):
    """Steps 4 and the update's ``g`` on the column parts of ``cols``, in parallel."""
    for part in prange(cols.shape[0] - 1):
        c0, c1 = cols[part], cols[part + 1]
        reconstruct(W, o, r, c0, c1)
        relative_error(v[c0:c1], r[c0:c1], prec, g[c0:c1])


@njit(**PARALLEL_JIT)
def _update_region(W, o, g, xi, v_next, a, rows):
    """:func:`_update_weights` on the row parts of ``rows``, in parallel."""
    for part in prange(rows.shape[0] - 1):
        _update_weights(W, o, g, xi, v_next, a, rows[part], rows[part + 1])


@njit(**JIT)
def sparsedream_pass_parts(X, order, start, stop, W, t, L, rates, prune_every, scratch):
    """:func:`sparsedream_pass` with the work on ``W`` and ``L`` split into parts that
    run in parallel: ``L p`` with step 5 and the weight update by the row parts
    ``scratch.rows`` (:func:`part_cuts` with step ``ROW_BLOCK``), the reconstruction
    and ``g`` by the column parts ``scratch.cols``. Every number is computed by the same
    arithmetic as in :func:`sparsedream_pass`, so results are identical to it and do not
    depend on the number of threads. Three parallel regions per sample: worth it when a sample moves
    megabytes (N in the hundreds and more), not at N = 100.
    """
    if start >= stop:
        return -1
    a, p, o, r, g = scratch.a, scratch.p, scratch.o, scratch.r, scratch.g
    rows, cols = scratch.rows, scratch.cols
    xi, sp2, prec = rates.xi, rates.sp * rates.sp, rates.prec
    use_L = needs_inhibition(L, rates.beta)
    o_prev = np.empty_like(o)
    if start == 0:
        matvec(W, X[order[0]], a)
    for k in range(start, stop):
        v, v_next = _inputs(X, order, k)
        q, beta, pending = _lateral_args(k, start, o_prev, p, rates.beta)
        excite(a, t, p, o, use_L)
        if use_L:
            _lateral_region(L, q, beta, sp2, p, o, pending, rows)
        inhibit(a, t, o, use_L)
        _error_region(W, o, v, prec, r, g, cols)
        _update_region(W, o, g, xi, v_next, a, rows)
        if _finish_sample(k, stop, prune_every, W, t, L, o, rates, v_next, a, use_L):
            return k
        o, o_prev = o_prev, o
    return -1


@njit(**PARALLEL_JIT)
def sparsedream_response(X, W, t, L, out):
    """Network response ``o`` (steps 1–3) for every row of ``X``, in parallel over rows."""
    n = X.shape[0]
    N = W.shape[0]
    for s in prange(n):
        a = np.empty(N, dtype=W.dtype)
        p = np.empty(N, dtype=W.dtype)
        matvec(W, X[s], a)
        forward(a, t, L, p, out[s])
    return out
