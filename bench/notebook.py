"""The notebook's per-sample SparseDream loop, in plain numpy, as the speed baseline.

Transcribed in the notebook's own style (column vectors, ``expit``, ``np.where``
pruning) so the measured ratio is against what researchers actually run.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit as sig


def notebook_sparsedream(inputs, w, t, lat_in, *, xi, sp, gamma, beta, prec=1e-10):
    """One epoch over the rows of ``inputs`` (already permuted); returns ``w, t, lat_in``."""
    sp2 = sp * sp
    t = t.reshape(-1, 1)
    for i in range(inputs.shape[0]):
        v = inputs[i].reshape(-1, 1)
        w_v = w @ v
        p = sig(w_v - t)
        o = sig(w_v - (lat_in @ p) - t)

        r = w.T @ o
        mod_r = np.maximum(r, prec)
        e = v - r

        lat_in += ((o * o.T) - sp2) * beta
        np.fill_diagonal(lat_in, 0)

        w += w * o * (e / mod_r).T * xi
        t += (o - sp) * gamma

        if i % 100 == 0:
            w = np.where(w > prec, w, 0.0)
    return w, t.ravel(), lat_in
