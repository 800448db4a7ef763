"""Mini-batch SparseDream: a whole pass in compiled code, sparse in the responses.

The scheme, per batch of ``B`` samples:

- ``W`` is held fixed. Each sample's drive ``a = W v`` comes from a transposed copy
  ``Wᵀ`` (m, N), over the non-zero pixels only (one pixel's weights to all neurons are
  contiguous there), as the sum of two partial drives over two ranges of pixels, a
  batch at a time in blocks of neurons (each block of ``Wᵀ`` read once per batch).
- The forward pass, the threshold update and the inhibition update stay per sample and
  in order: homeostasis acts sample by sample as in the per-sample rule, and the
  thresholds see the exact responses ``o``.
- Every product with the responses uses them floored: ``õ`` is ``o`` with entries
  below ``min_response`` set to zero (``p̃`` likewise, and with ``saturate`` the ``p``
  within ``min_response`` of 1 set to 1). On MNIST (B=100, 1e-6) ~40 of the 100
  ``o`` of a sample are active at the start of the first epoch and ~12 at its end;
  with ``sp = 1/N`` at N = 1600 or 6400 only ~2-3 on average (hundreds in the first
  batches). So the reconstruction ``r = Wᵀ õ`` and the summed update
  ``S = Σ_b õ_b g_bᵀ`` (``g = (v - r) / max(r, prec)``) touch a few rows of ``W`` per
  sample, and the update ``L += beta (õ õᵀ - sp²)`` (diagonal kept at zero) writes
  only the active rows of ``L`` (held transposed, so that they are contiguous).
- ``L p̃`` reads the fewer of: the rows of the nonzero ``p̃``, or the rows of the
  ``p̃ != 1``, as ``u - Σ (1 - p̃_j) L[:, j]`` from the row sums ``u = L 1`` (kept in
  step, float64). At large N with a small ``sp`` the thresholds fall until nearly every
  ``p`` is 1 (exactly, in float32) and a sample reads ~2-50 rows instead of N.
- The constant part ``-beta sp²`` of the inhibition updates is carried as one offset
  ``c`` of every off-diagonal entry (``L p̃`` gains ``c (Σ p̃ - p̃)``) and added to
  ``L`` in one sweep every ``FLUSH_EVERY`` positions and at the end of the pass, at the
  same positions however the pass is split into calls, so that the split does not
  change the result.
- ``W ← W·f(ξ S)`` on the rows the batch touched, with ``f(x) = 1 + x`` for ``x >= 0``
  but ``1 / (1 - x)`` for ``x < 0``. Both agree to first order (the per-sample rule is
  ``f(x) = 1 + x``); the second keeps weights positive when many samples of a batch push
  the same weight down at once, where ``1 + x`` would cross zero and prune the whole
  neuron away (this is what broke the research notebook's mini-batch attempt).
- Pruning (``W[W <= prec] = 0``) after the update of a batch that holds a position
  ``k`` with ``k % prune_every == 0``. Only rows changed since the last pruning can hold
  new small weights, so only those are visited; the result is that of pruning all.

The per-sample half of each batch (responses, thresholds, inhibition) runs here on
one thread; the weight half (errors, summed update, pruning, ``Wᵀ``) and the next
batch's drives run on two column parts, in parallel if two threads are allowed
(:mod:`fastsd.kernels.columns`). ``tests/naive.py`` (``sparsedream_minibatch_pass``)
writes the same scheme in numpy.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._tunables import FLUSH_EVERY, JIT, SCAN, SYMMETRY_TILE
from .columns import columns_region
from .common import (
    _excitation, _inhibited, all_finite, flush_tiny, needs_inhibition, selected_row_sum,
    update_thresholds,
)

@njit(**JIT)
def indices_other_than(x, value, idx):
    """Write the indices ``i`` with ``x[i] != value`` (NaN included) into ``idx``;
    return how many. Beyond ``4 * SCAN`` entries, blocks of ``SCAN`` are first counted
    (a vector loop) and only those with a hit are scanned for indices: fast when hits
    are rare, as the active responses and the unsaturated excitations are at large N."""
    n = 0
    size = x.shape[0]
    skip = size > 4 * SCAN
    for lo in range(0, size, SCAN):
        hi = min(lo + SCAN, size)
        if skip:
            hits = 0
            for i in range(lo, hi):
                hits += not x[i] == value
            if not hits:
                continue
        for i in range(lo, hi):
            idx[n] = i
            n += not x[i] == value
    return n


@njit(**JIT)
def floor_responses(o, min_response, idx):
    """``o = õ`` in place (entries below ``min_response``, and NaN, set to 0); the
    indices of the nonzero others go to ``idx`` (a zero adds nothing to any product).
    Returns how many."""
    zero = o.dtype.type(0)
    for i in range(o.shape[0]):
        o[i] = o[i] if o[i] >= min_response else zero
    return indices_other_than(o, zero, idx)


@njit(**JIT)
def round_excitation(p, min_response, saturate, on, off):
    """``p = p̃`` in place: entries below ``min_response`` set to 0 and, if ``saturate``,
    entries within ``min_response`` of 1 (``1 - p < min_response``) set to 1. Returns
    ``(n, ones, Σ p̃)``: the indices of the fewer of the ``p̃ != 0`` (then ``ones`` is
    False) and the ``p̃ != 1`` (``ones`` True) go to ``on`` or ``off``, ``n`` of them."""
    zero, one = p.dtype.type(0), p.dtype.type(1)
    n_on = n_off = 0
    total = zero
    for i in range(p.shape[0]):
        x = zero if p[i] < min_response else p[i]
        x = one if saturate and one - x < min_response else x
        p[i] = x
        n_on += not x == zero
        n_off += not x == one
        total += x
    if n_on <= n_off:
        return indices_other_than(p, zero, on), False, total
    return indices_other_than(p, one, off), True, total


@njit(**JIT)
def lateral_input(LT, u, p, q, offset, min_response, saturate, on, off, lp):
    """``lp = L p̃`` for ``L = LTᵀ + offset`` off the diagonal, from the transposed
    ``LT`` and its column sums ``u`` (``u = L 1``), reading the fewer rows of ``LT``:
    those of the nonzero ``p̃`` (``Σ p̃_j LT[j]``) or those of the ``p̃ != 1``
    (``u - Σ (1 - p̃_j) LT[j]``); plus ``offset (Σ p̃ - p̃)``. ``p`` becomes ``p̃``
    (:func:`round_excitation`), ``q`` is scratch. Returns the rows read."""
    n_read, ones, total = round_excitation(p, min_response, saturate, on, off)
    if not ones:
        selected_row_sum(p, LT, on, n_read, lp)
    else:
        one = p.dtype.type(1)
        for k in range(n_read):
            q[off[k]] = one - p[off[k]]
        selected_row_sum(q, LT, off, n_read, lp)
        for i in range(lp.shape[0]):
            lp[i] = u[i] - lp[i]
    if offset != 0:
        for i in range(lp.shape[0]):
            lp[i] += offset * (total - p[i])
    return n_read


@njit(**JIT)
def inhibit_active(LT, u, o, s, idx, n_active, beta):
    """``L += beta õ õᵀ`` (the diagonal kept at zero) on the rows of ``LT`` of the
    active responses ``idx[:n_active]``, and the column sums ``u`` with it; ``o`` is
    floored (:func:`floor_responses`), so that whole rows are updated with vector
    arithmetic. Entry ``(i, j)`` gains ``s_i s_j`` with ``s = sqrt(beta) õ`` (``s``:
    scratch), the same number as entry ``(j, i)``: a symmetric ``L`` stays exactly
    symmetric, so that it is its own transpose. The diagonal must be zero already.
    ``õ`` is finite (NaN fails the floor), so finite rows stay finite."""
    if n_active == 0:
        return
    root = o.dtype.type(np.sqrt(beta))
    for i in range(o.shape[0]):
        s[i] = root * o[i]
    total = o.dtype.type(0)
    for q in range(n_active):
        i = idx[q]
        total += o[i]
        si = s[i]
        row = LT[i]
        for j in range(row.shape[0]):
            row[j] += si * s[j]
        row[i] = 0
    for q in range(n_active):
        i = idx[q]
        u[i] += beta * o[i] * (total - o[i])


@njit(**JIT)
def column_sums(LT, u):
    """``u = Σ_j LT[j]`` (``u`` is float64)."""
    u[:] = 0
    for j in range(LT.shape[0]):
        row = LT[j]
        for i in range(row.shape[0]):
            u[i] += row[i]


@njit(**JIT)
def flush_offset(LT, offset, u):
    """``LT += offset`` off the diagonal (the diagonal set to 0), and ``u`` its new
    column sums; returns whether ``LT`` is all finite. One sweep over ``LT``."""
    u[:] = 0
    ok = True
    for j in range(LT.shape[0]):
        row = LT[j]
        for i in range(row.shape[0]):
            row[i] += offset
            u[i] += row[i]
        u[j] -= row[j]
        row[j] = 0
        ok &= all_finite(row)
    return ok


@njit(**JIT)
def clear_diagonal(LT, u):
    """``diag(LT) = 0``, the column sums ``u`` with it."""
    for i in range(LT.shape[0]):
        u[i] -= LT[i, i]
        LT[i, i] = 0


@njit(**JIT)
def batch_responses(n_batch, t, LT, rates, options, offset, first, use_L, scratch):
    """The per-sample half of a batch of ``n_batch`` samples: for each sample ``b`` in
    order, its drive ``A[b]`` (the sum of the partial drives ``AP[:, b]``), responses
    into ``O[b]`` (floored after the thresholds took them), threshold and inhibition
    updates (``A``, ``AP``, ``O`` and the other arrays: fields of ``scratch``,
    :class:`fastsd.kernels.inputs.MiniBatchScratch`).

    ``LT`` holds ``Lᵀ`` less the constant part of the inhibition updates so far,
    ``offset`` (off the diagonal), and ``u`` its column sums; returns the new offset.
    ``first``: this is the first
    batch of the call (the diagonal of ``LT`` is then cleared before the first update,
    as step 5 does after it). ``P`` (2, N), ``off`` (N,): scratch.

    The active sets go both ways: ``neurons[b, :n_neurons[b]]`` are the active neurons
    of sample ``b`` and ``samples[i, :n_samples[i]]`` the samples in which neuron ``i``
    is active (in order), for the weight half of the batch. ``n_read[b]``: rows of
    ``LT`` read for ``L p̃`` of sample ``b``.
    """
    A, O = scratch.A[:n_batch], scratch.O[:n_batch]
    AP, u, P, off = scratch.AP, scratch.u, scratch.P, scratch.off
    neurons, n_neurons, n_read = scratch.neurons, scratch.n_neurons, scratch.n_read
    samples, n_samples = scratch.samples, scratch.n_samples
    min_response, saturate = options.min_response, options.saturate
    gamma, beta, sp = rates.gamma, rates.beta, rates.sp
    step_offset = -beta * (sp * sp)  # the constant part of one inhibition update
    p, q = P[0], P[1]
    n_samples[:] = 0
    for b in range(O.shape[0]):
        a = A[b]
        a[:] = AP[0, b]
        for part in range(1, AP.shape[0]):
            a += AP[part, b]
        o = O[b]
        idx = neurons[b]
        n_read[b] = 0
        if use_L:
            _excitation(a, t, p)
            n_read[b] = lateral_input(LT, u, p, q, offset, min_response, saturate, idx,
                                      off, o)
            _inhibited(a, t, o)
        else:
            _excitation(a, t, o)
        flush_tiny(o)
        update_thresholds(t, o, gamma, sp)
        n_active = floor_responses(o, min_response, idx)
        n_neurons[b] = n_active
        for k in range(n_active):
            i = idx[k]
            samples[i, n_samples[i]] = b
            n_samples[i] += 1
        if use_L:
            if first and b == 0:
                clear_diagonal(LT, u)
            inhibit_active(LT, u, o, q, idx, n_active, beta)
            offset += step_offset
    return offset


@njit(**JIT)
def mark_changed(prune, dirty, n_samples, changed):
    """``changed[i]``: row ``i`` of ``W`` gets an update (its neuron responded in the
    batch, ``n_samples[i] > 0``) or, if ``prune``, is pruned (changed since the last
    pruning, ``dirty``). Updates ``dirty``; returns the number of changed rows."""
    n_changed = 0
    for i in range(changed.shape[0]):
        row_changed = n_samples[i] > 0
        if row_changed:
            dirty[i] = True
        if prune and dirty[i]:
            dirty[i] = False
            row_changed = True
        changed[i] = row_changed
        n_changed += row_changed
    return n_changed


@njit(**JIT)
def minibatch_pass(X, order, start, stop, W, t, LT, rates, options, scratch, fresh):
    """Run the mini-batch scheme on ``X[order[start:stop]]`` in place.

    Per batch, the per-sample half (:func:`batch_responses`, one thread) alternates with
    one parallel region (:func:`fastsd.kernels.columns.columns_region`) that applies the
    batch's weight update and computes the next batch's partial drives. The constant
    part of the inhibition updates is added to ``LT`` (:func:`flush_offset`) only after
    the batches that end at or past a multiple of ``FLUSH_EVERY`` positions and at the
    end of ``order``: at the same positions however a pass is split into calls.

    Parameters
    ----------
    X, order, start, stop, W, t, rates
        As for :func:`fastsd.kernels.sparsedream.sparsedream_pass`. Batches start at
        ``start``; positions decide pruning as there.
    LT : (N, N) array
        ``L.T``, the transposed inhibition matrix, updated in place; until the end of
        ``order`` it lacks ``scratch.pending[0]`` off the diagonal.
    options : :class:`fastsd.kernels.inputs.MiniBatchOptions`
        Batch size, pruning interval, response floor, saturation
        (:func:`fastsd.kernels.inputs.minibatch_options`).
    scratch : :class:`fastsd.kernels.inputs.MiniBatchScratch`
        Work arrays (:func:`fastsd.kernels.inputs.minibatch_scratch`); ``WT`` must hold
        ``W.T``, and ``u``, ``pending`` and ``dirty`` are carried from the previous call
        if not ``fresh``.
    fresh : bool
        Start a pass: the column sums ``u`` and the offset ``pending`` are set here.

    Returns
    -------
    int
        -1, or the first position of a batch after which the state was not finite.
    """
    xi, prec = rates.xi, rates.prec
    batch_size, prune_every = options.batch_size, options.prune_every
    u, pending, finite = scratch.u, scratch.pending, scratch.finite
    use_L = needs_inhibition(LT, rates.beta)
    # columns_region is a parallel function, and a tuple argument there costs a third
    # more compile time (measured: 55 s against 37 s), so it gets the arrays one by one
    arrays = (scratch.WT, scratch.O, scratch.G, scratch.AP, scratch.neurons,
              scratch.n_neurons, scratch.samples, scratch.n_samples)
    changed, per_part = scratch.changed, (scratch.cuts, scratch.IDX, scratch.NNZ, scratch.S,
                                          finite)
    if fresh:
        column_sums(LT, u)
        pending[0] = 0
    ok = all_finite(W) and all_finite(u)  # a non-finite L makes its column sum so
    upcoming = order[start:min(start + batch_size, stop)]
    columns_region(X, order[:0], upcoming, W, *arrays, xi, prec, False, changed, 0,
                   *per_part)
    for lo in range(start, stop, batch_size):
        end = min(lo + batch_size, stop)
        n_batch = end - lo
        pending[0] = batch_responses(n_batch, t, LT, rates, options, pending[0],
                                     lo == start, use_L, scratch)
        prune = (-lo) % prune_every < n_batch  # some k in [lo, lo + n_batch) is a multiple
        n_changed = mark_changed(prune, scratch.dirty, scratch.n_samples, changed)
        upcoming = order[end:min(end + batch_size, stop)]
        columns_region(X, order[lo:end], upcoming, W, *arrays, xi, prec, prune, changed,
                       n_changed, *per_part)
        if use_L and (end // FLUSH_EVERY > lo // FLUSH_EVERY or end == order.shape[0]):
            ok &= flush_offset(LT, pending[0], u)
            pending[0] = 0
        ok &= finite.all() and all_finite(t)
        if not ok:
            return lo
    return -1


@njit(**JIT)
def is_symmetric(L):
    """True if the square ``L`` equals its transpose off the diagonal (NaN never does).
    Compares tiles, so that both reads stay in the cache."""
    n = L.shape[0]
    tile = SYMMETRY_TILE
    for i0 in range(0, n, tile):
        for j0 in range(i0, n, tile):
            for i in range(i0, min(i0 + tile, n)):
                for j in range(max(j0, i + 1), min(j0 + tile, n)):
                    if L[i, j] != L[j, i]:
                        return False
    return True
