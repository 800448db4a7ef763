"""Per-sample building blocks shared by the SparseDream kernels and evaluators.

Every helper is an ``@njit`` function over 1-D/2-D arrays of a single dtype, so that the
training pass, the batched response and the evaluators compute the network's forward
pass with the same code. Literals are converted to the array's dtype so float32 state
is computed in float32.

The ``W``-sized loops (``reconstruct``, the weight update) are bound by moving ``W``
between cache levels, so they walk four rows at a time: each ``r[j]``, ``g[j]`` and
``v[j]`` is then loaded once per four rows instead of once per row.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: Floating-point flags for the kernels: reassociation and FMA contraction let LLVM
#: vectorise reductions (last-bit differences from numpy), while NaN/inf semantics are
#: kept so that the non-finite checks and ``w <= prec`` pruning behave exactly.
FASTMATH = {"reassoc", "contract", "nsz"}

JIT = dict(cache=True, nogil=True, fastmath=FASTMATH)

#: Rows handled together by the blocked ``W`` loops.
BLOCK = 4


@njit(**JIT)
def sigmoid(x, one):
    """Logistic function ``1 / (1 + exp(-x))`` with ``one`` of the working dtype."""
    return one / (one + np.exp(-x))


@njit(**JIT)
def matvec(W, v, out):
    """``out = W @ v`` for a row-major ``W`` (N, m)."""
    n_rows, n_cols = W.shape
    for i in range(n_rows):
        acc = W.dtype.type(0)
        for j in range(n_cols):
            acc += W[i, j] * v[j]
        out[i] = acc


@njit(**JIT)
def forward(a, t, L, p, o):
    """Steps 2–3 of the rule from the drive ``a = W v``.

    ``p = sigmoid(a - t)`` and ``o = sigmoid(a - L p - t)``, written into ``p`` and ``o``.
    """
    n = a.shape[0]
    one = a.dtype.type(1)
    for i in range(n):
        p[i] = sigmoid(a[i] - t[i], one)
    for i in range(n):
        lp = a.dtype.type(0)
        for j in range(n):
            lp += L[i, j] * p[j]
        o[i] = sigmoid(a[i] - lp - t[i], one)


@njit(**JIT)
def respond(a, t, L, p, o, o_prev, beta, sp2, pending, use_L):
    """Steps 2–3 for one sample, first finishing the previous sample's step 5.

    If ``pending``, row ``i`` of ``L`` gets the previous sample's inhibition update
    ``beta (o_prev[i] o_prev - sp²)`` (diagonal kept at zero) right before it enters
    this sample's ``L p``: the same arithmetic as updating ``L`` after the previous
    sample, but ``L`` is read once per sample instead of twice. If not ``use_L``
    (``L`` is zero and ``beta`` is zero), ``o = sigmoid(a - t)`` exactly, and ``p`` and
    ``L p`` are skipped.
    """
    n = a.shape[0]
    one = a.dtype.type(1)
    if not use_L:
        for i in range(n):
            o[i] = sigmoid(a[i] - t[i], one)
        return
    for i in range(n):
        p[i] = sigmoid(a[i] - t[i], one)
    for i in range(n):
        if pending:
            oi = o_prev[i]
            for j in range(n):
                L[i, j] += beta * (oi * o_prev[j] - sp2)
            L[i, i] = 0
        lp = a.dtype.type(0)
        for j in range(n):
            lp += L[i, j] * p[j]
        o[i] = sigmoid(a[i] - lp - t[i], one)


@njit(**JIT)
def needs_inhibition(L, beta):
    """False when ``L`` is all zero and ``beta`` is zero: ``L`` then stays zero."""
    return beta != 0 or not all_zero(L)


@njit(**JIT)
def all_zero(x):
    """True if every element of the contiguous array ``x`` is 0."""
    flat = x.reshape(-1)
    for k in range(flat.shape[0]):
        if flat[k] != 0:
            return False
    return True


@njit(**JIT)
def flush_tiny(o):
    """Set responses below ``sqrt(smallest normal)`` (1e-19 in float32) to zero.

    Sigmoid outputs of strongly inhibited neurons get that small, and their products
    (``o oᵀ``, ``W o``, ``w·ξ o g``) then fall into the subnormal range, where x86
    arithmetic is up to 100x slower. Such responses change no sum they enter by more
    than the dtype's rounding (their products with weights are < 1e-18 in float32 and
    < 1e-153 in float64), so training results are unaffected in practice.
    """
    cut = np.sqrt(np.finfo(o.dtype).tiny)
    for i in range(o.shape[0]):
        if o[i] < cut:
            o[i] = 0


@njit(**JIT)
def reconstruct(W, o, r):
    """Step 4: ``r = Wᵀ o``, four rows of ``W`` per sweep over ``r``."""
    n_rows, n_cols = W.shape
    r[:] = 0
    i = 0
    while i + BLOCK <= n_rows:
        o0, o1, o2, o3 = o[i], o[i + 1], o[i + 2], o[i + 3]
        for j in range(n_cols):
            r[j] += W[i, j] * o0 + W[i + 1, j] * o1 + W[i + 2, j] * o2 + W[i + 3, j] * o3
        i += BLOCK
    for i in range(i, n_rows):
        oi = o[i]
        for j in range(n_cols):
            r[j] += W[i, j] * oi


@njit(**JIT)
def relative_error(v, r, prec, g):
    """``g = (v - r) / max(r, prec)``: the per-pixel factor of the weight update."""
    for j in range(v.shape[0]):
        g[j] = (v[j] - r[j]) / max(r[j], prec)


@njit(**JIT)
def update_inhibition(L, o, beta, sp2):
    """Step 5: ``L += beta (o oᵀ - sp²)`` with the diagonal kept at zero."""
    if beta == 0:
        return
    n = o.shape[0]
    for i in range(n):
        oi = o[i]
        for j in range(n):
            L[i, j] += beta * (oi * o[j] - sp2)
        L[i, i] = 0


@njit(**JIT)
def update_thresholds(t, o, gamma, sp):
    """Step 7: ``t += gamma (o - sp)``."""
    for i in range(t.shape[0]):
        t[i] += gamma * (o[i] - sp)


@njit(**JIT)
def all_finite(x):
    """True if every element of the contiguous array ``x`` is finite.

    ``inf * 0`` and ``nan * 0`` are NaN, so one vectorised sum answers for all elements.
    """
    flat = x.reshape(-1)
    acc = x.dtype.type(0)
    for k in range(flat.shape[0]):
        acc += flat[k] * 0
    return acc == 0
