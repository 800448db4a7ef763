"""Mini-batch SparseDream: the per-sample parts of a batch, and the batched update.

Within a batch ``W`` is held fixed, so the heavy products are matrix products: the
drive ``A = X_b Wᵀ`` (here, over the non-zero pixels only), and ``R = O W`` and
``S = Oᵀ G`` done by BLAS in the driver (``fastsd.minibatch``). The kernels work on
the transposed weights ``Wᵀ`` (m, N), so that one pixel's weights to all neurons are
contiguous. What stays per sample, in ``batch_responses``, is the cheap and
order-dependent part: the forward pass with the current thresholds and inhibition, and
the threshold and inhibition updates, so homeostasis still acts sample by sample
exactly as in the per-sample rule.

The weight update is multiplicative, ``w ← w·f(ξ s)`` with ``s = Σ_b o_b g_b`` summed
over the batch, and ``f(x) = 1 + x`` for ``x >= 0`` but ``1 / (1 - x)`` for ``x < 0``.
Both forms agree to first order (the per-sample rule is ``f(x) = 1 + x``); the second
keeps weights positive when many samples of a batch push the same weight down at once,
where ``1 + x`` would cross zero and prune the whole neuron away (this is what broke
the research notebook's mini-batch attempt).
"""
from __future__ import annotations

from numba import njit

from .common import (
    JIT, flush_tiny, needs_inhibition, respond, update_inhibition, update_thresholds,
)


@njit(**JIT)
def batch_drive(X, rows, WT, A):
    """``A[b] = W X[rows[b]]`` from the transposed weights, skipping zero pixels.

    Serial on purpose: a parallel region entered once per batch (1200 times an epoch)
    made epochs 5-10x slower whenever the other core was busy.
    """
    m, N = WT.shape
    for b in range(rows.shape[0]):
        x = X[rows[b]]
        acc = A[b]
        acc[:] = 0
        for j in range(m):
            xj = x[j]
            if xj != 0:
                for i in range(N):
                    acc[i] += xj * WT[j, i]


@njit(**JIT)
def batch_responses(A, t, L, sp, gamma, beta, p, O):
    """Steps 2–3, 5 and 7 for each row of the batch drive ``A``, in order.

    Writes the responses into ``O`` (B, N), with responses below 1e-19 (float32) set
    to zero (see ``flush_tiny``); updates ``t`` and ``L`` in place.
    """
    sp2 = sp * sp
    use_L = needs_inhibition(L, beta)
    B = A.shape[0]
    for b in range(B):
        respond(A[b], t, L, p, O[b], O[b - 1], beta, sp2, b > 0, use_L)
        flush_tiny(O[b])
        update_thresholds(t, O[b], gamma, sp)
    if use_L:
        update_inhibition(L, O[B - 1], beta, sp2)


@njit(**JIT)
def batch_relative_error(X, rows, R, prec):
    """``R[b] ← (X[rows[b]] - R[b]) / max(R[b], prec)`` in place (``g`` of every sample)."""
    B, m = R.shape
    for b in range(B):
        x = X[rows[b]]
        for j in range(m):
            r = R[b, j]
            R[b, j] = (x[j] - r) / max(r, prec)


@njit(**JIT)
def positive_update(W, S, xi, prec, prune):
    """``W ← W·f(ξ S)`` elementwise (see module docstring); ``W[W <= prec] = 0`` if ``prune``.

    Works for ``W`` in either layout, as long as ``S`` has the same one. Written without
    branches (``f(x) = (1 + max(x, 0)) / (1 - min(x, 0))``) so that it vectorises.
    """
    flat_w = W.reshape(-1)
    flat_s = S.reshape(-1)
    one = W.dtype.type(1)
    zero = W.dtype.type(0)
    if prune:
        for k in range(flat_w.shape[0]):
            x = xi * flat_s[k]
            w = flat_w[k] * (one + max(x, zero)) / (one - min(x, zero))
            flat_w[k] = zero if w <= prec else w
    else:
        for k in range(flat_w.shape[0]):
            x = xi * flat_s[k]
            flat_w[k] = flat_w[k] * (one + max(x, zero)) / (one - min(x, zero))
