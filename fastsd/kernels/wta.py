"""Winners of the WTA evaluators: the highest-scoring neuron of every sample, in parallel.

All three scores start from the drive ``a = W x`` (also returned by :func:`drives` for
the linear probe). MNIST rows are ~80% zeros, so the drive is accumulated from a
transposed copy ``WT`` (m, N) over the nonzero pixels of ``x`` only,
``a += x[j] * WT[j, :]``: about a fifth of the work of a dense dot, and the inner loop
runs over the N neurons, so it vectorises. Four pixels are added per sweep over ``a``
(one load and store of ``a`` per four pixel rows).

Winners are those of the float64 scores whatever the model's dtype, so a float32 model
is judged by its exact scores, not by float32 rounding (which would flip near-ties and,
in the response score, saturate the sigmoid to exactly 1.0 for whole groups of neurons).
The cosine and raw scores (:func:`linear_winners`) get there faster with a certified
float32 pass: scores are summed in float32 (half the memory traffic, twice the SIMD
width) with a rigorous bound on their rounding error; every neuron whose float32 score
is within twice that bound of the best is re-scored exactly in float64 from the same
pixels. On MNIST fewer than 0.2% of the samples need that second look. Exact ties go
to the lowest neuron index, as with ``np.argmax``.

Every kernel handles ``SAMPLES_PER_TASK`` samples per parallel task, so scratch arrays are
allocated once per chunk.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._tunables import JIT, PARALLEL_JIT, SAMPLES_PER_TASK
from .common import forward, nonzero_pixels, selected_row_sum, sparse_drive

#: Unit roundoff of float32.
U32 = 2.0 ** -24


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


@njit(**JIT)
def float32_error(x, idx, k, wmax):
    """Bound on ``|float32 score - exact score|`` of one neuron for the sample ``x``.

    The float32 score sums ``k`` products ``x_j w_j`` whose factors were rounded to
    float32 (relative error ``u = 2**-24`` each, none for float32 ``x``) in any order,
    with or without fused multiply-adds. Its error is at most ``γ(k + 2) Σ|x_j w_j|``
    with ``γ(n) = n u / (1 - n u)`` (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., sections 3.1 and 3.5), and ``Σ|x_j w_j| <= ||x||₁ wmax``.
    Float32 underflow adds at most ``2**-149`` per product and per weight. The result
    is doubled for safety: a loose bound only costs a few more exact re-scorings.
    """
    norm1 = 0.0
    for q in range(k):
        norm1 += abs(np.float64(x[idx[q]]))
    g = (k + 2) * U32
    return 2.0 * (g / (1.0 - g) * norm1 * wmax + 2.0 * (k + 1) * 2.0 ** -149)


@njit(**JIT)
def exact_argmax(x, idx, k, WT, a, cutoff):
    """Argmax, in float64 from ``WT``, over the neurons whose ``a[i] >= cutoff``.

    Ties go to the lowest index.
    """
    best = -1
    top = -np.inf
    for i in range(a.shape[0]):
        if a[i] >= cutoff:
            s = 0.0
            for q in range(k):
                j = idx[q]
                s += np.float64(x[j]) * WT[j, i]
            if s > top or best < 0:
                top = s
                best = i
    return best


@njit(**PARALLEL_JIT)
def linear_winners(X, WT32, WT64, wmax, out):
    """``out[s] = argmax_i (Ŵ X[s])_i`` for every row of ``X`` (cosine and raw scores).

    Parameters
    ----------
    X : (n, m) float32 or float64 array
    WT32, WT64 : (m, N) float32 and float64 arrays
        ``Ŵᵀ``, C-contiguous: ``W`` with rows scaled to unit norm (cosine) or by a power
        of two (raw, which leaves its winners unchanged), so that ``|Ŵ| <= 1``.
    wmax : float
        ``max |Ŵ|`` over both copies.
    out : (n,) int64 array

    Returns
    -------
    out
        Winners of the float64 scores ``Σ_j X[s, j] WT64[j, i]``, ties to the lowest index.
    """
    n, m = X.shape
    N = WT32.shape[1]
    for c in prange((n + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK):
        a = np.empty(N, dtype=np.float32)
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * SAMPLES_PER_TASK, min(n, (c + 1) * SAMPLES_PER_TASK)):
            x = X[s]
            k = nonzero_pixels(x, idx)
            selected_row_sum(x, WT32, idx, k, a)
            best = first_argmax(a)
            cutoff = np.float64(a[best]) - 2.0 * float32_error(x, idx, k, wmax)
            rivals = 0
            for i in range(N):
                rivals += a[i] >= cutoff
            out[s] = best if rivals == 1 else exact_argmax(x, idx, k, WT64, a, cutoff)
    return out


@njit(**PARALLEL_JIT)
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
    for c in prange((n + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK):
        a = np.empty(N, dtype=np.float64)
        p = np.empty(N, dtype=np.float64)
        o = np.empty(N, dtype=np.float64)
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * SAMPLES_PER_TASK, min(n, (c + 1) * SAMPLES_PER_TASK)):
            sparse_drive(X[s], WT, idx, a)
            forward(a, t, L, p, o)
            out[s] = first_argmax(o)
    return out


@njit(**PARALLEL_JIT)
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
    for c in prange((n + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK):
        idx = np.empty(m, dtype=np.int64)
        for s in range(c * SAMPLES_PER_TASK, min(n, (c + 1) * SAMPLES_PER_TASK)):
            sparse_drive(X[s], WT, idx, out[s])
    return out
