"""The Krotov & Hopfield mini-batch rule ("competing hidden units", PNAS 2019), compiled.

For a batch ``X_b`` (B×m) and weights ``W`` (N×m) the rule is::

    S  = sign(W) |W|^(p-1)
    I  = S X_bᵀ                                  (N×B)
    g[:, b] = +1 for the unit ranked 1st by I[:, b], -delta for the one ranked k-th
    xx = Σ_b g ⊙ I                               (N,)
    ds = g X_b - xx[:, None] ⊙ W
    W += eps * ds / max(max|ds|, prec)

Ranking ties go to the lower unit index: rank ``r`` is position ``r - 1`` of a stable
sort of ``-I[:, b]`` (``np.argsort(-I, axis=0, kind="stable")``).

How it is computed (same rule, different order of the floating-point sums):

* ``S`` is kept *transposed* (``ST``, m×N, one row per pixel) next to ``W`` (N×m). A
  drive ``I[:, b]`` is a sum of rows ``ST[j]`` over the non-zero pixels ``j`` of sample
  ``b`` only (MNIST: ~19% of the pixels; a zero pixel only drops exact ``0 * w`` terms,
  W is checked to be finite).
* The drives of a batch are computed by blocks of units, split between the threads: a
  block's columns of ``ST`` stay in the core's L2 cache while every sample of the batch
  reads them, so ``ST`` comes from memory once per batch, not once per sample.
* Only the top-1 and the k-th unit of each sample are needed: one scan with a k-entry
  insertion buffer (a stable sort's answer) that skips, with a vectorised test, every
  run of :data:`fastsd._tunables.SCAN` drives none of which beats the current k-th.
* ``g`` and ``xx`` vanish outside the <= 2B units that are ranked 1st or k-th by some
  sample of the batch (the *touched* units), so ``ds`` does too: ``ds``, ``max|ds|``
  (the other entries are zeros, and ``max|ds| >= 0``) and the update only visit the
  touched rows of ``W``, contiguous. Their columns of ``ST`` are rewritten by the drive
  task of the next batch that reads that unit block anyway (and at the end of a call).
* A batch has two parallel regions (drives; ranking with the next batch's non-zeros);
  the rest is serial and short. ``p = 2`` (the default) makes ``S = W`` (a copy);
  other integer ``p`` use products, non-integer ``p`` ``pow``.

Each number is computed by the same code in the same order whatever the number of
threads, unit blocks or calls a pass is split into, so results do not depend on them
(tested).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._tunables import (
    ALIGN, DRIVE_UNROLL, JIT, PARALLEL_JIT, SAMPLES_PER_TASK, SCAN, UNIT_BLOCK_BYTES,
)
from .common import all_finite


def p_code(p: float) -> int:
    """Integer ``p`` in [1, 16] as an int (computed with products), else -1 (``pow``)."""
    p = float(p)
    return int(p) if p.is_integer() and 1 <= p <= 16 else -1


def exponent(p: float, dtype) -> tuple[int, np.floating]:
    """``(p_int, q)`` of :func:`signed_power` for the exponent ``p``: :func:`p_code`
    and ``q = p - 1`` in ``dtype``."""
    return p_code(p), np.dtype(dtype).type(float(p) - 1.0)


@njit(**JIT)
def signed_power(w, p_int, q):
    """``sign(w) |w|^q`` with ``q = p - 1``; ``p_int`` as from :func:`p_code`."""
    zero = w * 0
    if p_int == 1:
        if w > zero:
            return zero + 1
        if w < zero:
            return zero - 1
        return zero
    if p_int > 1:
        a = abs(w)
        r = w
        for _ in range(p_int - 2):
            r *= a
        return r
    if w == zero:
        return zero
    r = abs(w) ** q
    return r if w > zero else -r


@njit(**JIT)
def _insert(v, i, pos, buf_v, buf_i):
    """Put ``(v, i)`` at ``pos`` of the descending buffer, after entries >= ``v``."""
    while pos > 0 and v > buf_v[pos - 1]:
        buf_v[pos] = buf_v[pos - 1]
        buf_i[pos] = buf_i[pos - 1]
        pos -= 1
    buf_v[pos] = v
    buf_i[pos] = i


@njit(**JIT)
def top_and_kth(row, k, buf_v, buf_i):
    """Indices of the 1st and ``k``-th largest entries of ``row`` (ties: lower index first).

    One scan keeping the ``k`` best so far in ``buf_v``/``buf_i`` (descending). An entry
    enters only if strictly larger than the current k-th, and is inserted after any equal
    entries, which have lower indices: this is exactly a stable descending sort. Runs of
    :data:`fastsd._tunables.SCAN` entries are first tested together (``any(row[run] > k-th)``, which
    vectorises); a run with no such entry cannot change the buffer and is skipped.
    """
    n = row.shape[0]
    for i in range(k):  # the first k entries fill the buffer
        _insert(row[i], i, i, buf_v, buf_i)
    for r0 in range(k, n, SCAN):
        r1 = min(r0 + SCAN, n)
        kth = buf_v[k - 1]
        hits = 0
        for i in range(r0, r1):
            hits += row[i] > kth
        if hits == 0:
            continue
        for i in range(r0, r1):
            if row[i] > buf_v[k - 1]:
                _insert(row[i], i, k - 1, buf_v, buf_i)
    return buf_i[0], buf_i[k - 1]


@njit(**JIT)
def nonzeros(x, nzi, nzv):
    """Indices (ascending) and values of the non-zeros of ``x`` into ``nzi``/``nzv``;
    returns their count."""
    c = 0
    for j in range(x.shape[0]):  # branch-free compaction
        v = x[j]
        nzi[c] = j
        nzv[c] = v
        c += v != 0
    return c


@njit(**JIT)
def drive_block(nzi, nzv, c, ST, i0, i1, acc):
    """``acc[i] = Σ_t nzv[t] ST[nzi[t], i]`` over ``t < c``, for ``i0 <= i < i1``."""
    a = acc[i0:i1]  # views indexed from 0: no negative-index handling in the loops
    w = a.shape[0]
    for i in range(w):
        a[i] = 0
    t = 0
    while t + DRIVE_UNROLL <= c:
        s0, s1 = ST[nzi[t], i0:i1], ST[nzi[t + 1], i0:i1]
        s2, s3 = ST[nzi[t + 2], i0:i1], ST[nzi[t + 3], i0:i1]
        v0, v1, v2, v3 = nzv[t], nzv[t + 1], nzv[t + 2], nzv[t + 3]
        for i in range(w):
            a[i] += v0 * s0[i] + v1 * s1[i] + v2 * s2[i] + v3 * s3[i]
        t += DRIVE_UNROLL
    for t in range(t, c):
        s0 = ST[nzi[t], i0:i1]
        v0 = nzv[t]
        for i in range(w):
            a[i] += v0 * s0[i]


@njit(**JIT)
def refresh_columns(W, ST, p_int, q, units, t0, t1):
    """``ST[:, u] = signed_power(W[u])`` for the units ``u = units[t0:t1]``."""
    for j in range(ST.shape[0]):
        for t in range(t0, t1):
            u = units[t]
            ST[j, u] = signed_power(W[u, j], p_int, q)


@njit(**PARALLEL_JIT)
def compact(X, rows, nzi, nzv, nnz):
    """The non-zeros of the samples ``X[rows]`` (see :func:`nonzeros`)."""
    for b in prange(rows.shape[0]):
        nnz[b] = nonzeros(X[rows[b]], nzi[b], nzv[b])


@njit(**PARALLEL_JIT)
def drives(W, ST, p_int, q, pending, n_pending, unit_bounds, nzi, nzv, nnz, B, IT):
    """Drives ``IT[b] = Σ_j x_b[j] ST[j]`` of the ``B`` compacted samples, by blocks of
    units (``unit_bounds``, one task each); each task first refreshes the columns of
    ``ST`` of the units ``pending[:n_pending]`` (ascending) in its block from ``W``."""
    for blk in prange(unit_bounds.shape[0] - 1):
        i0, i1 = unit_bounds[blk], unit_bounds[blk + 1]
        refresh_columns(W, ST, p_int, q, pending,
                        np.searchsorted(pending[:n_pending], i0),
                        np.searchsorted(pending[:n_pending], i1))
        for b in range(B):
            drive_block(nzi[b], nzv[b], nnz[b], ST, i0, i1, IT[b])


@njit(**PARALLEL_JIT)
def rank_and_compact(IT, B, k, buf_v, buf_i, top, kth, X, rows, nzi, nzv, nnz):
    """``top[b], kth[b]`` of the drives ``IT[:B]``, and the non-zeros of the next
    batch ``X[rows]``, in one parallel region."""
    for b in prange(max(B, rows.shape[0])):
        if b < B:
            top[b], kth[b] = top_and_kth(IT[b], k, buf_v[b], buf_i[b])
        if b < rows.shape[0]:
            nnz[b] = nonzeros(X[rows[b]], nzi[b], nzv[b])


@njit(**JIT)
def touched_units(top, kth, IT, delta, slot, units, xc):
    """List the touched units of a batch and their ``xx``.

    ``units[:n]`` receives the distinct units of ``top`` and ``kth`` in ascending order
    and ``slot[u]`` the position of unit ``u`` there (``slot`` must be -1 at the other
    units; reset it with :func:`untouch`); ``xc[t] = xx[units[t]] = Σ_b g[u, b] I[u, b]``
    with the terms added in sample order. Returns ``n``.
    """
    n = 0
    for b in range(top.shape[0]):
        for u in (top[b], kth[b]):
            if slot[u] < 0:
                slot[u] = 0
                units[n] = u
                n += 1
    units[:n].sort()
    zero = IT.dtype.type(0)
    for t in range(n):
        slot[units[t]] = t
        xc[t] = zero
    for b in range(top.shape[0]):
        xc[slot[top[b]]] += IT[b, top[b]]
        xc[slot[kth[b]]] -= delta * IT[b, kth[b]]
    return n


@njit(**JIT)
def untouch(slot, units, n):
    """Set ``slot`` back to -1 at ``units[:n]``."""
    for t in range(n):
        slot[units[t]] = -1


@njit(**JIT)
def sparse_update(W, delta, eps, prec, top, kth, nzi, nzv, nnz, slot, units, n, xc, G):
    """``W += eps ds / max(max|ds|, prec)`` on the touched rows ``units[:n]`` of ``W``
    (N×m), ``ds = g X_b - xx ⊙ W``; ``G`` (>= n, m) is all-zero on entry and exit.

    ``ds`` is zero at the other units, so ``max|ds|`` is the maximum over these rows.
    ``eps * ds / nc`` is computed as ``(eps / nc) * ds`` (one rounding apart).
    """
    for b in range(top.shape[0]):  # g X_b, two rows per sample
        gt = G[slot[top[b]]]
        gk = G[slot[kth[b]]]
        for t in range(nnz[b]):
            gt[nzi[b, t]] += nzv[b, t]
            gk[nzi[b, t]] -= delta * nzv[b, t]
    mx = W.dtype.type(0)
    for t in range(n):
        w = W[units[t]]
        g = G[t]
        x = xc[t]
        for j in range(w.shape[0]):
            g[j] -= x * w[j]
            mx = max(mx, abs(g[j]))
    step = eps / max(mx, prec)
    for t in range(n):
        w = W[units[t]]
        g = G[t]
        for j in range(w.shape[0]):
            w[j] += step * g[j]
            g[j] = 0


def krotov_pass(X, order, start, stop, W, ST, rates, ws):
    """Run the batches ``order[s:s + batch_size]`` for ``s = start, start + batch_size,
    ... < stop`` (the last may be shorter), updating ``W`` and ``ST`` in place.

    Parameters
    ----------
    X : (n_samples, m) array
        Samples.
    order : int64 array
        Row indices of this pass.
    start, stop : int
        Positions of ``order`` to run.
    W : (N, m) array
        The weights.
    ST : (m, N) array
        ``(sign(W)|W|^(p-1))ᵀ``; see :func:`pass_state`.
    rates : :class:`fastsd.kernels.inputs.KrotovRates`
        Batch size, rank ``k``, exponent, anti-Hebbian strength, rate and floor
        (:func:`fastsd.kernels.inputs.krotov_rates`, in ``W``'s dtype).
    ws : :class:`fastsd.kernels.inputs.KrotovWorkspace`
        Scratch for this batch size, shape, ``k`` and dtype
        (:func:`fastsd.kernels.inputs.krotov_workspace`).

    Returns
    -------
    int
        The number of batches run, or -1 if ``W`` is no longer finite (the caller
        then discards it).
    """
    n, m = W.shape
    k, batch_size = rates.k, rates.batch_size
    if not (1 <= k <= n and k <= ws.buf_v.shape[1] and 1 <= batch_size <= ws.IT.shape[0]
            and ws.IT.shape[1] == n and ws.G.shape[1] == m and ST.shape == (m, n)):
        raise ValueError("krotov_pass: need 1 <= k <= N, 1 <= batch_size <= the "
                         "workspace's batch size, and a workspace and ST of W's shape")
    return _pass(X, order, start, stop, W, ST, rates, ws)


@njit(**JIT)
def _pass(X, order, start, stop, W, ST, rates, ws):
    """Per batch: the drives (refreshing the columns of ``ST`` that the previous batch
    changed), the ranking with the compaction of the next batch, then the update of
    the touched rows of ``W``. ``nzi``/``nzv``/``nnz`` alternate between two halves."""
    batch_size, k, p_int, q = rates.batch_size, rates.k, rates.p_int, rates.q
    delta, eps, prec = rates.delta, rates.eps, rates.prec
    unit_bounds, nzi, nzv, nnz, IT = ws.unit_bounds, ws.nzi, ws.nzv, ws.nnz, ws.IT
    top, kth, buf_v, buf_i = ws.top, ws.kth, ws.buf_v, ws.buf_i
    slot, units, xc, G = ws.slot, ws.units, ws.xc, ws.G
    n = 0
    if start < stop:
        rows = order[start:min(start + batch_size, stop)]
        compact(X, rows, nzi[0], nzv[0], nnz[0])
    n_batches = 0
    for s in range(start, stop, batch_size):
        B = min(s + batch_size, stop) - s
        h = n_batches % 2
        drives(W, ST, p_int, q, units, n, unit_bounds, nzi[h], nzv[h], nnz[h], B, IT)
        untouch(slot, units, n)
        nxt = order[s + B:min(s + B + batch_size, stop)]
        rank_and_compact(IT, B, k, buf_v, buf_i, top, kth, X, nxt, nzi[1 - h],
                         nzv[1 - h], nnz[1 - h])
        n = touched_units(top[:B], kth[:B], IT, delta, slot, units, xc)
        sparse_update(W, delta, eps, prec, top[:B], kth[:B], nzi[h], nzv[h], nnz[h],
                      slot, units, n, xc, G)
        n_batches += 1
    refresh_columns(W, ST, p_int, q, units, 0, n)
    untouch(slot, units, n)
    # A non-finite weight stays non-finite in later batches (ds = g x - xx w with
    # w = ±inf or NaN is NaN), so one check at the end sees any divergence.
    return n_batches if all_finite(W) else -1


@njit(**PARALLEL_JIT)
def hidden_drive(X, ST, out):
    """``out[b] = Σ_j X[b, j] ST[j]``: the drives ``I`` (n_samples, N) of all rows of
    ``X`` for ``ST = (sign(W)|W|^(p-1))ᵀ`` (m×N), skipping zero pixels like the pass."""
    n_samples, m = X.shape
    n = ST.shape[1]
    for c in prange((n_samples + SAMPLES_PER_TASK - 1) // SAMPLES_PER_TASK):
        nzi = np.empty(m, np.int32)
        nzv = np.empty(m, X.dtype)
        for b in range(c * SAMPLES_PER_TASK, min(n_samples, (c + 1) * SAMPLES_PER_TASK)):
            drive_block(nzi, nzv, nonzeros(X[b], nzi, nzv), ST, 0, n, out[b])
    return out


def bounds(n: int, n_blocks: int, align: int = 1) -> np.ndarray:
    """``n_blocks + 1`` ascending int64 bounds from 0 to ``n`` of near-equal blocks whose
    inner bounds are multiples of ``align`` (blocks may be empty only if ``n`` is small)."""
    cuts = [min(n, -(-(n * i // n_blocks) // align) * align) for i in range(n_blocks + 1)]
    cuts[-1] = n
    return np.array(cuts, dtype=np.int64)


def unit_blocks(n: int, m: int, itemsize: int, threads: int) -> int:
    """Number of unit blocks for :func:`drives`: enough that a block of ``S``
    (``m`` rows) fits in :data:`UNIT_BLOCK_BYTES`, a multiple of ``threads``, and no more
    than there are :data:`ALIGN`-wide groups."""
    by_cache = -(-n * m * itemsize // UNIT_BLOCK_BYTES)
    blocks = -(-by_cache // threads) * threads
    return max(1, min(blocks, -(-n // ALIGN)))


def pass_state(W, p: float):
    """``(W, ST)`` for :func:`krotov_pass`: a C-ordered copy of the weights ``W`` (N×m;
    the pass works in place) and ``ST = (sign(W)|W|^(p-1))ᵀ`` (m×N)."""
    W = np.array(W, order="C")
    ST = np.empty((W.shape[1], W.shape[0]), W.dtype)
    _fill_signed_power(W, ST, *exponent(p, W.dtype))
    return W, ST


@njit(**PARALLEL_JIT)
def _fill_signed_power(W, ST, p_int, q):
    n, m = W.shape
    for j in prange(m):
        for i in range(n):
            ST[j, i] = signed_power(W[i, j], p_int, q)
