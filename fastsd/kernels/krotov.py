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

* ``W`` and ``S`` are kept *transposed* (m×N, one row per pixel) for a pass. A drive
  ``I[:, b]`` is a sum of rows ``S[j]`` over the non-zero pixels ``j`` of sample ``b``
  only (MNIST: ~19% of the pixels; a zero pixel only drops exact ``0 * w`` terms, W is
  checked to be finite).
* The drives of a batch are computed by blocks of units: the block's columns of ``S``
  (``m × unit_block`` numbers) stay in the core's L2 cache while every sample of the
  batch reads them, so ``S`` comes from memory once per batch, not once per sample.
  Blocks are split between threads.
* Only the top-1 and the k-th unit of each sample are needed: one scan with a k-entry
  insertion buffer (a stable sort's answer) that skips, with a vectorised test, every
  run of :data:`SCAN` drives none of which beats the current k-th.
* ``g`` and ``xx`` vanish outside the ≤ 2B units that are ranked 1st or k-th by some
  sample of the batch (the *touched* units), so ``ds`` does too: ``ds``, ``max|ds|``
  (the other entries are zeros, and ``max|ds| >= 0``), the update and the refresh of
  ``S`` (``p != 2``) only visit the touched columns of ``Wᵀ``.
* ``p = 2`` (the default) uses ``S = W`` directly; other integer ``p`` use products,
  non-integer ``p`` ``pow``.

Each number is computed by the same code in the same order whatever the number of
threads, unit blocks, pixel-row blocks or calls a pass is split into, so results do not
depend on them (tested).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .common import JIT, all_finite

#: Non-zeros combined per sweep over a drive row (rows of ``S`` read together).
UNROLL = 4
#: Drives tested together by the ranking scan (a skipped run costs one vector test).
SCAN = 64
#: Unit blocks are multiples of this many units (one 64-byte line of float32).
UNIT_ALIGN = 16
#: Bytes of ``S`` per unit block (the block is re-read by every sample of a batch: it
#: should stay in a core's L2 cache, 1-2 MB on current x86 server cores; only the rows
#: of pixels that are non-zero in the batch are read). Narrower blocks cost more loop
#: overhead than they save (measured on Zen 5: 160-unit blocks 25% slower than 400).
BLOCK_BYTES = 1 << 21

PARALLEL_JIT = dict(JIT, parallel=True)


def p_code(p: float) -> int:
    """Integer ``p`` in [1, 16] as an int (computed with products), else -1 (``pow``)."""
    p = float(p)
    return int(p) if p.is_integer() and 1 <= p <= 16 else -1


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
    :data:`SCAN` entries are first tested together (``any(row[run] > k-th)``, which
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
    while t + UNROLL <= c:
        s0, s1 = ST[nzi[t], i0:i1], ST[nzi[t + 1], i0:i1]
        s2, s3 = ST[nzi[t + 2], i0:i1], ST[nzi[t + 3], i0:i1]
        v0, v1, v2, v3 = nzv[t], nzv[t + 1], nzv[t + 2], nzv[t + 3]
        for i in range(w):
            a[i] += v0 * s0[i] + v1 * s1[i] + v2 * s2[i] + v3 * s3[i]
        t += UNROLL
    for t in range(t, c):
        s0 = ST[nzi[t], i0:i1]
        v0 = nzv[t]
        for i in range(w):
            a[i] += v0 * s0[i]


@njit(**PARALLEL_JIT)
def batch_drives(X, rows, ST, unit_bounds, nzi, nzv, nnz, IT):
    """Drives ``IT[b] = Σ_j X[rows[b], j] ST[j]`` of a batch, by blocks of units.

    ``nzi``/``nzv``/``nnz`` receive each sample's non-zeros (see :func:`nonzeros`);
    ``unit_bounds`` (ascending, from 0 to N) delimit the unit blocks, one task each.
    """
    B = rows.shape[0]
    for b in prange(B):
        nnz[b] = nonzeros(X[rows[b]], nzi[b], nzv[b])
    for blk in prange(unit_bounds.shape[0] - 1):
        i0, i1 = unit_bounds[blk], unit_bounds[blk + 1]
        for b in range(B):
            drive_block(nzi[b], nzv[b], nnz[b], ST, i0, i1, IT[b])


@njit(**JIT)
def touched_units(top, kth, IT, delta, slot, units, xc):
    """List the touched units of a batch and their ``xx``.

    ``units[:n]`` receives the distinct units of ``top`` and ``kth`` in ascending order
    and ``slot[u]`` the position of unit ``u`` there (``slot`` is -1 elsewhere on entry
    and for untouched units on exit); ``xc[t] = xx[units[t]] = Σ_b g[u, b] I[u, b]``
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


@njit(**PARALLEL_JIT)
def sparse_update(WT, ST, p_int, q, delta, eps, prec, top, kth, nzi, nzv, nnz, slot,
                  units, n, xc, GT, row_bounds, blockmax):
    """``W += eps ds / max(max|ds|, prec)`` on the touched columns ``units[:n]`` of
    ``WT`` (and ``ST`` if ``p_int != 2``), ``ds = g X_b - xx ⊙ W``.

    ``GT`` (m, >= n) holds ``ds`` of the touched units: all-zero on entry and exit.
    Pixel rows are split into the blocks ``row_bounds`` (one task each).
    """
    B = top.shape[0]
    n_blocks = row_bounds.shape[0] - 1
    zero = WT.dtype.type(0)
    for blk in prange(n_blocks):
        j0, j1 = row_bounds[blk], row_bounds[blk + 1]
        for b in range(B):  # g X_b, the rows of this block
            c = nnz[b]
            t = 0 if j0 == 0 else np.searchsorted(nzi[b, :c], j0)
            st = slot[top[b]]
            sk = slot[kth[b]]
            while t < c and nzi[b, t] < j1:
                j = nzi[b, t]
                v = nzv[b, t]
                GT[j, st] += v
                GT[j, sk] -= delta * v
                t += 1
        mx = zero
        for j in range(j0, j1):
            for t in range(n):
                d = GT[j, t] - xc[t] * WT[j, units[t]]
                GT[j, t] = d
                mx = max(mx, abs(d))
        blockmax[blk] = mx
    step = eps / max(blockmax.max(), prec)  # eps * ds / nc as (eps / nc) * ds
    for blk in prange(n_blocks):
        for j in range(row_bounds[blk], row_bounds[blk + 1]):
            for t in range(n):
                u = units[t]
                WT[j, u] += step * GT[j, t]
                GT[j, t] = zero
                if p_int != 2:
                    ST[j, u] = signed_power(WT[j, u], p_int, q)


def krotov_pass(X, order, start, stop, batch_size, WT, ST, p_int, q, k, delta, eps, prec,
                ws):
    """Run the batches ``order[s:s + batch_size]`` for ``s = start, start + batch_size,
    ... < stop`` (the last may be shorter), updating ``WT`` (and ``ST``) in place.

    Parameters
    ----------
    X : (n_samples, m) samples; ``order`` : int64 row indices of this pass.
    WT : (m, N) the weights, transposed. ``ST`` : (m, N) ``sign(W)|W|^(p-1)``
        transposed; pass ``WT`` itself when ``p_int == 2``.
    p_int, q : from :func:`p_code` and ``q = p - 1``.
    k, delta, eps, prec : the rule's rank, anti-Hebbian strength, rate and floor
        (numbers of ``WT``'s dtype).
    ws : :class:`Workspace` for this batch size, shape, ``k`` and dtype.

    Returns the number of batches run, or -1 if ``WT`` is no longer finite (the caller
    then discards it).
    """
    m, n = WT.shape
    if not (1 <= k <= n and k <= ws.buf_v.shape[1] and 1 <= batch_size <= ws.IT.shape[0]
            and ws.IT.shape[1] == n and ws.GT.shape[0] == m):
        raise ValueError("krotov_pass: need 1 <= k <= N and 1 <= batch_size <= the "
                         "workspace's batch size, and a workspace of this shape")
    return _pass(X, order, start, stop, batch_size, WT, ST, p_int, q, k, delta, eps, prec,
                 *ws.args())


@njit(**JIT)
def _pass(X, order, start, stop, batch_size, WT, ST, p_int, q, k, delta, eps, prec,
          unit_bounds, row_bounds, nzi, nzv, nnz, IT, top, kth, buf_v, buf_i, slot, units,
          xc, GT, blockmax):
    n_batches = 0
    for s in range(start, stop, batch_size):
        B = min(s + batch_size, stop) - s
        batch_drives(X, order[s:s + B], ST, unit_bounds, nzi, nzv, nnz, IT)
        _rank(IT, B, k, buf_v, buf_i, top, kth)
        n = touched_units(top[:B], kth[:B], IT, delta, slot, units, xc)
        sparse_update(WT, ST, p_int, q, delta, eps, prec, top[:B], kth[:B], nzi, nzv,
                      nnz, slot, units, n, xc, GT, row_bounds, blockmax)
        for t in range(n):
            slot[units[t]] = -1
        n_batches += 1
    # A non-finite weight stays non-finite in later batches (ds = g x - xx w with
    # w = ±inf or NaN is NaN), so one check at the end sees any divergence.
    return n_batches if all_finite(WT) else -1


@njit(**PARALLEL_JIT)
def _rank(IT, B, k, buf_v, buf_i, top, kth):
    for b in prange(B):
        top[b], kth[b] = top_and_kth(IT[b], k, buf_v[b], buf_i[b])


#: Samples per parallel task of :func:`hidden_drive` (scratch allocated once per task).
CHUNK = 256


@njit(**PARALLEL_JIT)
def hidden_drive(X, ST, out):
    """``out[b] = Σ_j X[b, j] ST[j]``: the drives ``I`` (n_samples, N) of all rows of
    ``X`` for ``ST = (sign(W)|W|^(p-1))ᵀ`` (m×N), skipping zero pixels like the pass."""
    n_samples, m = X.shape
    n = ST.shape[1]
    for c in prange((n_samples + CHUNK - 1) // CHUNK):
        nzi = np.empty(m, np.int32)
        nzv = np.empty(m, X.dtype)
        for b in range(c * CHUNK, min(n_samples, (c + 1) * CHUNK)):
            drive_block(nzi, nzv, nonzeros(X[b], nzi, nzv), ST, 0, n, out[b])
    return out


def bounds(n: int, n_blocks: int, align: int = 1) -> np.ndarray:
    """``n_blocks + 1`` ascending int64 bounds from 0 to ``n`` of near-equal blocks whose
    inner bounds are multiples of ``align`` (blocks may be empty only if ``n`` is small)."""
    cuts = [min(n, -(-(n * i // n_blocks) // align) * align) for i in range(n_blocks + 1)]
    cuts[-1] = n
    return np.array(cuts, dtype=np.int64)


def unit_blocks(n: int, m: int, itemsize: int, threads: int) -> int:
    """Number of unit blocks for :func:`batch_drives`: enough that a block of ``S``
    (``m`` rows) fits in :data:`BLOCK_BYTES`, a multiple of ``threads``, and no more
    than there are :data:`UNIT_ALIGN`-wide groups."""
    by_cache = -(-n * m * itemsize // BLOCK_BYTES)
    blocks = -(-by_cache // threads) * threads
    return max(1, min(blocks, -(-n // UNIT_ALIGN)))


class Workspace:
    """Scratch arrays for :func:`krotov_pass`, allocated once per pass.

    ``n_blocks`` (pixel-row blocks of the update) and ``n_unit_blocks`` (of the drives)
    default to choices for ``numba.get_num_threads()`` threads; results do not depend
    on them.
    """

    def __init__(self, batch_size: int, n: int, m: int, k: int, dtype, n_blocks=None,
                 n_unit_blocks=None):
        threads = numba.get_num_threads()
        dtype = np.dtype(dtype)
        if n_blocks is None:
            n_blocks = threads
        if n_unit_blocks is None:
            n_unit_blocks = unit_blocks(n, m, dtype.itemsize, threads)
        self.unit_bounds = bounds(n, n_unit_blocks, UNIT_ALIGN)
        self.row_bounds = bounds(m, max(1, min(n_blocks, m)))
        self.nzi = np.zeros((batch_size, m), np.int32)
        self.nzv = np.zeros((batch_size, m), dtype)
        self.nnz = np.zeros(batch_size, np.int64)
        self.IT = np.zeros((batch_size, n), dtype)
        self.top = np.zeros(batch_size, np.int64)
        self.kth = np.zeros(batch_size, np.int64)
        self.buf_v = np.zeros((batch_size, k), dtype)
        self.buf_i = np.zeros((batch_size, k), np.int64)
        self.slot = np.full(n, -1, np.int64)
        self.units = np.zeros(2 * batch_size, np.int64)
        self.xc = np.zeros(2 * batch_size, dtype)
        self.GT = np.zeros((m, 2 * batch_size), dtype)
        self.blockmax = np.zeros(self.row_bounds.shape[0] - 1, dtype)

    def args(self):
        return (self.unit_bounds, self.row_bounds, self.nzi, self.nzv, self.nnz, self.IT,
                self.top, self.kth, self.buf_v, self.buf_i, self.slot, self.units,
                self.xc, self.GT, self.blockmax)


def transposed_state(W, p: float):
    """``(WT, ST, p_int, q)`` for :func:`krotov_pass` from weights ``W`` (N×m)."""
    WT = np.array(W.T, order="C")  # always a copy: the pass works in place
    p_int = p_code(p)
    q = W.dtype.type(float(p) - 1.0)
    if p_int == 2:
        ST = WT
    else:
        ST = np.empty_like(WT)
        _fill_signed_power(WT, ST, p_int, q)
    return WT, ST, p_int, q


@njit(**PARALLEL_JIT)
def _fill_signed_power(WT, ST, p_int, q):
    m, n = WT.shape
    for j in prange(m):
        for i in range(n):
            ST[j, i] = signed_power(WT[j, i], p_int, q)
