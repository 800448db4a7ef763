"""The exact per-sample SparseDream pass and the batched network response.

The pass walks a given sample order inside compiled code. Per sample it reads ``W``
twice: once for the reconstruction ``r = Wᵀ o`` and once for the fused weight update,
which also accumulates the next sample's drive ``a = W v`` from the freshly updated
rows, so ``W`` is not read a third time (except on the one-in-``prune_every`` pruning
steps).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .common import (
    BLOCK, FASTMATH, JIT, all_finite, forward, matvec, needs_inhibition, prefetch_row,
    reconstruct, relative_error, respond, update_inhibition, update_thresholds,
)

#: Positions of the hyper-parameters in the ``hp`` array passed to the kernels. They are
#: packed in an array of the state's dtype so float32 state is updated in float32.
XI, SP, GAMMA, BETA, PREC = range(5)
N_HYPER = 5


@njit(**JIT)
def _step6(w, c, gj):
    """One weight after step 6, ``w + w ξ o_i g_j`` with ``c = ξ o_i``."""
    return w + w * c * gj


@njit(**JIT)
def _update_weights(W, o, g, xi, v_next, a_next):
    """Step 6 for every row, and ``a_next = W v_next`` from the updated rows.

    Four rows per sweep over ``j``: ``g[j]`` and ``v_next[j]`` are loaded once for four
    weights. Row by row, those two extra loads per weight made the loop bound by loads
    rather than by moving ``W`` (1.5x slower).
    """
    n_rows, n_cols = W.shape
    zero = W.dtype.type(0)
    i = 0
    while i + BLOCK <= n_rows:
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
        i += BLOCK
    for i in range(i, n_rows):
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


@njit(**JIT)
def sparsedream_pass(X, order, start, stop, W, t, L, hp, prune_every, a, p, o, r, g):
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
    hp : (5,) array
        ``xi, sp, gamma, beta, prec`` in the state's dtype.
    prune_every : int
    a, p, o : (N,) arrays, r, g : (m,) arrays
        Scratch space; ``a`` carries the next sample's drive ``W v`` between calls.

    Returns
    -------
    int
        -1 if the pass finished with finite ``W``, ``t`` and ``L``; otherwise the position
        at which non-finite state was first seen (checked at every pruning step and at
        the end), and the state is then garbage.
    """
    n = order.shape[0]
    if start >= stop:
        return -1
    xi, sp, gamma, beta, prec = hp[XI], hp[SP], hp[GAMMA], hp[BETA], hp[PREC]
    sp2 = sp * sp
    zero = hp.dtype.type(0)
    use_L = needs_inhibition(L, beta)
    o_prev = np.empty_like(o)
    if start == 0:
        matvec(W, X[order[0]], a)
    for k in range(start, stop):
        v = X[order[k]]
        v_next = X[order[k + 1]] if k + 1 < n else v
        if k + 2 < n:  # v_next is in flight already; start the one after it
            prefetch_row(X[order[k + 2]])
        if k > start or start == 0:
            respond(a, t, L, p, o, o_prev, beta, sp2, k > start, use_L)
        else:  # the previous call applied the update: same arithmetic, no update
            respond(a, t, L, p, o, p, zero, sp2, True, use_L)
        reconstruct(W, o, r)
        relative_error(v, r, prec, g)
        _update_weights(W, o, g, xi, v_next, a)
        update_thresholds(t, o, gamma, sp)
        o, o_prev = o_prev, o  # step 5 of this sample happens inside the next respond
        prune = k % prune_every == 0
        if prune:
            _prune(W, prec, v_next, a)
        if prune or k == stop - 1:
            if k == stop - 1 and use_L:
                update_inhibition(L, o_prev, beta, sp2)
            if not (all_finite(W) and all_finite(t) and all_finite(L)):
                return k
    return -1


@njit(cache=True, nogil=True, parallel=True, fastmath=FASTMATH)
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
