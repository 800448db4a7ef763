"""Mini-batch SparseDream: a whole pass in compiled code, sparse in the responses.

The scheme, per batch of ``B`` samples:

- ``W`` is held fixed. Each sample's drive ``a = W v`` comes from a transposed copy
  ``Wᵀ`` (m, N), over the non-zero pixels only (one pixel's weights to all neurons are
  contiguous there).
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

``tests/naive.py`` (``sparsedream_minibatch_pass``) writes the same scheme in numpy.
"""
from __future__ import annotations

from numba import njit

from .common import (
    JIT, JIT_IEEE, _excitation, _inhibited, all_finite, flush_tiny, needs_inhibition,
    prefetch_row, relative_error, selected_row_sum, sparse_drive, update_thresholds,
)
from .simd import transpose_into
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
    """``lp = L p̃`` for ``L = Lᵀᵀ + offset`` off the diagonal, from the transposed
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
def sample_error(v, W, o, idx, n_active, prec, r, g):
    """``g = (v - r) / max(r, prec)`` with ``r = Σ o_i W[i]`` over the active rows
    ``idx[:n_active]``: one sample's factor of the batch update.

    ``r`` is scratch apart from ``g``: computed in place (``r`` is ``g``), the division
    loop would not vectorise (aliased arrays) and took 7x longer.
    """
    selected_row_sum(o, W, idx, n_active, r)
    relative_error(v, r, prec, g)


@njit(**JIT)
def summed_update(O, G, i, min_response, samples, s):
    """``s = Σ_b õ_bi G[b]`` over the samples ``b`` in which neuron ``i`` is active
    (their indices go to the int64 scratch ``samples``); returns False (``s``
    untouched) if there is none. Four samples per sweep over ``s``."""
    column = O[:, i]
    n = active_neurons(column, min_response, samples)
    if n:
        selected_row_sum(column, G, samples, n, s)
    return n > 0


@njit(**JIT_IEEE)
def positive_update(w, s, xi):
    """``w ← w·f(ξ s)`` for one row (module docstring). Branch-free so it vectorises:
    ``f(x) = (1 + max(x, 0)) / (1 - min(x, 0))``."""
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
def apply_batch(W, WT, O, G, min_response, xi, prec, prune, dirty, changed, idx, s):
    """``W ← W·f(ξ S)`` row by row, with ``S = Õᵀ G`` formed one row at a time in ``s``
    (rows of neurons active in no sample of the batch are left alone); prune the rows
    changed since the last pruning if ``prune``; bring ``WT`` up to date."""
    N = W.shape[0]
    n_changed = 0
    for i in range(N):
        row_changed = summed_update(O, G, i, min_response, idx, s)
        if row_changed:
            positive_update(W[i], s, xi)
            dirty[i] = True
        if prune and dirty[i]:
            prune_row(W[i], prec)
            dirty[i] = False
            row_changed = True
        changed[i] = row_changed
        n_changed += row_changed
    if n_changed > N // 8:  # one tiled transpose beats many column copies
        transpose_into(W, WT)
    else:
        for i in range(N):
            if changed[i]:
                WT[:, i] = W[i]


@njit(**JIT)
def minibatch_pass(X, order, start, stop, batch_size, W, WT, t, LT, hp, prune_every,
                   min_response, A, O, G, idx, s, changed, dirty, p):
    """Run the mini-batch scheme on ``X[order[start:stop]]`` in place.

    Parameters
    ----------
    X, order, start, stop, W, t, hp, prune_every
        As for :func:`fastsd.kernels.sparsedream.sparsedream_pass`. Batches start at
        ``start``; positions decide pruning as there.
    LT : (N, N) array
        ``L.T``, the transposed inhibition matrix, updated in place.
    batch_size : int
    WT : (m, N) array
        ``W.T``, kept in step with ``W``.
    min_response : float
        Responses below it are left out of the weight products.
    A, O : (batch_size, N) arrays; G : (batch_size, m) array
        Scratch space: drives, responses, relative errors of a batch.
    idx : (max(N, m, batch_size),) int64 array; s : (m,) array; changed : (N,) bool array
        Scratch space.
    dirty : (N,) bool array
        Rows changed since the last pruning (all True is always safe).
    p : (N,) array
        Scratch space.

    Returns
    -------
    int
        -1, or the first position of a batch after which the state was not finite.
    """
    xi, sp, gamma, beta, prec = hp[XI], hp[SP], hp[GAMMA], hp[BETA], hp[PREC]
    use_L = needs_inhibition(LT, beta)
    step_offset = -beta * (sp * sp)  # the constant part of one inhibition update
    for lo in range(start, stop, batch_size):
        n_batch = min(batch_size, stop - lo)
        for b in range(n_batch):
            if lo + b + 2 < order.shape[0]:  # random rows: start loading ahead
                prefetch_row(X[order[lo + b + 2]])
            sparse_drive(X[order[lo + b]], WT, idx, A[b])
        offset = W.dtype.type(0)
        for b in range(n_batch):
            o = O[b]
            respond_floored(A[b], t, LT, offset, min_response, p, o, idx, use_L)
            flush_tiny(o)
            update_thresholds(t, o, gamma, sp)
            n_active = floor_responses(o, min_response, idx)
            if use_L:
                inhibit_active(LT, o, idx, n_active, beta)
                offset += step_offset
                if lo == start and b == 0:  # step 5 zeroes a diagonal given with L
                    clear_diagonal(LT)
            sample_error(X[order[lo + b]], W, o, idx, n_active, prec, s, G[b])
        if use_L:
            add_offset(LT, offset)
        prune = (-lo) % prune_every < n_batch  # some k in [lo, lo + n_batch) is a multiple
        apply_batch(W, WT, O[:n_batch], G, min_response, xi, prec, prune, dirty, changed,
                    idx, s)
        if (prune or lo + n_batch == stop) and not (
                all_finite(W) and all_finite(t) and all_finite(LT)):
            return lo
    return -1
