"""Plain-numpy reference of one Krotov & Hopfield batch update, straight from the rule
(``fastsd/kernels/krotov.py``'s docstring).

No attempt at speed: every quantity of the rule is formed explicitly (the dense ``g``,
the full ranking) so it can be read against the specification line by line.
"""
from __future__ import annotations

import numpy as np


def ranks(I):
    """Unit indices by descending drive for each column of ``I`` (N×B).

    Row ``r - 1`` holds the rank-``r`` unit. Ties go to the lower index (stable sort).
    """
    return np.argsort(-I, axis=0, kind="stable")


def kh_batch(W, Xb, *, eps, p=2.0, k=2, delta=0.4, prec=1e-30):
    """One batch update of ``W`` (N×m, modified in place and returned) on ``Xb`` (B×m)."""
    N, _ = W.shape
    B = Xb.shape[0]
    S = np.sign(W) * np.abs(W) ** (p - 1)
    I = S @ Xb.T                                   # (N, B)
    order = ranks(I)
    g = np.zeros((N, B))
    cols = np.arange(B)
    g[order[0], cols] = 1.0                        # the top-ranked unit of each sample
    g[order[k - 1], cols] = -delta                 # the k-th ranked unit
    xx = np.sum(g * I, axis=1)                     # (N,)
    ds = g @ Xb - xx[:, None] * W
    nc = max(np.max(np.abs(ds)), prec)
    W += eps * ds / nc
    return W


def kh_pass(W, X, order, *, batch_size, **rule):
    """``kh_batch`` on consecutive ``batch_size`` slices of ``X[order]`` (last may be
    shorter); returns a new array."""
    W = np.array(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    order = np.asarray(order)
    for s in range(0, order.size, batch_size):
        kh_batch(W, X[order[s:s + batch_size]], **rule)
    return W
