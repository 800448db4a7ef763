"""Plain-numpy references written straight from the rule (``docs/rules/sparsedream.md``,
steps 1-8; the mini-batch scheme: ``docs/minibatch.md``), for testing the kernels.

They mirror the notebook's column-vector style and favour clarity over speed.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit as sigmoid


def sparsedream_step(v, W, t, L, *, xi, sp, gamma, beta, prec, prune):
    """One SparseDream sample (steps 1–8 of the rule), in place on ``W``, ``t``, ``L``.

    ``t`` is (N,), ``v`` is (m,). Returns ``o`` (N,).
    """
    v = v.reshape(-1, 1)
    tt = t.reshape(-1, 1)
    a = W @ v                                   # 1
    p = sigmoid(a - tt)                         # 2
    o = sigmoid(a - L @ p - tt)                 # 3
    r = W.T @ o                                 # 4
    e = v - r
    L += beta * (o @ o.T - sp * sp)             # 5
    np.fill_diagonal(L, 0)
    W += xi * W * o * (e / np.maximum(r, prec)).T   # 6 (uses W before the update)
    t += gamma * (o.ravel() - sp)               # 7
    if prune:                                   # 8
        W[W <= prec] = 0
    return o.ravel()


def sparsedream_pass(X, order, W, t, L, *, xi, sp, gamma, beta, prec, prune_every):
    """Run :func:`sparsedream_step` over ``X[order]``; pruning by position in ``order``."""
    for k, idx in enumerate(order):
        sparsedream_step(X[idx], W, t, L, xi=xi, sp=sp, gamma=gamma, beta=beta,
                         prec=prec, prune=(k % prune_every == 0))


def sparsedream_response(X, W, t, L):
    """Network response ``o`` (n, N) of steps 1–3 for every row of ``X``."""
    a = X @ W.T
    p = sigmoid(a - t)
    return sigmoid(a - p @ L.T - t)


def cosine_wta(W, x_train, y_train, x_test, y_test, n_classes=10):
    """The notebook's ``wta_classification``: returns (accuracy, neuron_classes, misclassified)."""
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    wins = np.argmax(x_train @ Wn.T, axis=1)
    counts = np.zeros((W.shape[0], n_classes))
    for n_i, label in zip(wins, y_train):
        counts[n_i, label] += 1
    neuron_class = np.argmax(counts, axis=1)
    pred = neuron_class[np.argmax(x_test @ Wn.T, axis=1)]
    wrong = pred != y_test
    misclassified = np.bincount(y_test[wrong], minlength=n_classes)
    return float(np.mean(~wrong)), neuron_class, misclassified


def sparsedream_minibatch_pass(X, order, W, t, L, *, batch_size, xi, sp, gamma, beta,
                               prec, prune_every, min_response=0.0, saturate=False):
    """Mini-batch scheme of ``fastsd.kernels.minibatch``, written out per sample.

    Per batch: ``W`` fixed; for each sample in order, the forward pass with the current
    ``t``, ``L``, then ``t`` updated with ``o`` and ``L`` with ``õ``; every product with
    the responses uses them floored, ``õ = o`` where ``o >= min_response``, else 0 (and
    ``p̃`` likewise in ``L p̃``, where with ``saturate`` also ``p̃ = 1`` where
    ``1 - p < min_response``); the weight update
    ``W·f(xi Σ_b õ_b g_bᵀ)`` with ``f(x) = 1 + x`` (x >= 0), ``1 / (1 - x)`` (x < 0);
    pruning if the batch holds a position that is a multiple of ``prune_every``.
    """
    for lo in range(0, len(order), batch_size):
        batch = order[lo:lo + batch_size]
        S = np.zeros_like(W)
        for idx in batch:
            v = X[idx].reshape(-1, 1)
            tt = t.reshape(-1, 1)
            a = W @ v
            p = sigmoid(a - tt)
            p_w = np.where(p >= min_response, p, 0)
            if saturate:
                p_w = np.where(1 - p_w < min_response, 1, p_w)
            o = sigmoid(a - L @ p_w - tt)
            o_w = np.where(o >= min_response, o, 0)
            L += beta * (o_w @ o_w.T - sp * sp)
            np.fill_diagonal(L, 0)
            t += gamma * (o.ravel() - sp)
            r = W.T @ o_w
            S += o_w @ ((v - r) / np.maximum(r, prec)).T
        x = xi * S
        W *= np.where(x >= 0, 1 + x, 1 / (1 - np.minimum(x, 0)))
        if any(k % prune_every == 0 for k in range(lo, lo + len(batch))):
            W[W <= prec] = 0
