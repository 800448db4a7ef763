"""Winners of the WTA evaluators: the highest-scoring neuron of every sample, in parallel.

All three scores start from the drive ``a = W x`` (also returned by :func:`drives` for
the linear probe). MNIST rows are ~80% zeros, so the drive is accumulated from a
transposed copy ``WT`` (m, N) over the nonzero pixels of ``x`` only,
``a += x[j] * WT[j, :]``: about a fifth of the work of a dense dot, and the inner loop
runs over the N neurons, so it vectorises. Four pixels are added per sweep over ``a``
(one load and store of ``a`` per four pixel rows). The cosine score applies the row
norms to the N sums (``scale``), which equals scaling ``W`` once beforehand.

Everything is computed in float64 whatever the model's dtype: ``WT`` is a float64 copy
(exact for float32 weights) and float32 pixels are converted as they are read (exact
too). The winners of a float32 model are then those of its exact scores, not of float32
rounding, which would flip near-ties and, in the response score, saturate the sigmoid
to exactly 1.0 for whole groups of neurons. It also keeps the kernels to two compiled
versions each (float32 or float64 ``X``).

Ties go to the lowest neuron index, as with ``np.argmax``. Every kernel handles
``CHUNK`` samples per parallel task so scratch arrays are allocated once per chunk.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .common import FASTMATH, JIT, forward

PARALLEL = dict(JIT, parallel=True)

#: Samples per parallel task.
CHUNK = 256


@njit(**JIT)
def nonzero_pixels(x, idx):
    """Write the indices of the nonzero entries of ``x`` to ``idx``; return their count.

    Branch-free: every index is written and the count advances only past nonzeros, so
    the unpredictable zero/nonzero pattern of an image costs no mispredictions.
    """
    k = 0
    for j in range(x.shape[0]):
        idx[k] = j
        k += x[j] != 0
    return k


@njit(**JIT)
def sparse_drive(x, WT, idx, a):
    """``a = W x`` from ``WT = Wᵀ`` (m, N), summing over the nonzero pixels of ``x`` only.

    ``a`` and ``WT`` are float64; ``idx`` is int64 scratch of length m.
    """
    k = nonzero_pixels(x, idx)
    n = a.shape[0]
    a[:] = 0.0
    q = 0
    while q + 4 <= k:
        j0, j1, j2, j3 = idx[q], idx[q + 1], idx[q + 2], idx[q + 3]
        x0, x1 = np.float64(x[j0]), np.float64(x[j1])
        x2, x3 = np.float64(x[j2]), np.float64(x[j3])
        r0, r1, r2, r3 = WT[j0], WT[j1], WT[j2], WT[j3]
        for i in range(n):
            a[i] += x0 * r0[i] + x1 * r1[i] + x2 * r2[i] + x3 * r3[i]
        q += 4
    for q in range(q, k):
        j = idx[q]
        xj = np.float64(x[j])
        r = WT[j]
        for i in range(n):
            a[i] += xj * r[i]


@njit(**JIT)
def first_argmax(s):
    """Index of the largest entry of ``s``; the lowest index among exact ties."""
    best = 0
    top = s[0]
    for i in range(1, s.shape[0]):
        if s[i] > top:
            top = s[i]
            best = i
    return best


@njit(**PARALLEL)
def linear_winners(X, WT, scale, out):
    """``out[s] = argmax_i scale[i] * (W X[s])_i`` for every row of ``X``.

    Parameters
    ----------
    X : (n, m) float32 or float64 array
    WT : (m, N) float64 array
        The transposed weights, C-contiguous.
    scale : (N,) float64 array
        ``1 / ||W_i||`` for the cosine score (0 for an all-zero row), ones for the raw
        score. Applied to the N sums, which equals scaling ``W`` once beforehand.
    out : (n,) int64 array

    Returns
    -------
    out
    """
    n, m = X.shape
    N = WT.shape[1]
    for c in prange((n + CHUNK - 1) // CHUNK):
        a = np.empty(N, dtype=np.float64)
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            sparse_drive(X[s], WT, idx, a)
            for i in range(N):
                a[i] *= scale[i]
            out[s] = first_argmax(a)
    return out


@njit(**PARALLEL)
def response_winners(X, WT, t, L, out):
    """``out[s] = argmax o`` of SparseDream's response (steps 1–3) to every row of ``X``.

    Parameters
    ----------
    X : (n, m) float32 or float64 array
    WT : (m, N) float64 array
        The transposed weights, C-contiguous.
    t, L : (N,), (N, N) float64 arrays
        Thresholds and lateral inhibition.
    out : (n,) int64 array

    Returns
    -------
    out
    """
    n, m = X.shape
    N = WT.shape[1]
    for c in prange((n + CHUNK - 1) // CHUNK):
        a = np.empty(N, dtype=np.float64)
        p = np.empty(N, dtype=np.float64)
        o = np.empty(N, dtype=np.float64)
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            sparse_drive(X[s], WT, idx, a)
            forward(a, t, L, p, o)
            out[s] = first_argmax(o)
    return out


@njit(**PARALLEL)
def drives(X, WT, out):
    """``out[s] = W X[s]`` (float64) for every row of ``X``: the drive ``a`` of step 1.

    Parameters
    ----------
    X : (n, m) float32 or float64 array
    WT : (m, N) float64 array
        The transposed weights, C-contiguous.
    out : (n, N) float64 array

    Returns
    -------
    out
    """
    n, m = X.shape
    for c in prange((n + CHUNK - 1) // CHUNK):
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            sparse_drive(X[s], WT, idx, out[s])
    return out
