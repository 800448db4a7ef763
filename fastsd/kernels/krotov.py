"""The Krotov & Hopfield mini-batch rule ("competing hidden units", PNAS 2019), compiled.

For a batch ``X_b`` (B×m) and weights ``W`` (N×m) the rule of SPEC.md is::

    S  = sign(W) |W|^(p-1)
    I  = S X_bᵀ                                  (N×B)
    g[:, b] = +1 for the unit ranked 1st by I[:, b], -delta for the one ranked k-th
    xx = Σ_b g ⊙ I                               (N,)
    ds = g X_b - xx[:, None] ⊙ W
    W += eps * ds / max(max|ds|, prec)

Ranking ties go to the lower unit index: rank ``r`` is position ``r - 1`` of a stable
sort of ``-I[:, b]`` (``np.argsort(-I, axis=0, kind="stable")``).

How it is computed (same rule, different order of the floating-point sums):

* The kernel keeps ``W`` and ``S`` *transposed* (m×N, one row per pixel) for the
  duration of a pass. A sample's drive ``I[:, b]`` is then a sum of rows ``S[j]`` over
  its non-zero pixels ``j`` only. MNIST digits have ~19% non-zero pixels, so this does a
  fifth of the multiply-adds of the dense product ``S X_bᵀ``; skipping a zero pixel only
  drops exact ``0 * w`` terms (W is checked to be finite).
* Only the top-1 and the k-th unit of each sample are needed: a single scan with a
  k-entry insertion buffer replaces the notebook's full ``argsort``.
* ``g`` has two non-zeros per column, so ``g X_b`` is a scatter of each sample's
  non-zero pixels into two units, not a dense product.
* ``p = 2`` (the default) uses ``S = W`` directly; other integer ``p`` use products,
  non-integer ``p`` ``pow``.
* All of Numba's threads (``numba.get_num_threads()``): samples are split between
  threads for the drives and the ranking, pixel rows for the scatter, ``ds``,
  ``max|ds|`` and the update (``prange``). No BLAS is involved, so no oversubscription
  with OpenBLAS's own threads. The threads meet three times per batch; on an idle
  machine that is cheap, but when other processes keep the cores busy a waiting thread
  spins while its partner is descheduled, and one thread (``NUMBA_NUM_THREADS=1``) can
  be several times faster. ``OMP_WAIT_POLICY=passive`` limits the damage. Every
  element is computed by the same code whatever the split, so results do not depend
  on the number of threads or blocks (tested).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .common import JIT, all_finite

#: Non-zeros combined per sweep over a drive row (rows of ``S`` read together).
UNROLL = 4

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
def top_and_kth(row, k, buf_v, buf_i):
    """Indices of the 1st and ``k``-th largest entries of ``row`` (ties: lower index first).

    One scan keeping the ``k`` best so far in ``buf_v``/``buf_i`` (descending). An entry
    enters only if strictly larger than the current k-th, and is inserted after any equal
    entries, which have lower indices: this is exactly a stable descending sort.
    O(N) comparisons plus O(k) per insertion.
    """
    n = row.shape[0]
    count = 0
    for i in range(n):
        v = row[i]
        if count < k:
            pos = count
            count += 1
        elif v > buf_v[k - 1]:
            pos = k - 1
        else:
            continue
        while pos > 0 and v > buf_v[pos - 1]:
            buf_v[pos] = buf_v[pos - 1]
            buf_i[pos] = buf_i[pos - 1]
            pos -= 1
        buf_v[pos] = v
        buf_i[pos] = i
    return buf_i[0], buf_i[k - 1]


@njit(**JIT)
def _drive(x, ST, nzi, nzv, acc):
    """Collect the non-zeros of ``x`` into ``nzi``/``nzv`` (ascending) and set
    ``acc = Σ_j x[j] ST[j]`` over them. Returns their count."""
    m = x.shape[0]
    n = acc.shape[0]
    c = 0
    for j in range(m):  # branch-free compaction
        v = x[j]
        nzi[c] = j
        nzv[c] = v
        c += v != 0
    for i in range(n):
        acc[i] = 0
    t = 0
    while t + UNROLL <= c:
        j0, j1, j2, j3 = nzi[t], nzi[t + 1], nzi[t + 2], nzi[t + 3]
        v0, v1, v2, v3 = nzv[t], nzv[t + 1], nzv[t + 2], nzv[t + 3]
        for i in range(n):
            acc[i] += v0 * ST[j0, i] + v1 * ST[j1, i] + v2 * ST[j2, i] + v3 * ST[j3, i]
        t += UNROLL
    for t in range(t, c):
        j0 = nzi[t]
        v0 = nzv[t]
        for i in range(n):
            acc[i] += v0 * ST[j0, i]
    return c


@njit(**PARALLEL_JIT)
def krotov_pass(X, order, start, stop, batch_size, WT, ST, p_int, q, k, delta, eps, prec,
                nzi, nzv, nnz, IT, top, kth, buf_v, buf_i, xx, GT, blockmax):
    """Run the batches ``order[s:s + batch_size]`` for ``s = start, start + batch_size,
    ... < stop`` (the last may be shorter), updating ``WT`` (and ``ST``) in place.

    Parameters
    ----------
    X : (n_samples, m) samples; ``order`` : int64 row indices of this pass.
    WT : (m, N) the weights, transposed. ``ST`` : (m, N) ``sign(W)|W|^(p-1)``
        transposed; pass ``WT`` itself when ``p_int == 2``.
    p_int, q : from :func:`p_code` and ``q = p - 1``.
    k, delta, eps, prec : the rule's rank, anti-Hebbian strength, rate and floor.
    nzi (batch_size, m) int32, nzv (batch_size, m), nnz (batch_size,) int64,
    IT (batch_size, N), top/kth (batch_size,) int64, buf_v (batch_size, k),
    buf_i (batch_size, k) int64, xx (N,), GT (m, N) all-zero on entry (left all-zero),
    blockmax (n_blocks,) : scratch; the pixel rows are split into ``n_blocks`` equal
    blocks for the scatter and update stages (one per thread is best).

    ``eps * ds / nc`` is computed as ``(eps / nc) * ds`` (one rounding apart).

    Returns the number of batches run, or -1 if ``WT`` is no longer finite (the caller
    then discards it).
    """
    m, n = WT.shape
    if not (1 <= k <= n and k <= buf_v.shape[1] and 1 <= batch_size <= IT.shape[0]):
        raise ValueError("krotov_pass: need 1 <= k <= N and 1 <= batch_size <= the "
                         "workspace's batch size")
    n_blocks = blockmax.shape[0]
    rows = (m + n_blocks - 1) // n_blocks
    zero = WT.dtype.type(0)
    n_batches = 0
    for s in range(start, stop, batch_size):
        e = min(s + batch_size, stop)
        B = e - s
        # 1. drives and ranking, one sample per iteration
        for b in prange(B):
            nnz[b] = _drive(X[order[s + b]], ST, nzi[b], nzv[b], IT[b])
            top[b], kth[b] = top_and_kth(IT[b], k, buf_v[b], buf_i[b])
        # 2. xx = Σ_b g ⊙ I (2B terms)
        for i in range(n):
            xx[i] = zero
        for b in range(B):
            xx[top[b]] += IT[b, top[b]]
            xx[kth[b]] -= delta * IT[b, kth[b]]
        # 3. ds = g X_b - xx ⊙ W into GT, and max |ds|, by blocks of pixel rows
        for blk in prange(n_blocks):
            j0 = blk * rows
            j1 = min(j0 + rows, m)
            for b in range(B):
                c = nnz[b]
                t = 0 if j0 == 0 else np.searchsorted(nzi[b, :c], j0)
                ut = top[b]
                uk = kth[b]
                while t < c:
                    j = nzi[b, t]
                    if j >= j1:
                        break
                    v = nzv[b, t]
                    GT[j, ut] += v
                    GT[j, uk] -= delta * v
                    t += 1
            mx = zero
            for j in range(j0, j1):
                for i in range(n):
                    d = GT[j, i] - xx[i] * WT[j, i]
                    GT[j, i] = d
                    mx = max(mx, abs(d))
            blockmax[blk] = mx
        step = eps / max(blockmax.max(), prec)
        # 4. W += eps ds / nc; GT back to zero; S follows W
        for blk in prange(n_blocks):
            j0 = blk * rows
            j1 = min(j0 + rows, m)
            for j in range(j0, j1):
                for i in range(n):
                    WT[j, i] += step * GT[j, i]
                    GT[j, i] = zero
                if p_int != 2:
                    for i in range(n):
                        ST[j, i] = signed_power(WT[j, i], p_int, q)
        n_batches += 1
    # A non-finite weight stays non-finite in later batches (ds = g x - xx w with
    # w = ±inf or NaN is NaN), so one check at the end sees any divergence.
    return n_batches if all_finite(WT) else -1


#: Samples per parallel task of :func:`hidden_drive` (scratch allocated once per task).
CHUNK = 256


@njit(**PARALLEL_JIT)
def hidden_drive(X, ST, out):
    """``out[b] = Σ_j X[b, j] ST[j]``: the drives ``I`` (n_samples, N) of all rows of
    ``X`` for ``ST = (sign(W)|W|^(p-1))ᵀ`` (m×N), skipping zero pixels like the pass."""
    n_samples, m = X.shape
    for c in prange((n_samples + CHUNK - 1) // CHUNK):
        nzi = np.empty(m, np.int32)
        nzv = np.empty(m, X.dtype)
        for b in range(c * CHUNK, min(n_samples, (c + 1) * CHUNK)):
            _drive(X[b], ST, nzi, nzv, out[b])
    return out


class Workspace:
    """Scratch arrays for :func:`krotov_pass`, allocated once per pass."""

    def __init__(self, batch_size: int, n: int, m: int, k: int, dtype, n_blocks=None):
        if n_blocks is None:
            n_blocks = numba.get_num_threads()
        self.nzi = np.zeros((batch_size, m), np.int32)
        self.nzv = np.zeros((batch_size, m), dtype)
        self.nnz = np.zeros(batch_size, np.int64)
        self.IT = np.zeros((batch_size, n), dtype)
        self.top = np.zeros(batch_size, np.int64)
        self.kth = np.zeros(batch_size, np.int64)
        self.buf_v = np.zeros((batch_size, k), dtype)
        self.buf_i = np.zeros((batch_size, k), np.int64)
        self.xx = np.zeros(n, dtype)
        self.GT = np.zeros((m, n), dtype)
        self.blockmax = np.zeros(max(1, min(n_blocks, m)), dtype)

    def args(self):
        return (self.nzi, self.nzv, self.nnz, self.IT, self.top, self.kth, self.buf_v,
                self.buf_i, self.xx, self.GT, self.blockmax)


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
