"""Mini-batch SparseDream: the per-sample parts of a batch, and the batched update.

Within a batch ``W`` is held fixed, so the heavy products are matrix products done by
BLAS in the driver (``fastsd.minibatch``): ``A = X_b Wᵀ``, ``R = O W`` and
``S = Oᵀ G``. What stays per sample, in ``batch_responses``, is the cheap and
order-dependent part: the forward pass with the current thresholds and inhibition, and
the homeostatic threshold and inhibition updates, so homeostasis still acts sample by
sample exactly as in the per-sample rule.

The weight update is multiplicative, ``w ← w·f(ξ s)`` with ``s = Σ_b o_b g_b`` summed
over the batch, and ``f(x) = 1 + x`` for ``x >= 0`` but ``1 / (1 - x)`` for ``x < 0``.
Both forms agree to first order (the per-sample rule is ``f(x) = 1 + x``); the second
keeps weights positive when many samples of a batch push the same weight down at once,
where ``1 + x`` would cross zero and prune the whole neuron away (this is what broke
the research notebook's mini-batch attempt).
"""
from __future__ import annotations

from numba import njit

from .common import JIT, flush_tiny, forward, update_inhibition, update_thresholds


@njit(**JIT)
def batch_responses(A, t, L, sp, gamma, beta, p, O):
    """Steps 2–3, 5 and 7 for each row of the batch drive ``A = X_b Wᵀ``, in order.

    Writes the responses into ``O`` (B, N); updates ``t`` and ``L`` in place.
    """
    sp2 = sp * sp
    for b in range(A.shape[0]):
        forward(A[b], t, L, p, O[b])
        flush_tiny(O[b])
        update_inhibition(L, O[b], beta, sp2)
        update_thresholds(t, O[b], gamma, sp)


@njit(**JIT)
def batch_relative_error(Xb, R, prec):
    """``R ← (X_b - R) / max(R, prec)`` in place (the per-sample ``g`` of every row)."""
    B, m = R.shape
    for b in range(B):
        for j in range(m):
            r = R[b, j]
            R[b, j] = (Xb[b, j] - r) / max(r, prec)


@njit(**JIT)
def positive_update(W, S, xi, prec, prune):
    """``W ← W·f(ξ S)`` (see module docstring); then ``W[W <= prec] = 0`` if ``prune``."""
    N, m = W.shape
    one = W.dtype.type(1)
    zero = W.dtype.type(0)
    for i in range(N):
        for j in range(m):
            x = xi * S[i, j]
            w = W[i, j]
            w = w * (one + x) if x >= 0 else w / (one - x)
            if prune and w <= prec:
                w = zero
            W[i, j] = w
