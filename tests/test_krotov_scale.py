"""Krotov & Hopfield at scale: the compiled pass against the plain-numpy reference at
MNIST's size and a large N, the touched-units update on the cases that stress it, the
ranking scan on rows longer than its skipped runs, the block helpers and the thread
probe. Tolerances are those argued at the top of ``test_krotov.py``.
"""
from __future__ import annotations

import time

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_kh
from conftest import image_like
from fastsd import _threads
from fastsd._tunables import ALIGN, SCAN, UNIT_BLOCK_BYTES
from fastsd.kernels import krotov as kernel
from test_krotov import ATOL32, ATOL64, run_kernel, run_reference

M = 784


@pytest.fixture(scope="module")
def mnist_like():
    """300 samples of 784 pixels, ~20% non-zero, the first 98 pixels always zero."""
    X = image_like(300, M, seed=21, density=0.2)
    return X, np.random.default_rng(22).permutation(300)


@pytest.mark.parametrize("dtype, atol", [(np.float64, ATOL64), (np.float32, ATOL32)])
@pytest.mark.parametrize("rule", [dict(p=2.0, k=2, delta=0.4), dict(p=3.0, k=7, delta=0.0)],
                         ids=["p2-k2", "p3-k7-d0"])
def test_large_n_matches_reference(mnist_like, dtype, atol, rule):
    """N = 1600 over three batches of 100 MNIST-sized samples."""
    X, order = mnist_like
    W0 = np.random.default_rng(23).normal(0.0, 1.0, (1600, M))
    W = run_kernel(X, order, W0, batch_size=100, dtype=dtype, **rule)
    W_ref = run_reference(X, order, W0, batch_size=100, **rule)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=atol)
    assert np.abs(W_ref - W0).max() > 0.015  # each batch moves some weight by eps


def test_large_n_independent_of_blocks_and_threads(mnist_like):
    """N = 1601 (not a multiple of the block alignment): any number of unit blocks or
    threads gives the same bits."""
    X, order = mnist_like
    W0 = np.random.default_rng(24).normal(0.0, 1.0, (1601, M))
    rule = dict(p=2.0, k=3, delta=0.4, batch_size=60, dtype=np.float32)
    ref = run_kernel(X, order, W0, n_unit_blocks=1, **rule)
    for blocks in (3, 7, 100):
        np.testing.assert_array_equal(run_kernel(X, order, W0, n_unit_blocks=blocks, **rule),
                                      ref)
    before = numba.get_num_threads()
    try:
        for threads in {1, numba.config.NUMBA_NUM_THREADS}:
            numba.set_num_threads(threads)
            np.testing.assert_array_equal(run_kernel(X, order, W0, **rule), ref)
    finally:
        numba.set_num_threads(before)


def test_one_unit_wins_every_sample():
    """Unit 3 has the largest drive for every sample: it is the top unit of the whole
    batch, touched once however many samples pick it."""
    X = image_like(120, 64, seed=25)
    rng = np.random.default_rng(26)
    W0 = rng.normal(0.0, 0.1, (30, 64))
    W0[3] = 5.0
    I = W0 @ X.T
    assert (naive_kh.ranks(I)[0] == 3).all()
    order = np.arange(120)
    rule = dict(p=2.0, k=2, delta=0.4, batch_size=40)
    np.testing.assert_allclose(run_kernel(X, order, W0, **rule),
                               run_reference(X, order, W0, **rule), rtol=0, atol=ATOL64)


@pytest.mark.parametrize("k, delta", [(40, 0.4), (2, 0.0), (40, 0.0)])
def test_k_equals_n_and_no_anti_hebbian(k, delta):
    X = image_like(200, 64, seed=27)
    W0 = np.random.default_rng(28).normal(0.0, 1.0, (40, 64))
    order = np.random.default_rng(29).permutation(200)
    rule = dict(p=2.0, k=k, delta=delta, batch_size=50)
    np.testing.assert_allclose(run_kernel(X, order, W0, **rule),
                               run_reference(X, order, W0, **rule), rtol=0, atol=ATOL64)


def test_all_zero_batch_leaves_weights_unchanged():
    """A batch of blank images: every drive is 0 (ties everywhere, unit 0 ranked 1st),
    ``ds = 0`` and the weights do not move, also between two non-zero batches."""
    X = image_like(60, 64, seed=30)
    X[:20] = 0.0
    W0 = np.random.default_rng(31).normal(0.0, 1.0, (50, 64))
    rule = dict(p=3.0, k=2, delta=0.4, batch_size=20)
    blank = np.arange(20)
    np.testing.assert_array_equal(run_kernel(X, blank, W0, **rule), W0)
    np.testing.assert_array_equal(run_reference(X, blank, W0, **rule), W0)
    order = np.r_[20:40, 0:20, 40:60]
    W = run_kernel(X, order, W0, **rule)
    np.testing.assert_allclose(W, run_reference(X, order, W0, **rule), rtol=0, atol=ATOL64)
    W_first = run_kernel(X, order[:20], W0, **rule)
    np.testing.assert_array_equal(run_kernel(X, order[:40], W0, **rule), W_first)


def test_touched_units_lists_xx_of_the_ranked_units():
    rng = np.random.default_rng(32)
    N, B, delta = 30, 12, 0.4
    IT = rng.normal(size=(B, N))
    top = rng.integers(0, 5, B)            # repeats, and units both top and k-th
    kth = rng.integers(3, 8, B)
    kth[kth == top] += 10
    slot = np.full(N, -1, np.int64)
    units, xc = np.zeros(2 * B, np.int64), np.zeros(2 * B)
    n = kernel.touched_units(top, kth, IT, delta, slot, units, xc)
    expected = np.unique(np.concatenate([top, kth]))
    np.testing.assert_array_equal(units[:n], expected)
    np.testing.assert_array_equal(slot[expected], np.arange(n))
    g = np.zeros((N, B))
    g[top, np.arange(B)] = 1.0
    g[kth, np.arange(B)] = -delta
    xx = np.sum(g * IT.T, axis=1)
    np.testing.assert_allclose(xc[:n], xx[expected], rtol=0, atol=1e-14)
    assert not xx[np.setdiff1d(np.arange(N), expected)].any()
    kernel.untouch(slot, units, n)
    assert (slot == -1).all()


# -- ranking scan on long rows ----------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=6 * SCAN),
       st.integers(2, 6 * SCAN), st.integers(0, 6 * SCAN))
def test_top_and_kth_on_rows_longer_than_a_scan_run(values, k, spike):
    """Rows of several runs, full of ties, with one large value placed anywhere."""
    row = np.array(values, dtype=np.float32)
    row[spike % row.size] = 9.0
    k = min(k, row.size)
    ranked = np.argsort(-row, kind="stable")
    got = kernel.top_and_kth(row, k, np.empty(k, np.float32), np.empty(k, np.int64))
    assert got == (ranked[0], ranked[k - 1])


# -- block helpers ----------------------------------------------------------------------
@pytest.mark.parametrize("n, blocks, align", [(1600, 4, 16), (1601, 7, 16), (20, 3, 16),
                                              (784, 2, 1), (5, 5, 1)])
def test_bounds(n, blocks, align):
    b = kernel.bounds(n, blocks, align)
    assert b.size == blocks + 1 and b[0] == 0 and b[-1] == n
    assert (np.diff(b) >= 0).all() and (b[1:-1] % align == 0).all()
    widths = np.diff(b)
    assert widths.max() - widths.min() <= align or n < blocks * align


@pytest.mark.parametrize("n, threads", [(100, 2), (1600, 2), (6400, 2), (6400, 3), (8, 4)])
def test_unit_blocks(n, threads):
    blocks = kernel.unit_blocks(n, M, 4, threads)
    groups = -(-n // ALIGN)
    assert 1 <= blocks <= groups
    assert blocks % threads == 0 or blocks == groups
    width = np.diff(kernel.bounds(n, blocks, ALIGN)).max()
    assert width * M * 4 <= UNIT_BLOCK_BYTES or width <= ALIGN


# -- the thread probe -------------------------------------------------------------------
def test_probe_compares_the_fastest_turns():
    """All threads are slow in their first (cold) turn only, one thread is steady:
    comparing the fastest turns picks all threads; the first turns alone would not."""
    calls = []

    def run(start, stop, threads):
        cold = threads > 1 and not any(c[2] > 1 for c in calls)
        calls.append((start, stop, threads))
        time.sleep(0.06 if cold else 0.002 if threads > 1 else 0.01)

    chooser = _threads.ThreadChooser()
    batch = 10
    threads, position = chooser.start("k", run, 100 * batch, batch, 2, rounds=4)
    assert (threads, position) == (2, 2 * _threads.PROBE_BATCHES * batch)
    assert [c[2] for c in calls] == [2, 1] * 4
    assert [c[0] for c in calls] == list(range(0, position, position // 8))
    calls.clear()
    assert _threads.ThreadChooser().start("k", run, 100 * batch, batch, 2)[0] == 1


def test_probe_gives_up_when_all_threads_are_much_slower():
    """Turns on all threads 5x slower than one thread's after a fast first one (another
    process took a core): two rounds only, and one thread."""
    calls = []

    def run(start, stop, threads):
        calls.append(threads)
        fast_start = len(calls) == 1  # all threads fastest in the first turn, then not
        time.sleep(0.001 if fast_start else 0.05 if threads > 1 else 0.01)

    batch = 10
    threads, position = _threads.ThreadChooser().start("k", run, 100 * batch, batch, 2,
                                                       rounds=4)
    assert (threads, calls) == (1, [2, 1, 2, 1])
    assert position == 4 * (_threads.PROBE_BATCHES // 4) * batch


def test_probe_gives_up_in_the_first_round_when_all_threads_are_far_slower():
    calls = []

    def run(start, stop, threads):
        calls.append(threads)
        time.sleep(0.2 if threads > 1 else 0.01)   # 20x: cold caches cannot explain it

    assert _threads.ThreadChooser().start("k", run, 1000, 10, 2, rounds=4)[0] == 1
    assert calls == [2, 1]
