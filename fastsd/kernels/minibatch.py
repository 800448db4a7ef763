"""Mini-batch SparseDream: a whole pass in compiled code, sparse in the responses.

The scheme, per batch of ``B`` samples:

- ``W`` is held fixed. Each sample's drive ``a = W v`` comes from a transposed copy
  ``Wᵀ`` (m, N), over the non-zero pixels only (one pixel's weights to all neurons are
  contiguous there), as the sum of two partial drives over two ranges of pixels.
- The forward pass, the threshold update and the inhibition update stay per sample and
  in order: homeostasis acts sample by sample as in the per-sample rule, and the
  thresholds see the exact responses ``o``.
- Every product with the responses uses them floored: ``õ`` is ``o`` with entries
  below ``min_response`` set to zero (``p̃`` likewise). Over the first epoch on MNIST
  ~40 of the 100 responses of a sample are above 1e-6 (the default) at the start
  and ~12 at the end, so the
  reconstruction ``r = Wᵀ õ`` and the summed update ``S = Σ_b õ_b g_bᵀ``
  (``g = (v - r) / max(r, prec)``) touch a fraction of the rows of ``W`` per sample,
  the inhibition ``L p̃`` reads only the rows of the active ``p̃`` (``L`` is held
  transposed, so that they are contiguous), and the update
  ``L += beta (õ õᵀ - sp²)`` (diagonal kept at zero) writes only the active rows. Its
  constant part ``-beta sp²`` is carried through a batch as one offset ``c`` of every
  off-diagonal entry (``L p̃`` gains ``c (Σ p̃ - p̃)``) and added to ``L`` at the
  batch's end. ``min_response = 0`` keeps every response.
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

from numba import njit

from .columns import columns_region
from .common import (
    JIT, _excitation, _inhibited, all_finite, flush_tiny, needs_inhibition,
    selected_row_sum, update_thresholds,
)
from .sparsedream import BETA, GAMMA, PREC, SP, XI


@njit(**JIT)
def active_neurons(o, min_response, idx):
    """Write the indices ``i`` with ``o[i] >= min_response`` into ``idx``; return how many."""
    n = 0
    for i in range(o.shape[0]):
        idx[n] = i
        n += o[i] >= min_response
    return n


@njit(**JIT)
def floor_responses(o, min_response, idx):
    """``o = õ`` in place (entries below ``min_response`` set to 0); the indices of the
    others go to ``idx``. Returns how many."""
    n = active_neurons(o, min_response, idx)
    zero = o.dtype.type(0)
    for i in range(o.shape[0]):
        o[i] = o[i] if o[i] >= min_response else zero
    return n


@njit(**JIT)
def lateral_input(LT, p, offset, min_response, idx, lp):
    """``lp = L p̃`` for ``L = LTᵀ + offset`` off the diagonal, from the transposed
    ``LT``: the rows of the active ``p̃`` summed, plus ``offset (Σ p̃ - p̃)``."""
    n = active_neurons(p, min_response, idx)
    selected_row_sum(p, LT, idx, n, lp)
    if offset != 0:
        total = p.dtype.type(0)
        for q in range(n):
            total += p[idx[q]]
        for i in range(lp.shape[0]):
            lp[i] += offset * (total - (p[i] if p[i] >= min_response else 0))


@njit(**JIT)
def inhibit_active(LT, o, idx, n_active, beta):
    """``L += beta õ õᵀ`` (the diagonal kept at zero) on the rows of ``LT`` of the
    active responses ``idx[:n_active]``; ``o`` is floored (:func:`floor_responses`), so
    that whole rows are updated with vector arithmetic. ``õ õᵀ`` is symmetric, so this
    is the update of ``L`` as well as of ``LT``."""
    for q in range(n_active):
        i = idx[q]
        boi = beta * o[i]
        row = LT[i]
        for j in range(row.shape[0]):
            row[j] += boi * o[j]
        row[i] = 0


@njit(**JIT)
def add_offset(L, offset):
    """``L += offset`` off the diagonal, the diagonal set to 0."""
    n = L.shape[0]
    for i in range(n):
        for j in range(n):
            L[i, j] += offset
        L[i, i] = 0


@njit(**JIT)
def clear_diagonal(L):
    """``diag(L) = 0``."""
    for i in range(L.shape[0]):
        L[i, i] = 0


@njit(**JIT)
def respond_floored(a, t, LT, offset, min_response, p, o, idx, use_L):
    """Steps 2-3 with the inhibition from the floored ``p̃`` (:func:`lateral_input`);
    without inhibition (``use_L`` False) ``o = sigmoid(a - t)`` exactly."""
    if use_L:
        _excitation(a, t, p)
        lateral_input(LT, p, offset, min_response, idx, o)
        _inhibited(a, t, o)
    else:
        _excitation(a, t, o)


@njit(**JIT)
def batch_responses(A, AP, t, LT, hp, min_response, first, use_L, O, p, neurons, n_neurons,
                    samples, n_samples):
    """The per-sample half of a batch: for each sample ``b`` in order, its drive
    ``A[b]`` (the sum of the partial drives ``AP[:, b]``), responses into ``O[b]``
    (floored after the thresholds took them), threshold and inhibition updates. The
    constant part of the inhibition updates is added to ``LT`` at the end; ``first``:
    this is the first batch of the pass (step 5 then zeroes a diagonal given with L).

    The active sets go both ways: ``neurons[b, :n_neurons[b]]`` are the active neurons
    of sample ``b`` and ``samples[i, :n_samples[i]]`` the samples in which neuron ``i``
    is active (in order), for the weight half of the batch.
    """
    gamma, beta, sp = hp[GAMMA], hp[BETA], hp[SP]
    step_offset = -beta * (sp * sp)  # the constant part of one inhibition update
    offset = t.dtype.type(0)
    n_samples[:] = 0
    for b in range(O.shape[0]):
        a = A[b]
        a[:] = AP[0, b]
        for part in range(1, AP.shape[0]):
            a += AP[part, b]
        o = O[b]
        idx = neurons[b]
        respond_floored(a, t, LT, offset, min_response, p, o, idx, use_L)
        flush_tiny(o)
        update_thresholds(t, o, gamma, sp)
        n_active = floor_responses(o, min_response, idx)
        n_neurons[b] = n_active
        for q in range(n_active):
            i = idx[q]
            samples[i, n_samples[i]] = b
            n_samples[i] += 1
        if use_L:
            inhibit_active(LT, o, idx, n_active, beta)
            offset += step_offset
            if first and b == 0:
                clear_diagonal(LT)
    if use_L:
        add_offset(LT, offset)


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
def minibatch_pass(X, order, start, stop, batch_size, W, WT, t, LT, hp, prune_every,
                   min_response, A, AP, O, G, p, neurons, n_neurons, samples, n_samples,
                   changed, dirty, cuts, IDX, S, finite):
    """Run the mini-batch scheme on ``X[order[start:stop]]`` in place.

    Per batch, the per-sample half (:func:`batch_responses`, one thread) alternates with
    one parallel region (:func:`fastsd.kernels.columns.columns_region`) that applies the
    batch's weight update and computes the next batch's partial drives.

    Parameters
    ----------
    X, order, start, stop, W, t, hp, prune_every
        As for :func:`fastsd.kernels.sparsedream.sparsedream_pass`. Batches start at
        ``start``; positions decide pruning as there.
    batch_size : int
    WT : (m, N) array
        ``W.T``, kept in step with ``W``.
    LT : (N, N) array
        ``L.T``, the transposed inhibition matrix, updated in place.
    min_response : float
        Responses below it are left out of every product with the responses.
    A, O : (batch_size, N) arrays; AP : (PARTS, batch_size, N) array;
    G : (batch_size, m) array
        Scratch space: drives, responses, partial drives, relative errors of a batch.
    p : (N,) array; changed : (N,) bool array
        Scratch space.
    neurons : (batch_size, N) int array; n_neurons : (batch_size,) int array;
    samples : (N, batch_size) int array; n_samples : (N,) int array
        Scratch space: the active sets of a batch (:func:`batch_responses`).
    dirty : (N,) bool array
        Rows changed since the last pruning (all True is always safe).
    cuts : (PARTS + 1,) int64 array
        Column boundaries of the parts (:func:`fastsd.kernels.columns.column_cuts`).
    IDX : (PARTS, m) int64 array; S : (PARTS, m) array; finite : (PARTS,) bool array
        Scratch space per part.

    Returns
    -------
    int
        -1, or the first position of a batch after which the state was not finite.
    """
    xi, prec = hp[XI], hp[PREC]
    use_L = needs_inhibition(LT, hp[BETA])
    sets = (neurons, n_neurons, samples, n_samples)
    upcoming = order[start:min(start + batch_size, stop)]
    columns_region(X, order[:0], upcoming, W, WT, O, G, AP, *sets, xi, prec, False,
                   changed, 0, cuts, IDX, S, finite)
    for lo in range(start, stop, batch_size):
        n_batch = min(batch_size, stop - lo)
        batch_responses(A[:n_batch], AP, t, LT, hp, min_response, lo == start, use_L,
                        O[:n_batch], p, *sets)
        prune = (-lo) % prune_every < n_batch  # some k in [lo, lo + n_batch) is a multiple
        n_changed = mark_changed(prune, dirty, n_samples, changed)
        upcoming = order[lo + n_batch:min(lo + n_batch + batch_size, stop)]
        columns_region(X, order[lo:lo + n_batch], upcoming, W, WT, O, G, AP, *sets, xi,
                       prec, prune, changed, n_changed, cuts, IDX, S, finite)
        if (prune or lo + n_batch == stop) and not (
                finite.all() and all_finite(t) and all_finite(LT)):
            return lo
    return -1
