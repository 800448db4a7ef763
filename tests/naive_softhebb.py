"""Plain-numpy reference of SoftHebb (Moraitis et al., Neuromorph. Comput. Eng. 2022),
written from the rule's equations (``docs/rules/softhebb.md``), not from the kernel.

For a sample ``x`` with weights ``W`` (N×m), biases ``b``, inverse temperature ``beta``:

    u = W x + b
    y = softmax(beta u)
    Δw_k = eta y_k (x - u_k w_k)
    Δb_k = (eta_b / beta) exp(-beta b_k) (y_k - exp(beta b_k))

A batch of B samples applies the mean of the per-sample updates, each computed at the
state of the batch's start (B = 1: the paper's online rule). No attempt at speed.
"""
from __future__ import annotations

import numpy as np


def softmax(v):
    """``exp(v) / Σ exp(v)``, the maximum subtracted first."""
    e = np.exp(v - np.max(v))
    return e / np.sum(e)


def sh_deltas(W, b, x, *, beta):
    """The unscaled updates of one sample: ``(y ⊙ (x - u ⊙ W), exp(-beta b)(y - exp(beta b)))``."""
    u = W @ x + b
    y = softmax(beta * u)
    dW = y[:, None] * (x[None, :] - u[:, None] * W)
    db = np.exp(-beta * b) * (y - np.exp(beta * b))
    return dW, db


def sh_batch(W, b, Xb, *, eta, eta_b, beta):
    """One update of ``W``, ``b`` (in place) on the rows of ``Xb`` (mean over them)."""
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    for x in Xb:
        dWi, dbi = sh_deltas(W, b, x, beta=beta)
        dW += dWi
        db += dbi
    W += eta * dW / len(Xb)
    b += eta_b / beta * db / len(Xb)
    return W, b


def sh_pass(W, b, X, order, *, batch_size=1, eta, eta_b=None, beta=1.0, rates=None):
    """``sh_batch`` on consecutive ``batch_size`` slices of ``X[order]`` (the last may be
    shorter), float64 copies returned. ``rates(k)`` (optional) scales both rates for the
    batch starting at position ``k``."""
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    eta_b = eta if eta_b is None else eta_b
    for s in range(0, len(order), batch_size):
        f = 1.0 if rates is None else rates(s)
        sh_batch(W, b, X[order[s:s + batch_size]], eta=eta * f, eta_b=eta_b * f,
                 beta=beta)
    return W, b
