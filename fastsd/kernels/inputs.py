"""The bundled inputs of the training kernels, and the factories that build them.

A kernel takes its state arrays, the data and the range of positions to run, and a
few bundles: a *rates* tuple (the rule's numbers, in the dtype the arithmetic must
use) and a *scratch* tuple (work arrays allocated once per pass). Each bundle is a
:class:`typing.NamedTuple`, which Numba passes into compiled code as a struct (its
fields read like attributes, at no cost), and each has one factory that the
estimators, the tests and the tools all use, so that a kernel is never fed a
hand-built argument list. This module holds those of SparseDream and Krotov–Hopfield;
a rule added as a plug-in keeps its bundles next to its kernel
(:mod:`fastsd.kernels.softhebb`).

Scalars of a rates tuple are numpy scalars of the state's dtype where the rule
computes in that dtype: a Python float would make Numba compute float32 state in
float64.
"""
from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .._tunables import ALIGN, PARTS, ROW_BLOCK
from .columns import column_cuts
from .krotov import bounds, exponent, unit_blocks
from .sparsedream import part_cuts

# -- SparseDream ------------------------------------------------------------------------


class SparseDreamRates(NamedTuple):
    """SparseDream's rates, scalars of the state's dtype (:func:`sparsedream_rates`).

    Attributes
    ----------
    xi, sp, gamma, beta, prec
        Weight rate, target firing rate, threshold rate, inhibition rate, floor of
        the reconstruction and pruning threshold (``docs/rules/sparsedream.md``).
    """

    xi: np.floating
    sp: np.floating
    gamma: np.floating
    beta: np.floating
    prec: np.floating


def sparsedream_rates(params, dtype) -> SparseDreamRates:
    """The rates ``params["xi"]``, ... as scalars of ``dtype``.

    Parameters
    ----------
    params : mapping
        Holds ``xi``, ``sp``, ``gamma``, ``beta`` and ``prec`` (other keys ignored).
    dtype : numpy dtype or type
        The state's dtype.

    Returns
    -------
    SparseDreamRates
        Annealing replaces ``xi`` (``rates._replace(xi=dtype.type(...))``).
    """
    cast = np.dtype(dtype).type
    return SparseDreamRates(*(cast(params[name]) for name in SparseDreamRates._fields))


class SampleScratch(NamedTuple):
    """Work arrays of the per-sample SparseDream pass (:func:`sample_scratch`).

    Attributes
    ----------
    a, p, o : (N,) arrays
        Drive, excitation, responses; ``a`` carries the next sample's drive between
        the calls of one pass.
    r, g : (m,) arrays
        Reconstruction and relative error.
    rows, cols : (3,) int64 arrays
        Row parts of ``W``/``L`` and column parts of ``W`` for the two-part pass.
    """

    a: np.ndarray
    p: np.ndarray
    o: np.ndarray
    r: np.ndarray
    g: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def sample_scratch(n_neurons: int, n_features: int, dtype) -> SampleScratch:
    """Scratch of :func:`fastsd.kernels.sparsedream.sparsedream_pass` (and its two-part
    variant) for ``n_neurons`` × ``n_features`` state of ``dtype``."""
    a, p, o = (np.empty(n_neurons, dtype) for _ in range(3))
    r, g = (np.empty(n_features, dtype) for _ in range(2))
    return SampleScratch(a, p, o, r, g, part_cuts(n_neurons, ROW_BLOCK),
                         part_cuts(n_features, ALIGN))


class MiniBatchOptions(NamedTuple):
    """How the mini-batch pass runs (:func:`minibatch_options`).

    Attributes
    ----------
    batch_size, prune_every : int
    min_response : scalar of the state's dtype
        Responses below it are left out of every product with the responses.
    saturate : bool
        In ``L p̃``, also round the ``p`` within ``min_response`` of 1 up to 1.
    """

    batch_size: int
    prune_every: int
    min_response: np.floating
    saturate: bool


def minibatch_options(batch_size: int, prune_every: int, min_response: float,
                      saturate: bool, dtype) -> MiniBatchOptions:
    """:class:`MiniBatchOptions` with ``min_response`` in ``dtype``."""
    return MiniBatchOptions(int(batch_size), int(prune_every),
                            np.dtype(dtype).type(min_response), bool(saturate))


class MiniBatchScratch(NamedTuple):
    """Arrays of the mini-batch pass (:func:`minibatch_scratch`); the first four are
    carried from one call of a pass to the next, the others are scratch.

    Attributes
    ----------
    WT : (m, N) array
        ``W.T``, kept in step with ``W``.
    u : (N,) float64 array
        Column sums of ``Lᵀ``.
    pending : (1,) array
        The constant part of the inhibition updates not yet added to ``L``.
    dirty : (N,) bool array
        Rows changed since the last pruning (all True is always safe).
    A, O : (batch_size, N) arrays; AP : (PARTS, batch_size, N) array;
    G : (batch_size, m) array
        Drives, responses, partial drives, relative errors of a batch.
    P : (2, N) array; off : (N,) int32 array; changed : (N,) bool array
        Excitations, indices of the unsaturated ones, rows changed by a batch.
    neurons : (batch_size, N) int32 array; n_neurons, n_read : (batch_size,) int32
    arrays; samples : (N, batch_size) int32 array; n_samples : (N,) int32 array
        The active sets of a batch
        (:func:`fastsd.kernels.minibatch.batch_responses`).
    cuts : (PARTS + 1,) int64 array
        Column boundaries of the parts (:func:`fastsd.kernels.columns.column_cuts`).
    IDX : (PARTS, batch_size, m) int32 array; NNZ : (PARTS, batch_size) int64 array;
    S : (PARTS, m) array; finite : (PARTS,) bool array
        Scratch per part.
    """

    WT: np.ndarray
    u: np.ndarray
    pending: np.ndarray
    dirty: np.ndarray
    A: np.ndarray
    AP: np.ndarray
    O: np.ndarray  # noqa: E741
    G: np.ndarray
    P: np.ndarray
    off: np.ndarray
    changed: np.ndarray
    neurons: np.ndarray
    n_neurons: np.ndarray
    n_read: np.ndarray
    samples: np.ndarray
    n_samples: np.ndarray
    cuts: np.ndarray
    IDX: np.ndarray
    NNZ: np.ndarray
    S: np.ndarray
    finite: np.ndarray


def minibatch_scratch(n_neurons: int, n_features: int, batch_size: int,
                      dtype) -> MiniBatchScratch:
    """Arrays of :func:`fastsd.kernels.minibatch.minibatch_pass` for batches of
    ``batch_size`` samples and ``n_neurons`` × ``n_features`` state of ``dtype``."""
    N, m, B = n_neurons, n_features, batch_size
    return MiniBatchScratch(
        WT=np.empty((m, N), dtype), u=np.empty(N, np.float64),
        pending=np.zeros(1, dtype), dirty=np.ones(N, np.bool_),
        A=np.empty((B, N), dtype), AP=np.empty((PARTS, B, N), dtype),
        O=np.empty((B, N), dtype), G=np.empty((B, m), dtype), P=np.empty((2, N), dtype),
        off=np.empty(N, np.int32), changed=np.empty(N, np.bool_),
        neurons=np.empty((B, N), np.int32), n_neurons=np.empty(B, np.int32),
        n_read=np.empty(B, np.int32), samples=np.empty((N, B), np.int32),
        n_samples=np.empty(N, np.int32), cuts=column_cuts(m),
        IDX=np.empty((PARTS, B, m), np.int32), NNZ=np.empty((PARTS, B), np.int64),
        S=np.empty((PARTS, m), dtype), finite=np.ones(PARTS, np.bool_))


# -- Krotov–Hopfield --------------------------------------------------------------------


class KrotovRates(NamedTuple):
    """The rule's numbers for :func:`fastsd.kernels.krotov.krotov_pass`
    (:func:`krotov_rates`).

    Attributes
    ----------
    batch_size, k : int
        Samples per batch (at most the workspace's), rank of the pushed-away unit.
    p_int : int
        :func:`fastsd.kernels.krotov.p_code` of the exponent ``p``.
    q, delta, eps, prec : scalars of the weights' dtype
        ``p - 1``, anti-Hebbian strength, rate, floor of ``max|ds|``.
    """

    batch_size: int
    k: int
    p_int: int
    q: np.floating
    delta: np.floating
    eps: np.floating
    prec: np.floating


def krotov_rates(batch_size: int, p: float, k: int, delta: float, eps: float,
                 prec: float, dtype) -> KrotovRates:
    """:class:`KrotovRates` with the real numbers in ``dtype``."""
    cast = np.dtype(dtype).type
    return KrotovRates(int(batch_size), int(k), *exponent(p, dtype), cast(delta),
                       cast(eps), cast(prec))


def _zeros(shape, dtype):
    """``np.zeros`` with its pages written now: ``np.zeros`` maps them lazily, and the
    first batches, which the thread probe times, would pay for the page faults."""
    return np.full(shape, 0, dtype)


class KrotovWorkspace(NamedTuple):
    """Scratch of :func:`fastsd.kernels.krotov.krotov_pass` (:func:`krotov_workspace`).

    Attributes
    ----------
    unit_bounds : int64 array
        Bounds of the drives' unit blocks (:func:`fastsd.kernels.krotov.bounds`).
    nzi, nzv : (2, batch_size, m) arrays; nnz : (2, batch_size) int64 array
        Non-zeros of two batches (the current one and the next).
    IT : (batch_size, N) array
        Drives of a batch.
    top, kth : (batch_size,) int64 arrays; buf_v, buf_i : (batch_size, k) arrays
        Ranking results and buffers.
    slot : (N,) int64 array (-1 between batches); units : (2 batch_size,) int64 array;
    xc : (2 batch_size,) array; G : (2 batch_size, m) array (zero between batches)
        The touched units of a batch and their updates.
    """

    unit_bounds: np.ndarray
    nzi: np.ndarray
    nzv: np.ndarray
    nnz: np.ndarray
    IT: np.ndarray
    top: np.ndarray
    kth: np.ndarray
    buf_v: np.ndarray
    buf_i: np.ndarray
    slot: np.ndarray
    units: np.ndarray
    xc: np.ndarray
    G: np.ndarray


def krotov_workspace(batch_size: int, n: int, m: int, k: int, dtype,
                     n_unit_blocks: int | None = None) -> KrotovWorkspace:
    """Scratch for batches of up to ``batch_size`` samples, ``n`` × ``m`` weights of
    ``dtype`` and rank ``k``, allocated once per pass.

    ``n_unit_blocks`` (the drives' unit blocks) defaults to
    :func:`fastsd.kernels.krotov.unit_blocks` for ``numba.get_num_threads()`` threads;
    results do not depend on it.
    """
    dtype = np.dtype(dtype)
    if n_unit_blocks is None:
        n_unit_blocks = unit_blocks(n, m, dtype.itemsize, numba.get_num_threads())
    B = batch_size
    return KrotovWorkspace(
        unit_bounds=bounds(n, n_unit_blocks, ALIGN),
        nzi=_zeros((2, B, m), np.int32), nzv=_zeros((2, B, m), dtype),
        nnz=_zeros((2, B), np.int64), IT=_zeros((B, n), dtype),
        top=_zeros(B, np.int64), kth=_zeros(B, np.int64),
        buf_v=_zeros((B, k), dtype), buf_i=_zeros((B, k), np.int64),
        slot=np.full(n, -1, np.int64), units=_zeros(2 * B, np.int64),
        xc=_zeros(2 * B, dtype), G=_zeros((2 * B, m), dtype))
