"""The compiled SparseDream pass against its plain-numpy reference (``tests/naive.py``).

Tolerance (float64): the kernel sums dot products in a different order (vectorised,
reassociated) and may fuse multiply-adds, so single operations differ by a few ulps.
Over 600 samples we observe differences of ~1e-15 relative; we allow rtol=1e-9 and
atol=1e-12 (absolute, for weights near zero). That is six orders above the rounding
noise yet far below what a real mistake produces: ``test_tolerance_catches_mistakes``
shows that each of a set of plausible wrong variants misses by more than 1e-6.

float32 is compared with the float64 reference at rtol=atol=1e-4: float32 rounding
(6e-8) accumulated over hundreds of samples stays around 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import naive
from conftest import image_like
from fastsd.kernels import sparsedream as kernel
from fastsd.kernels.common import apply_sigmoid
from fastsd.kernels.inputs import sample_scratch, sparsedream_rates
from conftest import reference_defaults
from fastsd import SparseDream

SD = reference_defaults(SparseDream)

PARAMS = dict(xi=0.05, sp=0.05, gamma=0.5, beta=0.01, prec=1e-3)
N, M, N_SAMPLES = 24, 64, 600
RTOL64, ATOL64 = 1e-9, 1e-12


def initial_state(seed=1, n=N, m=M, prec=PARAMS["prec"]):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (n, m))
    # A tenth of the weights start near the pruning threshold, so that pruning zeroes
    # some at position 0 and more at later pruning steps as they shrink.
    near = rng.random((n, m)) < 0.1
    W[near] = rng.uniform(0.0, 3 * prec, near.sum())
    t = rng.normal(0, 0.1, n)
    L = rng.normal(0, 0.01, (n, n))
    np.fill_diagonal(L, 0)
    return W, t, L


def run_kernel(X, order, W, t, L, params=PARAMS, prune_every=100, dtype=np.float64,
               chunks=(None,)):
    W, t, L = (np.array(s, dtype=dtype) for s in (W, t, L))
    rates = sparsedream_rates(params, dtype)
    scratch = sample_scratch(*W.shape, dtype)
    order = np.asarray(order, dtype=np.int64)
    bounds = [0, *[c for c in chunks if c is not None], order.size]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        bad = kernel.sparsedream_pass(np.asarray(X, dtype), order, start, stop, W, t, L,
                                      rates, prune_every, scratch)
        assert bad == -1
    return W, t, L


def run_reference(X, order, W, t, L, params=PARAMS, prune_every=100, step=None):
    W, t, L = W.copy(), t.copy(), L.copy()
    step = step or naive.sparsedream_step
    for k, idx in enumerate(order):
        step(X[idx], W, t, L, prune=(k % prune_every == 0), **params)
    return W, t, L


@pytest.fixture(scope="module")
def case():
    X = image_like(400, M, seed=3)
    order = np.random.default_rng(4).integers(0, 400, N_SAMPLES)  # with repeats
    W0, t0, L0 = initial_state()
    return X, order, (W0, t0, L0), run_reference(X, order, W0, t0, L0)


def test_float64_matches_reference(case):
    X, order, state0, (W_ref, t_ref, L_ref) = case
    W, t, L = run_kernel(X, order, *state0)
    np.testing.assert_allclose(W, W_ref, rtol=RTOL64, atol=ATOL64)
    np.testing.assert_allclose(t, t_ref, rtol=RTOL64, atol=ATOL64)
    np.testing.assert_allclose(L, L_ref, rtol=RTOL64, atol=ATOL64)
    # the case exercises what it claims to: inhibition, pruning at several steps
    assert np.all(np.diag(L) == 0) and np.abs(L).max() > 0.01
    initially_pruned = np.sum(state0[0] <= PARAMS["prec"])
    assert np.array_equal(W == 0, W_ref == 0)
    assert np.sum(W == 0) > initially_pruned > 0


def test_float32_close_to_reference(case):
    X, order, state0, (W_ref, t_ref, L_ref) = case
    W, t, L = run_kernel(X, order, *state0, dtype=np.float32)
    assert W.dtype == t.dtype == L.dtype == np.float32
    np.testing.assert_allclose(W, W_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(t, t_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(L, L_ref, rtol=1e-4, atol=1e-4)


def test_chunked_pass_is_bit_identical(case):
    X, order, state0, _ = case
    whole = run_kernel(X, order, *state0)
    split = run_kernel(X, order, *state0, chunks=(1, 99, 100, 101, 357))
    for a, b in zip(whole, split):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_splits_are_bit_identical(case, seed, dtype):
    """Split points anywhere, any N: at a split the next call computes ``L p`` with the
    same arithmetic as the fused update would have (an earlier shortcut that added and
    then removed the diagonal term differed in the last bit in 20 of 60 such runs)."""
    X, _, _, _ = case
    rng = np.random.default_rng(seed)
    order = rng.integers(0, X.shape[0], 300)
    state0 = initial_state(seed=seed, n=int(rng.integers(3, 30)))
    chunks = tuple(sorted(rng.choice(np.arange(1, 300), 5, replace=False)))
    whole = run_kernel(X, order, *state0, dtype=dtype)
    split = run_kernel(X, order, *state0, dtype=dtype, chunks=chunks)
    for a, b in zip(whole, split):
        assert np.array_equal(a, b)


def test_prune_every_counts_positions(case):
    X, order, state0, _ = case
    for prune_every in (1, 7):
        ref = run_reference(X, order[:150], *state0, prune_every=prune_every)
        got = run_kernel(X, order[:150], *state0, prune_every=prune_every)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize("n_samples", [1, 2, 5])
def test_zero_beta_still_zeroes_an_assigned_diagonal(case, n_samples):
    """Step 5 sets diag(L) to 0 even when beta is 0: an assigned L with a non-zero
    diagonal enters the first sample's ``L p`` as given and is then cleared, also in a
    pass of one sample (whose update happens at the end of the call)."""
    X, order, (W0, t0, L0), _ = case
    L0 = L0.copy()
    np.fill_diagonal(L0, 0.3)
    params = {**PARAMS, "beta": 0.0}
    ref = run_reference(X, order[:n_samples], W0, t0, L0, params=params)
    got = run_kernel(X, order[:n_samples], W0, t0, L0, params=params)
    assert np.all(np.diag(got[2]) == 0)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=RTOL64, atol=ATOL64)


def test_neuron_count_not_a_multiple_of_the_row_block(case):
    """N = 13: the blocked ``W`` loops (four rows per sweep) also run their leftover rows."""
    X, order, _, _ = case
    state0 = initial_state(seed=2, n=13)
    ref = run_reference(X, order[:200], *state0)
    got = run_kernel(X, order[:200], *state0)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=RTOL64, atol=ATOL64)
    split = run_kernel(X, order[:200], *state0, chunks=(1, 77))
    for a, b in zip(got, split):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype, max_ulp", [(np.float64, 4), (np.float32, 2)])
def test_sigmoid_accuracy_and_special_values(dtype, max_ulp):
    """The inline, vectorised sigmoid of the kernels against ``1 / (1 + exp(-x))``."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-800, 800, 100001), rng.normal(0, 5, 100000),
                        rng.normal(0, 1e-3, 1000)]).astype(dtype)
    got = x.copy()
    apply_sigmoid(got)
    exact = expit(x.astype(np.float64))
    normal = exact > 1e3 * np.finfo(dtype).tiny
    ulp = np.spacing(exact.astype(dtype)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - exact) / ulp
    assert err[normal].max() <= max_ulp
    assert np.all(np.abs(got - exact)[~normal] <= np.finfo(dtype).tiny)
    assert np.all((got >= 0) & (got <= 1))
    special = np.array([np.nan, np.inf, -np.inf, 0.0, 1e6, -1e6], dtype=dtype)
    apply_sigmoid(special)
    np.testing.assert_array_equal(special, [np.nan, 1, 0, 0.5, 1, 0])


def test_no_inhibition_leaves_L_untouched(case):
    X, order, state0, _ = case
    params = {**PARAMS, "beta": 0.0}
    W, t, L = run_kernel(X, order[:200], *state0, params=params)
    W_ref, t_ref, L_ref = run_reference(X, order[:200], *state0, params=params)
    assert np.array_equal(L, state0[2])
    np.testing.assert_allclose(W, W_ref, rtol=RTOL64, atol=ATOL64)


def _weight_step_with_updated_w(v, W, t, L, **kw):
    """Wrong: steps 5-7 use a reconstruction recomputed after the weight update."""
    o = naive.sparsedream_step(v, W, t, L, **kw)
    t += kw["gamma"] * 1e-3 * o
    return o


def _no_zero_diagonal(v, W, t, L, **kw):
    o = naive.sparsedream_step(v, W, t, L, **kw)
    L[np.diag_indices_from(L)] += kw["beta"] * (o * o - kw["sp"] ** 2)
    return o


def _prune_off_by_one(v, W, t, L, *, prune, **kw):
    return naive.sparsedream_step(v, W, t, L, prune=False, **kw)


@pytest.mark.parametrize("wrong_step", [_weight_step_with_updated_w, _no_zero_diagonal,
                                        _prune_off_by_one])
def test_tolerance_catches_mistakes(case, wrong_step):
    """The chosen tolerance is not vacuous: plausible wrong rules fail it clearly."""
    X, order, state0, _ = case
    W, t, L = run_kernel(X, order, *state0)
    W_bad, t_bad, L_bad = run_reference(X, order, *state0, step=wrong_step)
    worst = max(np.max(np.abs(a - b) / (np.abs(b) + 1e-12))
                for a, b in ((W, W_bad), (t, t_bad), (L, L_bad)))
    assert worst > 1e-6


def test_non_finite_state_is_reported():
    """Rates that are too large drive this rule's weights to zero rather than to
    infinity, so overflow is provoked directly: two neurons with huge (finite) weights
    on the pixels of the first sample both fire, their reconstruction ``r`` overflows and
    ``(v - r) / r`` turns the weights into NaN."""
    X = image_like(50, M, seed=5)
    X[0, -3:] = 1.0
    W, t, L = initial_state()
    W[:2, -3:] = 1.5e308
    bad = kernel.sparsedream_pass(X, np.arange(50), 0, 50, W, t, L,
                                  sparsedream_rates(PARAMS, np.float64), 10,
                                  sample_scratch(N, M, np.float64))
    assert bad == 0  # noticed at the first check (position 0 is a pruning step)
    assert not np.all(np.isfinite(W))


def test_response_matches_reference(case):
    X, _, (W, t, L), _ = case
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        out = np.empty((X.shape[0], W.shape[0]), dtype)
        kernel.sparsedream_response(X.astype(dtype), W.astype(dtype), t.astype(dtype),
                                    L.astype(dtype), out)
        np.testing.assert_allclose(out, naive.sparsedream_response(X, W, t, L),
                                   rtol=tol, atol=tol)


def test_real_mnist_500_samples(mnist):
    """Notebook setting on real digits: 600 samples, pruning every 100, inhibition on."""
    X = mnist.x_train[:2000].astype(np.float64)
    order = np.random.default_rng(0).permutation(2000)[:600]
    rng = np.random.default_rng(1)
    W0 = rng.uniform(0.1, 1.0, (100, X.shape[1]))
    state0 = (W0, np.zeros(100), np.zeros((100, 100)))
    params = dict(xi=0.02, sp=0.01, gamma=1.0, beta=0.005, prec=1e-10)
    W, t, L = run_kernel(X, order, *state0, params=params)
    W_ref, t_ref, L_ref = run_reference(X, order, *state0, params=params)
    for a, b in ((W, W_ref), (t, t_ref), (L, L_ref)):
        np.testing.assert_allclose(a, b, rtol=RTOL64, atol=ATOL64)
    assert np.abs(L).max() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_L", [False, True])
def test_respond_flushes_tiny_responses(dtype, use_L):
    """Responses below sqrt(smallest normal) leave the response steps as exact zeros (their
    products with small weights would be subnormal: slow on x86), the rest unchanged."""
    from fastsd.kernels.common import excite, inhibit, lateral
    cut = np.sqrt(np.finfo(dtype).tiny)
    # sigmoid(x) ~ exp(x): drives from far below the cut to well above it
    x = np.log(cut) + np.linspace(-30.0, 30.0, 61)
    n = x.size
    a, t = x.astype(dtype), np.zeros(n, dtype)
    L = np.zeros((n, n), dtype)
    p, o, o_prev = (np.zeros(n, dtype) for _ in range(3))
    excite(a, t, p, o, use_L)
    if use_L:
        lateral(L, o_prev, dtype(0), dtype(0), p, o, False, 0, n)
    inhibit(a, t, o, use_L)
    expected = expit(x)
    tiny = expected < cut
    assert tiny.sum() > 20 and (~tiny).sum() > 20
    assert np.all(o[tiny] == 0)
    np.testing.assert_allclose(o[~tiny], expected[~tiny], rtol=1e-5)
    if use_L:  # p enters L p: flushed alike
        assert np.all(p[tiny] == 0) and np.all(p[~tiny] > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [N, 103])
def test_two_part_pass_is_bit_identical_to_the_serial_pass(case, dtype, n):
    """The per-sample pass with its work on W and L split into row and column parts
    (run on one or two threads, and split into calls) gives the serial pass's numbers
    exactly: every number is computed by the same arithmetic."""
    import numba

    X, order = case[0], case[1]
    W, t, L = initial_state(seed=2, n=n)
    serial = run_kernel(X, order, W, t, L, dtype=dtype)
    rates = sparsedream_rates(PARAMS, dtype)
    before = numba.get_num_threads()
    for threads in sorted({1, min(2, before)}):
        numba.set_num_threads(threads)
        try:
            Wp, tp, Lp = (np.array(s, dtype=dtype) for s in (W, t, L))
            scratch = sample_scratch(n, M, dtype)
            Xd, ordr = np.asarray(X, dtype), np.asarray(order, np.int64)
            for start, stop in ((0, 250), (250, ordr.size)):
                assert kernel.sparsedream_pass_parts(Xd, ordr, start, stop, Wp, tp, Lp,
                                                     rates, 100, scratch) == -1
        finally:
            numba.set_num_threads(before)
        for got, want in zip((Wp, tp, Lp), serial):
            np.testing.assert_array_equal(got, want)


def test_model_uses_two_parts_above_the_threshold(monkeypatch):
    """The estimator's per-sample path from ``PARTS_MIN_NEURONS`` on: same results as
    the serial path, and the two-part kernel really ran (on the chosen threads)."""
    from fastsd import passes, sparsedream_passes
    from fastsd._threads import ThreadChooser

    X = image_like(13000, 16, seed=5)
    kw = dict(xi=0.05, sp=0.05, gamma=0.5, beta=0.01, random_state=3)
    serial = SD(12, **kw).fit(X)
    calls = []
    real = kernel.sparsedream_pass_parts

    def spy(*args):
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(sparsedream_passes, "PARTS_MIN_NEURONS", 8)
    monkeypatch.setattr(passes, "_CHOOSER", ThreadChooser())
    monkeypatch.setattr(kernel, "sparsedream_pass_parts", spy)
    parts = SD(12, **kw).fit(X)
    import numba
    if numba.get_num_threads() > 1:
        assert calls and calls[0] == 0  # the first chunk runs on two threads
    for name in ("weights_", "thresholds_", "inhibition_"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(serial, name))


def test_large_network_matches_reference():
    """N = 1600 on 784 pixels (the field's sizes) over 200 samples, inhibition and
    pruning active, both the serial and the two-part kernel against the numpy reference
    at the float64 tolerance argued above (sums of 1600 terms round to ~1e-14)."""
    import numba

    n, m = 1600, 784
    X = image_like(300, m, seed=7)
    order = np.random.default_rng(8).integers(0, 300, 200)
    W0, t0, L0 = initial_state(seed=9, n=n, m=m)
    W_ref, t_ref, L_ref = run_reference(X, order, W0, t0, L0, prune_every=50)
    serial = run_kernel(X, order, W0, t0, L0, prune_every=50)
    W, t, L = (s.copy() for s in (W0, t0, L0))
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, before))
    try:
        assert kernel.sparsedream_pass_parts(
            X, np.asarray(order, np.int64), 0, order.size, W, t, L,
            sparsedream_rates(PARAMS, np.float64), 50, sample_scratch(n, m, np.float64)) == -1
    finally:
        numba.set_num_threads(before)
    for got in (serial, (W, t, L)):
        for x, ref in zip(got, (W_ref, t_ref, L_ref)):
            np.testing.assert_allclose(x, ref, rtol=RTOL64, atol=ATOL64)
    assert np.sum(W_ref == 0) > np.sum(W0 <= PARAMS["prec"]) > 0  # pruning acted
    assert np.abs(L_ref - L0).max() > 1e-3  # inhibition changed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_inputs_keep_the_state_dtype(dtype):
    """The factories give the kernels numbers of the state's dtype (a Python float
    would make Numba compute float32 state in float64), also after annealing."""
    import numba

    from fastsd.kernels.inputs import krotov_rates, minibatch_options
    from fastsd.sparsedream_passes import ExactPass
    from fastsd.passes import Schedule

    rates = sparsedream_rates(PARAMS, dtype)
    assert numba.typeof(rates).dtype == numba.from_dtype(np.dtype(dtype))
    assert type(minibatch_options(10, 100, 1e-6, True, dtype).min_response) is dtype
    kh = krotov_rates(100, 3.0, 2, 0.4, 0.02, 1e-30, dtype)
    assert all(type(x) is dtype for x in (kh.q, kh.delta, kh.eps, kh.prec))
    W, t, L = (np.asarray(s, dtype) for s in initial_state())
    params = dict(PARAMS, prune_every=100, anneal=True, batch_size=1)
    annealed = ExactPass({"weights_": W, "thresholds_": t, "inhibition_": L}, params,
                         rates, Schedule(100, 200))
    annealed.run(image_like(10, M, seed=1).astype(dtype), np.arange(10), 0, 10, 1)
    assert type(annealed.rates.xi) is dtype and annealed.rates.xi == dtype(PARAMS["xi"] / 2)
