"""Krotov & Hopfield: the compiled pass against the plain-numpy reference
(``tests/naive_kh.py``), the estimator's protocol, persistence and input checks, and a
real-MNIST comparison with the notebook-style baseline of ``bench/krotov_notebook.py``.

Tolerance (float64): the kernel sums each drive over the non-zero pixels only, in its own
order, with fused multiply-adds, and applies ``(eps / nc) * ds`` instead of
``eps * ds / nc``; each of these is a few ulps per batch. Weights are O(1) and move by at
most ``eps`` per batch, so after the ~10 batches compared here the rounding differences
stay around 1e-15 (observed ≤ 5e-16). We allow ``atol = 1e-10`` — five orders above that
— while a mistake in the rule moves at least one weight by O(eps) = 1e-2 per batch
(``max|Δw| = eps`` exactly, by the normalisation); ``test_tolerance_catches_mistakes``
checks that plausible wrong variants miss by more than 1e-4.

float32 is compared with the float64 reference at ``atol = 1e-4``: float32 rounding
(6e-8 relative) of the drives and updates, over ~10 batches of O(1) weights, stays
around 1e-6.

Ranking ties go to the lower unit index (``np.argsort(-I, kind="stable")``); the tie
tests use small integers, so that the drives are computed exactly in any order and the
ties are real in both implementations.
"""
from __future__ import annotations

import os
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive_kh
from conftest import image_like
import fastsd
from fastsd.kernels import krotov as kernel
from fastsd.kernels.inputs import krotov_rates, krotov_workspace
from fastsd import passes
from fastsd.krotov import KrotovHopfield
from fastsd import SparseDream, TrainingDiverged

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
from krotov_notebook import notebook_krotov  # noqa: E402
from conftest import reference_defaults

KH = reference_defaults(KrotovHopfield)

N, M, N_SAMPLES, BATCH = 24, 64, 530, 50   # 10 full batches and one of 30
ATOL64, ATOL32 = 1e-10, 1e-4
RULES = [
    dict(p=2.0, k=2, delta=0.4),
    dict(p=3.0, k=3, delta=0.4),
    dict(p=1.0, k=2, delta=0.0),
    dict(p=2.5, k=5, delta=0.3),
    dict(p=4.0, k=N, delta=1.0),
]


@pytest.fixture
def one_thread():
    """Run the test body with one Numba thread (the MNIST test: predictable time on a
    shared machine), restoring the previous setting."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.fixture(scope="module")
def case():
    X = image_like(400, M, seed=3)
    rng = np.random.default_rng(4)
    order = rng.integers(0, 400, N_SAMPLES)  # with repeats
    W0 = rng.normal(0.0, 1.0, (N, M))
    return X, order, W0


def run_kernel(X, order, W0, *, eps=0.02, batch_size=BATCH, dtype=np.float64,
               n_unit_blocks=None, chunks=(None,), prec=1e-30, **rule):
    W, ST = kernel.pass_state(np.asarray(W0, dtype=dtype), rule["p"])
    ws = krotov_workspace(batch_size, W.shape[0], W.shape[1], rule["k"], dtype,
                          n_unit_blocks)
    rates = krotov_rates(batch_size, rule["p"], rule["k"], rule["delta"], eps, prec, dtype)
    order = np.asarray(order, dtype=np.int64)
    bounds = [0, *[c for c in chunks if c is not None], order.size]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        done = kernel.krotov_pass(np.asarray(X, dtype), order, start, stop, W, ST, rates, ws)
        assert done == -(-(stop - start) // batch_size)
        # ST follows W; the scratch is handed back clean
        np.testing.assert_array_equal(ST, kernel.pass_state(W, rule["p"])[1])
    assert not ws.G.any() and (ws.slot == -1).all()
    return W


def run_reference(X, order, W0, *, eps=0.02, batch_size=BATCH, **rule):
    return naive_kh.kh_pass(W0, X, order, batch_size=batch_size, eps=eps, **rule)


# -- the kernel against the reference ---------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=lambda r: "p{p}-k{k}-d{delta}".format(**r))
def test_float64_matches_reference(case, rule):
    X, order, W0 = case
    W = run_kernel(X, order, W0, **rule)
    W_ref = run_reference(X, order, W0, **rule)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=ATOL64)
    assert np.abs(W_ref - W0).max() > 0.05  # the weights did move


@pytest.mark.parametrize("rule", RULES[:2], ids=["p2", "p3"])
def test_float32_matches_reference(case, rule):
    X, order, W0 = case
    W = run_kernel(X, order, W0, dtype=np.float32, **rule)
    assert W.dtype == np.float32
    np.testing.assert_allclose(W, run_reference(X, order, W0, **rule), rtol=0, atol=ATOL32)


def test_batch_of_one_and_large_rate(case):
    X, order, W0 = case
    rule = dict(p=2.0, k=2, delta=0.4)
    W = run_kernel(X, order[:40], W0, batch_size=1, eps=0.3, **rule)
    W_ref = run_reference(X, order[:40], W0, batch_size=1, eps=0.3, **rule)
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=ATOL64)


def test_chunks_blocks_and_threads_give_identical_results(case):
    """Splitting the pass into calls, the units into blocks, or the work over
    threads changes no bit of the result."""
    X, order, W0 = case
    rule = dict(p=3.0, k=2, delta=0.4)
    ref = run_kernel(X, order, W0, n_unit_blocks=1, **rule)
    np.testing.assert_array_equal(run_kernel(X, order, W0, n_unit_blocks=5, **rule), ref)
    np.testing.assert_array_equal(
        run_kernel(X, order, W0, chunks=(BATCH, 4 * BATCH), n_unit_blocks=2, **rule), ref)
    before = numba.get_num_threads()
    try:
        for threads in {1, numba.config.NUMBA_NUM_THREADS}:
            numba.set_num_threads(threads)
            np.testing.assert_array_equal(run_kernel(X, order, W0, n_unit_blocks=None, **rule),
                                          ref)
    finally:
        numba.set_num_threads(before)


def test_fit_same_with_any_thread_setting():
    """The estimator times one and all threads at the start of a long pass and keeps
    the faster (``fastsd._threads.ThreadChooser``): the choice must not change the result."""
    X = image_like(400, M, seed=12)
    kw = dict(batch_size=10, random_state=2)    # 40 batches: probed
    before = numba.get_num_threads()
    passes._CHOOSER._choices.clear()
    try:
        numba.set_num_threads(1)
        one = KH(N, **kw).fit(X, epochs=2)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = KH(N, **kw).fit(X, epochs=2)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.weights_, many.weights_)
    if numba.config.NUMBA_NUM_THREADS > 1:  # the probe ran and its choice is remembered
        (key, (threads, *_)), = passes._CHOOSER._choices.items()
        assert key == (numba.config.NUMBA_NUM_THREADS, "KrotovHopfield", N, M, 10,
                       "float64")
        assert threads in (1, numba.config.NUMBA_NUM_THREADS)


def wrong_variants():
    """Plausible mistakes, each as a replacement for ``naive_kh.kh_batch``."""
    def variant(*, k_off=0, sign=1.0, no_norm=False, no_decay=False):
        def step(W, Xb, *, eps, p=2.0, k=2, delta=0.4, prec=1e-30):
            S = np.sign(W) * np.abs(W) ** (p - 1)
            I = S @ Xb.T
            ranked = naive_kh.ranks(I)
            g = np.zeros_like(I)
            cols = np.arange(Xb.shape[0])
            g[ranked[0], cols] = 1.0
            g[ranked[k - 1 + k_off], cols] = -sign * delta
            xx = 0 if no_decay else np.sum(g * I, axis=1)[:, None]
            ds = g @ Xb - xx * W
            W += eps * ds / (1.0 if no_norm else max(np.abs(ds).max(), prec))
            return W
        return step
    return {"rank k+1 instead of k": variant(k_off=1),
            "anti-Hebbian sign flipped": variant(sign=-1.0),
            "no max normalisation": variant(no_norm=True),
            "no xx decay term": variant(no_decay=True)}


@pytest.mark.parametrize("name", list(wrong_variants()))
def test_tolerance_catches_mistakes(case, name):
    X, order, W0 = case
    step = wrong_variants()[name]
    W = np.array(W0)
    for s in range(0, order.size, BATCH):
        step(W, X[order[s:s + BATCH]], eps=0.02)
    W_kernel = run_kernel(X, order, W0, p=2.0, k=2, delta=0.4)
    assert np.abs(W - W_kernel).max() > 1e-4


# -- ranking and ties -------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=2, max_size=40), st.integers(2, 40))
def test_top_and_kth_is_a_stable_descending_sort(values, k):
    row = np.array(values, dtype=np.float64)
    k = min(k, row.size)
    ranked = np.argsort(-row, kind="stable")
    got = kernel.top_and_kth(row, k, np.empty(k), np.empty(k, np.int64))
    assert got == (ranked[0], ranked[k - 1])


@pytest.mark.parametrize("k", [2, 3])
def test_ties_broken_like_the_reference(k):
    """Integer weights and binary pixels: drives are exact small integers, full of ties
    (checked), and the kernel picks the same units as a stable sort of ``-I``."""
    rng = np.random.default_rng(7)
    W0 = rng.integers(-2, 3, (10, 6)).astype(np.float64)
    W0[4] = W0[1]
    X = (rng.random((30, 6)) < 0.5).astype(np.float64)
    X[X.sum(axis=1) == 0, 0] = 1.0
    I = W0 @ X.T
    ranked = naive_kh.ranks(I)
    top_ties = np.sum(I[ranked[0], np.arange(30)] == I[ranked[1], np.arange(30)])
    kth_ties = np.sum(I[ranked[k - 1], np.arange(30)] == I[ranked[k], np.arange(30)])
    assert top_ties >= 5 and kth_ties >= 5
    rule = dict(p=2.0, k=k, delta=0.4)
    order = np.arange(30)
    W = run_kernel(X, order, W0, batch_size=30, **rule)
    np.testing.assert_allclose(W, run_reference(X, order, W0, batch_size=30, **rule),
                               rtol=0, atol=1e-12)
    # breaking ties towards the higher index (a reversed stable sort) gives other weights
    W_hi = W0.copy()
    rev = np.argsort(I, axis=0, kind="stable")[::-1]
    g = np.zeros_like(I)
    g[rev[0], order] = 1.0
    g[rev[k - 1], order] = -0.4
    ds = g @ X - np.sum(g * I, axis=1)[:, None] * W0
    W_hi += 0.02 * ds / np.abs(ds).max()
    assert np.abs(W_hi - W).max() > 1e-3


# -- the estimator ----------------------------------------------------------------------
def test_fit_is_reproducible_and_follows_the_notebook_protocol():
    """Same seed, same weights; and ``fit`` equals the notebook-style loop fed from the
    same generator (W = normal(0, 1) first, then one permutation per epoch), annealing
    included."""
    X = image_like(300, M, seed=5)
    kw = dict(eps0=0.05, delta=0.3, p=3.0, k=3, batch_size=30)
    a = KH(12, random_state=11, **kw).fit(X, epochs=3)
    b = KH(12, random_state=11, **kw).fit(X, epochs=3)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.samples_seen_ == 900
    c = KH(12, random_state=12, **kw).fit(X, epochs=3)
    assert not np.allclose(a.weights_, c.weights_)
    rng = np.random.default_rng(11)
    W_nb = notebook_krotov(X, rng.normal(0.0, 1.0, (12, M)), rng, Nep=3, eps0=0.05,
                           delta=0.3, p=3.0, k=3, Num=30)
    np.testing.assert_allclose(a.weights_, W_nb, rtol=0, atol=ATOL64)


def test_fit_samples_per_epoch_and_float32():
    X = image_like(200, M, seed=6)
    m = KH(8, batch_size=16, dtype="float32", random_state=0)
    m.fit(X, epochs=2, samples_per_epoch=50)  # batches of 16, 16, 16, 2
    assert m.weights_.dtype == np.float32 and m.samples_seen_ == 100
    rng = np.random.default_rng(0)
    W = rng.normal(0.0, 1.0, (8, M))
    for epoch in range(2):
        order = rng.permutation(200)[:50]
        W = run_reference(X, order, W, eps=0.02 * (1 - epoch / 2), batch_size=16,
                          p=2.0, k=2, delta=0.4)
    np.testing.assert_allclose(m.weights_, W, rtol=0, atol=ATOL32)


def test_partial_fit_semantics(case):
    X, order, _ = case
    m = KH(N, eps0=0.03, batch_size=BATCH, random_state=3)
    m.partial_fit(X, order=order)           # fresh: W from normal(0, 1) of the seed
    W0 = np.random.default_rng(3).normal(0.0, 1.0, (N, M))
    W1 = run_reference(X, order, W0, eps=0.03, p=2.0, k=2, delta=0.4)  # default eps0
    np.testing.assert_allclose(m.weights_, W1, rtol=0, atol=ATOL64)
    assert m.samples_seen_ == order.size
    m.partial_fit(X, order=order[:100], eps=0.005)   # continues, at the given rate
    W2 = run_reference(X, order[:100], W1, eps=0.005, p=2.0, k=2, delta=0.4)
    np.testing.assert_allclose(m.weights_, W2, rtol=0, atol=ATOL64)
    assert m.samples_seen_ == order.size + 100
    m.partial_fit(X)                              # a random permutation of all rows
    assert m.samples_seen_ == order.size + 100 + X.shape[0]
    # fit after partial_fit starts afresh from random_state
    fresh = KH(N, eps0=0.03, batch_size=BATCH, random_state=3).fit(X)
    np.testing.assert_array_equal(m.fit(X).weights_, fresh.weights_)
    assert m.samples_seen_ == X.shape[0]


def test_partial_fit_from_assigned_weights_and_divergence():
    X = image_like(100, M, seed=8)
    m = KH(6, batch_size=10, dtype="float32")
    m.weights_ = np.ones((6, M))  # assigned by the user: converted to the dtype
    m.partial_fit(X, order=np.arange(100))
    assert m.weights_.dtype == np.float32
    before = m.weights_.copy()
    with pytest.raises(TrainingDiverged, match="NaN or infinite"):
        m.partial_fit(X, order=np.arange(100), eps=1e30)
    np.testing.assert_array_equal(m.weights_, before)  # nothing committed


@pytest.mark.parametrize("p", [2.0, 3.0, 1.5])
def test_transform_is_the_hidden_drive(p):
    X = image_like(50, M, seed=9)
    m = KH(7, p=p, batch_size=10, feature_norm=None, random_state=1).fit(X)
    W = m.weights_
    expected = X @ (np.sign(W) * np.abs(W) ** (p - 1)).T
    out = m.transform(X)
    assert out.shape == (50, 7)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.fit_transform(X), expected, rtol=1e-12, atol=1e-12)


def test_save_load_roundtrip(tmp_path):
    X = image_like(120, M, seed=10)
    m = KH(9, eps0=0.04, delta=0.2, p=3.0, k=4, batch_size=20, dtype="float32",
           random_state=5).fit(X, epochs=2)
    path = tmp_path / "kh.npz"
    m.save(path)
    for loaded in (KrotovHopfield.load(path), fastsd.load(path)):
        assert type(loaded) is KrotovHopfield
        assert loaded.get_params() == m.get_params()
        np.testing.assert_array_equal(loaded.weights_, m.weights_)
        assert loaded.weights_.dtype == np.float32
        assert loaded.samples_seen_ == m.samples_seen_ == 240
        np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    with pytest.raises(ValueError, match="holds a KrotovHopfield, not a SparseDream"):
        SparseDream.load(path)
    unfitted = tmp_path / "unfitted.npz"
    KH(3).save(unfitted)
    assert not KrotovHopfield.load(unfitted)._has_state()


# -- input checks -----------------------------------------------------------------------
@pytest.mark.parametrize("params, error, match", [
    (dict(k=1), ValueError, "k must be >= 2"),
    (dict(n_neurons=3, k=4), ValueError, r"k must be <= n_neurons .* got k=4"),
    (dict(k=2.0), TypeError, "k must be an integer"),
    (dict(n_neurons=0), ValueError, "n_neurons must be >= 1"),
    (dict(delta=-0.1), ValueError, "delta must be >= 0"),
    (dict(p=0.5), ValueError, "p must be >= 1"),
    (dict(p=float("nan")), ValueError, "p must be finite"),
    (dict(eps0=0.0), ValueError, "eps0 must be > 0"),
    (dict(eps0=-1), ValueError, "eps0 must be > 0"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(prec=0.0), ValueError, "prec must be > 0"),
    (dict(dtype="int32"), ValueError, "dtype must be 'float32' or 'float64'"),
    (dict(dtype="float32", prec=1e-60), ValueError, "prec=1e-60 is out of range for float32"),
    (dict(random_state=-1), ValueError, "random_state must be non-negative"),
])
def test_bad_params(params, error, match):
    X = image_like(20, M)
    with pytest.raises(error, match=match):
        KH(**{"n_neurons": 5, "batch_size": 10, **params}).fit(X)


def test_bad_inputs():
    X = image_like(20, M)
    m = KH(5, batch_size=10)
    with pytest.raises(fastsd.NotFittedError, match="no learned state"):
        m.transform(X)
    with pytest.raises(ValueError, match="batch_size=10 is larger than the 8 samples per"):
        m.fit(X[:8])
    with pytest.raises(ValueError, match="batch_size=10 is larger than the 5 samples in"):
        m.partial_fit(X, order=np.arange(5))
    with pytest.raises(ValueError, match="samples_per_epoch must be <= 20"):
        m.fit(X, samples_per_epoch=21)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        m.fit(X, epochs=0)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\), first at index \(3, 5"):
        m.fit(bad)
    with pytest.raises(ValueError, match="must be 2-D"):
        m.fit(X[0])
    with pytest.raises(ValueError, match=r"pixel intensities must be in \[0, 1\]"):
        m.fit(X * 255)
    m.fit(X)
    with pytest.raises(ValueError, match=f"has 10 features, but KrotovHopfield is expecting {M} features"):
        m.partial_fit(X[:, :10])
    with pytest.raises(ValueError, match=f"has 10 features, but KrotovHopfield is expecting {M} features"):
        m.transform(X[:, :10])
    with pytest.raises(ValueError, match="eps must be > 0"):
        m.partial_fit(X, eps=0.0)
    with pytest.raises(ValueError, match="order has indices outside"):
        m.partial_fit(X, order=np.arange(15, 25))
    m.weights_ = np.full((5, M), np.inf)
    with pytest.raises(ValueError, match="weights_ contains NaN or infinite"):
        m.partial_fit(X)
    m.weights_ = np.ones((4, M))
    with pytest.raises(ValueError, match="weights_ has shape"):
        m.transform(X)


# -- real MNIST -------------------------------------------------------------------------
MNIST_EPOCHS, MNIST_SEED = 2, 0
MNIST_RULE = dict(eps0=0.1, delta=0.4, p=2.0, k=2)   # ~87% after 2 epochs


@pytest.fixture
def one_blas_thread():
    """The notebook-style baseline with one BLAS thread (the fastest setting on a busy
    two-core machine), if threadpoolctl is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def test_mnist_matches_notebook_accuracy(mnist, one_thread, one_blas_thread):
    from fastsd.evaluate import cosine_wta

    X = mnist.x_train
    model = KH(100, random_state=MNIST_SEED, **MNIST_RULE)
    model.fit(X, epochs=MNIST_EPOCHS)
    ours = cosine_wta(model.weights_, X, mnist.y_train, mnist.x_test, mnist.y_test)

    rng = np.random.default_rng(MNIST_SEED)
    W_nb = notebook_krotov(X.astype(np.float64), rng.normal(0.0, 1.0, (100, X.shape[1])),
                           rng, Nep=MNIST_EPOCHS, eps0=MNIST_RULE["eps0"],
                           delta=MNIST_RULE["delta"], p=MNIST_RULE["p"], k=MNIST_RULE["k"],
                           Num=100)
    theirs = cosine_wta(W_nb, X, mnist.y_train, mnist.x_test, mnist.y_test)
    assert ours.accuracy > 0.6, ours          # chance is 10%
    assert abs(ours.accuracy - theirs.accuracy) <= 0.005, (ours, theirs)
