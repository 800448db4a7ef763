"""The weight half of a mini-batch, split by pixel columns over two parts.

Once a batch's responses are known, everything left of it works on columns of ``W``
independently: the reconstruction ``r = Wᵀ õ`` and error ``g`` of a pixel need only that
pixel's column, the summed update of ``W[i, j]`` only ``g[:, j]``, and the drives of the
next batch are sums of rows of ``Wᵀ`` that split into partial sums over pixel ranges. So
:func:`columns_region` runs one part per thread, each on its own range of pixels
(:func:`column_cuts`): its columns of ``W``, ``G`` and ``X``, its rows of ``Wᵀ``, and its
partial drives ``AP[part]``. Each core keeps its own data in its own cache from batch to
batch; the only data that cross cores are the partial drives and the responses.

The split is fixed (two parts, whatever the number of threads), so results do not
depend on the number of threads; with one thread the parts simply run one after the
other.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._tunables import ALIGN, DRIVE_BLOCK_BYTES, JIT, JIT_IEEE, PARALLEL_JIT, PARTS
from .common import (
    all_finite, nonzero_pixels, prefetch_row, relative_error,
    selected_row_sum_from,
)
from .simd import transpose_columns


def column_cuts(n_features: int) -> np.ndarray:
    """Boundaries ``[0, c, n_features]`` of the two parts, ``c`` a multiple of
    ``ALIGN`` near the middle (a part may be empty for tiny ``n_features``)."""
    cut = min(n_features, (n_features // 2 + ALIGN // 2) // ALIGN * ALIGN)
    return np.array([0, cut, n_features], dtype=np.int64)


@njit(**JIT_IEEE)
def positive_update(w, s, xi):
    """``w ← w·f(ξ s)`` for one row, ``f(x) = 1 + x`` for ``x >= 0`` and ``1 / (1 - x)``
    below. Branch-free so it vectorises: ``f(x) = (1 + max(x, 0)) / (1 - min(x, 0))``."""
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    for j in range(w.shape[0]):
        x = xi * s[j]
        w[j] = w[j] * (one + max(x, zero)) / (one - min(x, zero))


@njit(**JIT)
def prune_row(w, prec):
    """``w[w <= prec] = 0`` for one row (NaN is kept)."""
    zero = w.dtype.type(0)
    for j in range(w.shape[0]):
        if w[j] <= prec:
            w[j] = zero


@njit(**JIT)
def part_errors(X, rows, W, O, neurons, n_neurons, prec, start, stop, r, G):
    """``G[b, start:stop] = (x - r) / max(r, prec)`` with ``r = Σ_i õ_bi W[i, start:stop]``
    over the active neurons ``neurons[b, :n_neurons[b]]`` of each sample ``b``
    (``X[rows[b]]`` its pixels)."""
    for b in range(rows.shape[0]):
        selected_row_sum_from(O[b], W, neurons[b], n_neurons[b], start, r)
        relative_error(X[rows[b], start:stop], r, prec, G[b, start:stop])


@njit(**JIT)
def part_update(W, O, G, samples, n_samples, xi, prec, prune, changed, start, stop, s):
    """``W[i, start:stop] ← ·f(ξ S)`` with ``S = Σ_b õ_bi G[b, start:stop]`` over the
    samples ``samples[i, :n_samples[i]]`` in which neuron ``i`` is active, for the rows
    marked ``changed``; then pruned if ``prune``."""
    for i in range(W.shape[0]):
        if not changed[i]:
            continue
        if n_samples[i]:
            selected_row_sum_from(O[:, i], G, samples[i], n_samples[i], start, s)
            positive_update(W[i, start:stop], s, xi)
        if prune:
            prune_row(W[i, start:stop], prec)


@njit(**JIT)
def part_transpose(W, WT, changed, n_changed, start, stop):
    """Bring ``WT[start:stop]`` up to date with the changed rows of ``W``."""
    if n_changed > W.shape[0] // 8:  # one tiled transpose beats many column copies
        transpose_columns(W, WT, start, stop)
    else:
        for i in range(W.shape[0]):
            if changed[i]:
                WT[start:stop, i] = W[i, start:stop]


@njit(**JIT)
def drive_block(n_rows, itemsize):
    """Neurons per block of the drives: ``n_rows`` rows of that many columns of ``Wᵀ``
    take about ``DRIVE_BLOCK_BYTES``; a multiple of ``ALIGN``."""
    return max(ALIGN, DRIVE_BLOCK_BYTES // max(1, n_rows * itemsize) // ALIGN * ALIGN)


@njit(**JIT)
def part_drives(X, rows, WT, start, stop, IDX, NNZ, AP):
    """``AP[b] = Σ_j X[rows[b], j] WT[j]`` over the nonzero pixels ``start <= j < stop``.

    Cache-blocked: the nonzero pixels of every sample are listed first (``IDX[b]``,
    ``NNZ[b]``), then each block of neurons (:func:`drive_block` columns of ``WT``,
    small enough to stay in a core's cache) is summed for all samples in turn, so
    that ``WT`` is read from memory once per batch rather than once per sample. The
    sums are the same as sample by sample, bit for bit.
    """
    WT_part = WT[start:stop]
    n = rows.shape[0]
    for b in range(n):
        if b + 2 < n:  # random rows: start loading ahead
            prefetch_row(X[rows[b + 2], start:stop])
        NNZ[b] = nonzero_pixels(X[rows[b], start:stop], IDX[b])
    n_neurons = WT.shape[1]
    block = drive_block(stop - start, WT.itemsize)
    for lo in range(0, n_neurons, block):
        hi = min(n_neurons, lo + block)
        for b in range(n):
            selected_row_sum_from(X[rows[b], start:stop], WT_part, IDX[b], NNZ[b], lo,
                                  AP[b, lo:hi])


@njit(**PARALLEL_JIT)
def columns_region(X, done, upcoming, W, WT, O, G, AP, neurons, n_neurons, samples,
                   n_samples, xi, prec, prune, changed, n_changed, cuts, IDX, NNZ, S,
                   finite):
    """One parallel region per batch: for the samples ``X[done]`` whose responses are
    in ``O`` (active sets in ``neurons``/``samples``, see
    :func:`fastsd.kernels.minibatch.batch_responses`), errors, summed update, pruning
    and ``WT``; then the partial drives of the samples ``X[upcoming]`` into ``AP``.
    ``finite[part]``: the part's columns of the changed rows of ``W`` are all finite
    (set only if ``done`` is not empty). ``IDX``, ``NNZ``, ``S``: scratch per part.
    """
    for part in prange(PARTS):
        start, stop = cuts[part], cuts[part + 1]
        s = S[part, :stop - start]
        if done.shape[0]:
            O_done = O[:done.shape[0]]
            part_errors(X, done, W, O_done, neurons, n_neurons, prec, start, stop, s, G)
            part_update(W, O_done, G, samples, n_samples, xi, prec, prune, changed, start,
                        stop, s)
            part_transpose(W, WT, changed, n_changed, start, stop)
            ok = True
            for i in range(W.shape[0]):
                if changed[i]:
                    ok &= all_finite(W[i, start:stop])
            finite[part] = ok
        part_drives(X, upcoming, WT, start, stop, IDX[part], NNZ[part], AP[part])
