"""SoftHebb (Moraitis et al., Neuromorph. Comput. Eng. 2022), compiled.

The rule (``docs/rules/softhebb.md``), for a batch of ``B`` samples ``x_i`` (``B = 1``
is the paper's online rule), with ``W`` (N×m), biases ``b`` (N,), inverse temperature
``beta`` and rates ``eta`` (weights) and ``eta_b`` (biases)::

    u_i = W x_i + b                                   drives (N,)
    y_i = softmax(beta * u_i)                         soft winner-take-all
    W  += (eta / B) Σ_i y_i ⊙ (x_i - u_i ⊙ W)          row k: y_ik (x_i - u_ik w_k)
    b  += (eta_b / beta) (ȳ ⊙ exp(-beta b) - 1)         ȳ = (1/B) Σ_i y_i

Everything on the right-hand sides is taken at the state of the batch's start. The
bias rule is ``(eta_b / beta) exp(-beta b) (ȳ - exp(beta b))`` written with one ``exp``.

How it is computed (same rule, different rounding than numpy):

* Row ``k`` of ``W`` is updated as ``w_k <- (w_k - s_k w_k) + Σ_i a_ik x_i`` with
  ``a_ik = (eta / B) y_ik`` and ``s_k = Σ_i a_ik u_ik``.
* The drives of the next batch are computed row by row right after each row's update,
  while the row is still in L1: one sweep over ``W`` per batch instead of two. So the
  bias update comes first (the next drives need the new ``b``; it only reads ``ȳ`` and
  the old ``b``), and the drive buffer ``U`` is overwritten in place (row ``k``'s old
  drives are consumed before its new ones are written).
* A non-finite ``W`` or ``b`` shows in the next drives (``inf * 0`` is NaN), which are
  summed; the last batch of a call sums its new rows instead.

A call starts by computing the drives of its first batch with the same row-dot as the
fused loop, so splitting a pass into calls does not change any number (tested).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._tunables import JIT, JIT_IEEE, PARALLEL_JIT_IEEE
from .common import prefetch_row


@njit(**JIT)
def row_dot(w, x):
    """``Σ_j w[j] x[j]`` (vectorised; the one dot product of the training pass)."""
    acc = w.dtype.type(0)
    for j in range(w.shape[0]):
        acc += w[j] * x[j]
    return acc


@njit(**JIT)
def first_drives(X, order, p0, nb, W, b, U):
    """``U[i, k] = W[k] · X[order[p0 + i]] + b[k]`` for ``i < nb``."""
    for k in range(W.shape[0]):
        w = W[k]
        for i in range(nb):
            U[i, k] = row_dot(w, X[order[p0 + i]]) + b[k]


@njit(**JIT_IEEE)
def soft_wta(U, nb, beta, Y, ybar):
    """``Y[i] = softmax(beta * U[i])`` for ``i < nb`` (max subtracted first) and the
    batch mean ``ybar``."""
    dt = U.dtype.type
    N = U.shape[1]
    for k in range(N):
        ybar[k] = dt(0)
    for i in range(nb):
        u, y = U[i], Y[i]
        top = u[0]
        for k in range(1, N):
            top = max(top, u[k])
        z = dt(0)
        for k in range(N):
            e = math.exp(beta * (u[k] - top))
            y[k] = e
            z += e
        inv = dt(1) / z
        for k in range(N):
            y[k] *= inv
            ybar[k] += y[k]
    inv_nb = dt(1) / dt(nb)
    for k in range(N):
        ybar[k] *= inv_nb


@njit(**JIT_IEEE)
def softhebb_pass(X, order, start, stop, W, b, rates, scratch):
    """Train on ``X[order[k]]``, ``start <= k < stop``, in batches of ``rates.batch``.

    ``W`` (N×m), ``b`` (N,) are updated in place; ``scratch``
    (:class:`SoftHebbScratch`) holds ``U``, ``Y`` (batch×N) and
    ``ybar`` (N,). ``rates`` (:class:`SoftHebbRates`): its
    ``eta``/``eta_b`` are float64 base rates: with ``rate_total > 0`` a batch starting at
    position ``k`` uses them times ``1 - (rate_done + k) / rate_total`` (a linear anneal
    over a whole fit), rounded to the dtype of ``W``. Returns -1, or the position of the
    first batch after which ``W`` or ``b`` was no longer finite (the state is then
    garbage).
    """
    batch, beta, eta, eta_b = rates.batch, rates.beta, rates.eta, rates.eta_b
    rate_done, rate_total = rates.rate_done, rates.rate_total
    U, Y, ybar = scratch.U, scratch.Y, scratch.ybar
    dt = W.dtype.type
    N, m = W.shape
    zero = dt(0)
    if start >= stop:
        return -1
    nb = min(batch, stop - start)
    first_drives(X, order, start, nb, W, b, U)
    pos = start
    while pos < stop:
        factor = 1.0
        if rate_total > 0:
            factor = 1.0 - (rate_done + pos) / rate_total
        lr = dt(eta * factor)
        lrb = dt(eta_b * factor / beta)
        soft_wta(U, nb, dt(beta), Y, ybar)
        for k in range(N):  # bias first: the next drives use the new b
            b[k] += lrb * (ybar[k] * math.exp(-dt(beta) * b[k]) - dt(1))
        nxt = pos + nb
        nn = min(batch, stop - nxt)
        if nn > 0:
            prefetch_row(X[order[nxt]])
        a_scale = lr / dt(nb)
        acc = zero
        for k in range(N):
            w = W[k]
            s = zero
            for i in range(nb):
                s += a_scale * Y[i, k] * U[i, k]
            a0 = a_scale * Y[0, k]
            x0 = X[order[pos]]
            for j in range(m):
                w[j] = (w[j] - s * w[j]) + a0 * x0[j]
            for i in range(1, nb):
                a = a_scale * Y[i, k]
                xi = X[order[pos + i]]
                for j in range(m):
                    w[j] += a * xi[j]
            if nn > 0:
                for i in range(nn):
                    v = row_dot(w, X[order[nxt + i]]) + b[k]
                    U[i, k] = v
                    acc += v * zero
            else:
                for j in range(m):
                    acc += w[j] * zero
                acc += b[k] * zero
        if not acc == zero:
            return pos
        pos = nxt
        nb = nn
    return -1


@njit(**PARALLEL_JIT_IEEE)
def softmax_rows(U, beta):
    """``U[i] = softmax(beta * U[i])`` for every row, in place (the response of
    ``transform``; rows in parallel)."""
    dt = U.dtype.type
    N = U.shape[1]
    for i in prange(U.shape[0]):
        u = U[i]
        top = u[0]
        for k in range(1, N):
            top = max(top, u[k])
        z = dt(0)
        for k in range(N):
            e = math.exp(dt(beta) * (u[k] - top))
            u[k] = e
            z += e
        inv = dt(1) / z
        for k in range(N):
            u[k] *= inv
    return U


# -- kernel inputs (built by these factories, as for every kernel) ---------------------
class SoftHebbRates(NamedTuple):
    """The numbers of :func:`softhebb_pass`
    (:func:`softhebb_rates`). The rates stay float64 (Python floats): the kernel
    anneals them in float64 and rounds them to ``W``'s dtype once per batch.

    Attributes
    ----------
    batch : int
        Samples per batch.
    beta, eta, eta_b : float
        Inverse temperature, weight and bias rates.
    rate_done, rate_total : float
        Samples of the fit before this pass and in the whole fit (0: no annealing).
    """

    batch: int
    beta: float
    eta: float
    eta_b: float
    rate_done: float
    rate_total: float


def softhebb_rates(batch: int, beta: float, eta: float, eta_b: float,
                   rate_done: float = 0.0, rate_total: float = 0.0) -> SoftHebbRates:
    """:class:`SoftHebbRates` with every number a Python ``int``/``float``."""
    return SoftHebbRates(int(batch), float(beta), float(eta), float(eta_b),
                         float(rate_done), float(rate_total))


class SoftHebbScratch(NamedTuple):
    """Scratch of :func:`softhebb_pass`
    (:func:`softhebb_scratch`): drives ``U`` and responses ``Y`` (batch×N) and their
    batch mean ``ybar`` (N,)."""

    U: np.ndarray
    Y: np.ndarray
    ybar: np.ndarray


def softhebb_scratch(batch: int, n_neurons: int, dtype) -> SoftHebbScratch:
    """:class:`SoftHebbScratch` for batches of ``batch`` samples, ``n_neurons`` of
    ``dtype``."""
    return SoftHebbScratch(np.empty((batch, n_neurons), dtype),
                           np.empty((batch, n_neurons), dtype), np.empty(n_neurons, dtype))
