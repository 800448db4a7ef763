"""Mini-batch SparseDream against its plain-numpy description, and its guarantees."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from conftest import image_like
from fastsd import SparseDream
from fastsd.kernels.inputs import sparsedream_rates
from fastsd.sparsedream_passes import MiniBatchWork as MiniBatchPass
from conftest import reference_defaults

SD = reference_defaults(SparseDream)

RATES = dict(xi=0.05, sp=0.05, gamma=0.5, beta=0.01, prec=1e-3)


def _state(seed=0, n=16, m=64):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (n, m))
    W[rng.random((n, m)) < 0.1] = 1.5e-3  # some weights near the pruning threshold
    return W, rng.normal(0, 0.1, n), np.zeros((n, n))


@pytest.mark.parametrize("batch_size, prune_every, min_response, saturate",
                         [(10, 25, 0.0, False), (32, 100, 0.0, True), (7, 1, 0.0, False),
                          (10, 25, 0.05, False), (10, 25, 0.05, True),
                          (32, 100, 0.2, True), (1, 7, 0.1, False)])
def test_matches_reference(batch_size, prune_every, min_response, saturate):
    """Same state, data and order as the numpy description: equal to float64 rounding
    (rtol 1e-9, as for the per-sample kernel; observed ~1e-15)."""
    X = image_like(300, 64, seed=1)
    order = np.random.default_rng(2).permutation(300)
    W, t, L = _state()
    ref = [a.copy() for a in (W, t, L)]
    naive.sparsedream_minibatch_pass(X, order, *ref, batch_size=batch_size,
                                     prune_every=prune_every, min_response=min_response,
                                     saturate=saturate, **RATES)
    kernel_rates = sparsedream_rates(RATES, np.float64)
    work = MiniBatchPass(16, 64, batch_size, np.float64, min_response, saturate)
    assert work.run(X, order, 0, 300, W, t, L, kernel_rates, prune_every) == -1
    for got, want in zip((W, t, L), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.sum(W == 0) > 0 and np.abs(L).max() > 0


@pytest.mark.parametrize("beta", [0.01, 0.0])
@pytest.mark.parametrize("min_response", [0.0, 0.05])
def test_matches_reference_from_any_inhibition(beta, min_response):
    """A given ``L`` that is neither symmetric nor zero on the diagonal (the kernel holds
    ``L`` transposed; step 5 clears the diagonal after the first sample, also when
    ``beta = 0``), in a pass split over two calls."""
    X = image_like(200, 64, seed=3)
    order = np.random.default_rng(4).permutation(200)
    W, t, _ = _state(seed=5)
    L = np.random.default_rng(6).normal(0, 0.2, (16, 16))
    np.fill_diagonal(L, 50.0)  # self-inhibition that silences the first responses
    rates = dict(RATES, beta=beta)
    ref = [a.copy() for a in (W, t, L)]
    naive.sparsedream_minibatch_pass(X, order, *ref, batch_size=10, prune_every=25,
                                     min_response=min_response, **rates)
    kernel_rates = sparsedream_rates(rates, np.float64)
    work = MiniBatchPass(16, 64, 10, np.float64, min_response)
    assert work.run(X, order, 0, 110, W, t, L, kernel_rates, 25) == -1
    assert work.run(X, order, 110, 200, W, t, L, kernel_rates, 25) == -1
    for got, want in zip((W, t, L), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.all(np.diag(L) == 0)


@pytest.mark.parametrize("n_features", [8, 40, 100])
def test_matches_reference_any_column_split(n_features):
    """The weight half of a batch runs on two column parts (``column_cuts``): also when
    one part is empty (8 features) or the cut is not in the middle."""
    X = image_like(150, n_features, seed=7)
    order = np.random.default_rng(8).permutation(150)
    W, t, L = _state(seed=9, n=12, m=n_features)
    ref = [a.copy() for a in (W, t, L)]
    naive.sparsedream_minibatch_pass(X, order, *ref, batch_size=16, prune_every=20,
                                     min_response=0.01, **RATES)
    kernel_rates = sparsedream_rates(RATES, np.float64)
    work = MiniBatchPass(12, n_features, 16, np.float64, 0.01)
    assert work.run(X, order, 0, 150, W, t, L, kernel_rates, 20, threads=2) == -1
    for got, want in zip((W, t, L), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_do_not_change_results(dtype):
    """One thread runs the two column parts one after the other, two run them at once:
    the same arithmetic, bit for bit."""
    X = image_like(1000, 200, seed=10).astype(dtype)
    order = np.random.default_rng(11).permutation(1000)
    kernel_rates = sparsedream_rates(RATES, dtype)
    results = []
    for threads in (1, 2):
        W, t, L = (a.astype(dtype) for a in _state(seed=12, n=32, m=200))
        work = MiniBatchPass(32, 200, 50, dtype, 1e-6)
        assert work.run(X, order, 0, 1000, W, t, L, kernel_rates, 100, threads=threads) == -1
        results.append((W, t, L))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    assert not np.array_equal(results[0][0], _state(seed=12, n=32, m=200)[0].astype(dtype))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 20), m=st.integers(1, 70), batch=st.integers(1, 16),
       extra=st.integers(0, 40), floor=st.sampled_from([0.0, 0.01, 0.3]),
       beta=st.sampled_from([0.0, 0.02]), threads=st.sampled_from([1, 2]),
       saturate=st.booleans(), seed=st.integers(0, 2**16))
def test_matches_reference_any_shape(n, m, batch, extra, floor, beta, threads, saturate,
                                     seed):
    """Any numbers of neurons, pixels (column parts of any size, one possibly empty),
    batch size and samples (a last, shorter batch), floor, inhibition and threads."""
    rng = np.random.default_rng(seed)
    n_samples = batch + extra
    X = image_like(n_samples, m, seed=seed)
    order = rng.permutation(n_samples)
    W = rng.uniform(0.1, 1.0, (n, m))
    t = rng.normal(0, 0.1, n)
    L = rng.normal(0, 0.05, (n, n))
    rates = dict(RATES, beta=beta)
    ref = [a.copy() for a in (W, t, L)]
    naive.sparsedream_minibatch_pass(X, order, *ref, batch_size=batch, prune_every=7,
                                     min_response=floor, saturate=saturate, **rates)
    kernel_rates = sparsedream_rates(rates, np.float64)
    work = MiniBatchPass(n, m, batch, np.float64, floor, saturate)
    assert work.run(X, order, 0, n_samples, W, t, L, kernel_rates, 7, threads=threads) == -1
    for got, want in zip((W, t, L), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_min_response_leaves_out_small_responses():
    """The floor changes the result (the weight products really skip responses), and
    responses below it still drive the thresholds: with a floor above every response,
    W only sees pruning while t moves."""
    X = image_like(300, 64, seed=1)
    order = np.random.default_rng(2).permutation(300)
    kernel_rates = sparsedream_rates(RATES, np.float64)
    results = {}
    for floor in (0.0, 0.05, 0.999):
        W, t, L = _state()
        MiniBatchPass(16, 64, 10, np.float64, floor).run(X, order, 0, 300, W, t, L,
                                                         kernel_rates, 25)
        results[floor] = W, t
    assert not np.allclose(results[0.0][0], results[0.05][0])
    W0 = _state()[0]
    np.testing.assert_array_equal(results[0.999][0], np.where(W0 <= 1e-3, 0, W0))
    assert not np.allclose(results[0.999][1], _state()[1])


def test_min_response_errors():
    X = image_like(50, 16)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="min_response"):
            SD(4, batch_size=10, min_response=bad).fit(X)
    with pytest.raises(TypeError, match="min_response"):
        SD(4, batch_size=10, min_response="small").fit(X)
    with pytest.raises(TypeError, match="saturate_excitation"):
        SD(4, batch_size=10, saturate_excitation="yes").fit(X)


def test_matches_reference_many_neurons():
    """N=1600 on 784 pixels, where nearly every ``p`` is (within the floor of) 1: ``L p̃``
    comes from the row sums of ``L`` less a few rows, the drives in several blocks of
    neurons; inhibition and pruning active. Each ``L p̃`` sums ~1600 terms in another
    order than numpy: rtol 1e-9 still leaves a margin of ~1e4 over float64 rounding
    (observed ~1e-13)."""
    n, m, n_samples = 1600, 784, 200
    rng = np.random.default_rng(20)
    X = image_like(n_samples, m, seed=21)
    order = rng.permutation(n_samples)
    W = rng.uniform(0.1, 1.0, (n, m))
    W[rng.random((n, m)) < 0.02] = 1.5e-3  # some weights near the pruning threshold
    t = (X @ W.T).mean() - rng.uniform(-5, 60, n)  # p from ~0 to exactly 1, most ~1
    L = np.zeros((n, n))
    rates = dict(RATES, sp=1 / n, beta=0.005, gamma=0.05)
    ref = [a.copy() for a in (W, t, L)]
    naive.sparsedream_minibatch_pass(X, order, *ref, batch_size=50, prune_every=100,
                                     min_response=1e-6, saturate=True, **rates)
    kernel_rates = sparsedream_rates(rates, np.float64)
    work = MiniBatchPass(n, m, 50, np.float64, 1e-6, True)
    assert work.run(X, order, 0, 50, W, t, L, kernel_rates, 100, threads=2) == -1
    read = work.scratch.n_read.copy()  # ~70% of the p̃ are 1 in the first batch
    assert work.run(X, order, 50, n_samples, W, t, L, kernel_rates, 100, threads=2) == -1
    for got, want in zip((W, t, L), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.abs(L).max() > 0 and np.sum(W == 0) > 0
    assert 0 < read.max() < n // 2  # the row sums were used


def test_symmetric_inhibition_stays_symmetric_in_place():
    """A symmetric ``L`` is updated in place as its own transpose: it must stay exactly
    symmetric (``s_i s_j`` in both entries), else the next call reads it transposed."""
    X = image_like(400, 64, seed=22)
    order = np.random.default_rng(23).permutation(400)
    W, t, L = _state(seed=24, n=40)
    L = np.zeros((40, 40))
    kernel_rates = sparsedream_rates(RATES, np.float64)
    work = MiniBatchPass(40, 64, 20, np.float64, 1e-6, True)
    assert work.run(X, order, 0, 400, W, t, L, kernel_rates, 25) == -1
    assert work.LT is None  # no transposed copy was needed
    assert np.abs(L).max() > 0
    np.testing.assert_array_equal(L, L.T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_into_calls_does_not_change_results(dtype, monkeypatch):
    """The constant part of the inhibition updates is added at the same positions
    however a pass is split into calls (``FLUSH_EVERY``, here 300, and the end of
    ``order``), and the row sums of ``L`` are carried over: bit for bit equal."""
    from fastsd.kernels import minibatch as kernel

    monkeypatch.setattr(kernel, "FLUSH_EVERY", 300)
    kernel.minibatch_pass.recompile()  # the global is frozen at compile time
    try:
        X = image_like(1000, 64, seed=25).astype(dtype)
        order = np.random.default_rng(26).permutation(1000)
        kernel_rates = sparsedream_rates(RATES, dtype)
        results = []
        for cuts in ([0, 1000], [0, 100, 300, 320, 700, 1000], [0, 20, 1000]):
            W, t, L = (a.astype(dtype) for a in _state(seed=27))
            work = MiniBatchPass(16, 64, 20, dtype, 1e-6, True)
            for start, stop in zip(cuts[:-1], cuts[1:]):
                assert work.run(X, order, start, stop, W, t, L, kernel_rates, 100) == -1
            results.append((W, t, L))
        for other in results[1:]:
            for one, two in zip(results[0], other):
                np.testing.assert_array_equal(one, two)
        with pytest.raises(ValueError, match="continue the pass at 20"):
            work = MiniBatchPass(16, 64, 20, dtype, 1e-6, True)
            work.run(X, order, 0, 20, W, t, L, kernel_rates, 100)
            work.run(X, order, 40, 60, W, t, L, kernel_rates, 100)
    finally:
        monkeypatch.undo()
        kernel.minibatch_pass.recompile()


def test_model_chunking_lines_up_with_batches():
    """A pass longer than one chunk gives the same result as one uninterrupted run."""
    X = image_like(9000, 16, seed=3)
    order = np.random.default_rng(4).permutation(9000)
    model = SD(8, **RATES, batch_size=64)
    W, t, L = _state(5, 8, 16)
    model.weights_, model.thresholds_, model.inhibition_ = W.copy(), t.copy(), L.copy()
    model.partial_fit(X, order=order)
    kernel_rates = sparsedream_rates(RATES, np.float64)
    MiniBatchPass(8, 16, 64, np.float64, model.min_response).run(
        X, order, 0, 9000, W, t, L, kernel_rates, 100)
    assert np.array_equal(model.weights_, W) and np.array_equal(model.thresholds_, t)


def test_annealed_fit_does_not_depend_on_the_thread_probe(monkeypatch):
    """The first mini-batch pass times a few batches with two threads and with one
    (calls of other lengths); a pass right after reuses the choice without timing. The
    annealed rate is set per chunk, not per call, so both give the same result."""
    from fastsd import passes
    from fastsd._threads import ThreadChooser

    monkeypatch.setattr(passes, "_CHOOSER", ThreadChooser())
    X = image_like(5000, 32, seed=13)
    fits = [SD(8, **RATES, batch_size=20, anneal=True, random_state=3).fit(X)
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].weights_, fits[1].weights_)
    np.testing.assert_array_equal(fits[0].thresholds_, fits[1].thresholds_)


def test_keeps_weights_where_plain_sum_collapses():
    """The notebook's rates with summed updates ``1 + x`` push whole neurons below
    zero in the first batches (all neurons fire before thresholds adapt); the
    positivity-preserving update keeps them alive."""
    X = image_like(2000, 64, seed=6, density=0.5)
    model = SD(16, xi=0.02, sp=0.01, gamma=1.0, beta=0.005, batch_size=100,
               random_state=0).fit(X)
    assert np.all(model.weights_.any(axis=1))


def test_batch_size_errors():
    X = image_like(50, 16)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SD(4, batch_size=0).fit(X)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        SD(4, batch_size=2.5).fit(X)
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 50 samples"):
        SD(4, batch_size=64).fit(X)


def test_float32_minibatch():
    X = image_like(400, 64, seed=7)
    a = SD(16, **RATES, batch_size=20, dtype="float32", random_state=1).fit(X)
    b = SD(16, **RATES, batch_size=20, random_state=1).fit(X)
    assert a.weights_.dtype == np.float32
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-3, atol=1e-4)


def test_real_mnist_accuracy_close_to_exact(mnist):
    """One 20k-sample epoch: mini-batch (B=50) within 3 pp of the exact rule (one seed;
    the 3-seed comparison on full epochs is in tools/minibatch_accuracy.py)."""
    from fastsd.evaluate import cosine_wta

    X = mnist.x_train[:20000]
    accs = {}
    for batch in (1, 50):
        model = SD(100, batch_size=batch, dtype="float32", random_state=0).fit(X)
        accs[batch] = cosine_wta(model.weights_, mnist.x_train, mnist.y_train,
                                 mnist.x_test, mnist.y_test).accuracy
    assert accs[50] > 0.75 and accs[50] > accs[1] - 0.03, accs


def test_thread_choice_falls_back_to_one_thread_when_slower():
    """``ThreadChooser.keep``: after the probe chose two threads, a chunk that took
    longer per sample than one thread did in the probe switches the pass, and the
    recorded choice, to one thread; a chunk as fast as the probe keeps two."""
    import time

    from fastsd._threads import ThreadChooser

    def run(start, stop, threads):
        time.sleep(0.001 if threads > 1 else 0.02)  # two threads look 20x faster

    chooser = ThreadChooser()
    threads, position = chooser.start(("k",), run, 10_000, 10, 2)
    assert (threads, position) == (2, 160)
    assert chooser.keep(("k",), 2, 2, seconds=0.001, n_samples=80) == 2
    assert chooser.start(("k",), run, 10_000, 10, 2) == (2, 0)  # recent choice, no probe
    assert chooser.keep(("k",), 2, 2, seconds=1.0, n_samples=80) == 1
    assert chooser.start(("k",), run, 10_000, 10, 2) == (1, 0)
    assert chooser.keep(("k",), 2, 1, seconds=1.0, n_samples=80) == 1


@pytest.mark.parametrize("multi_faster", [True, False])
def test_thread_choice_by_whole_chunks(multi_faster):
    """``ThreadChooser.run_probing_chunks``: chunk 1 on two threads, chunk 2 on one,
    chunk 3 on two, then the faster setting for the rest; a short pass reuses the recent
    choice (else one thread). The first chunk, slow on any setting (a fresh model's
    start), must not decide."""
    import time

    from fastsd._threads import ThreadChooser

    calls, started = [], []

    def run(start, stop, threads):
        # sleeps of 10-40 ms: a loaded machine's scheduling delays (a few ms) must
        # not make two threads look slower than one
        per_sample = {2: 1e-4 if multi_faster else 1e-3, 1: 4e-4}[threads]
        if not started:
            per_sample *= 20  # the slow start of a fresh model
            started.append(True)
        calls.append((start, stop, threads))
        time.sleep(per_sample * (stop - start))

    chooser = ThreadChooser()
    chooser.run_probing_chunks(("k",), run, 1000, 100, 2)
    assert [c[2] for c in calls[:3]] == [2, 1, 2]
    assert [(c[0], c[1]) for c in calls] == [(k, k + 100) for k in range(0, 1000, 100)]
    rest = {c[2] for c in calls[3:]}
    assert rest == ({2} if multi_faster else {1})
    calls.clear()
    chooser.run_probing_chunks(("k",), run, 250, 100, 2)  # short: the recent choice
    assert {c[2] for c in calls} == ({2} if multi_faster else {1})
    calls.clear()
    ThreadChooser().run_probing_chunks(("k",), run, 250, 100, 2)  # short, no choice
    assert {c[2] for c in calls} == {1}
    calls.clear()
    ThreadChooser().run_probing_chunks(("k",), run, 1000, 100, 1)  # one thread allowed
    assert {c[2] for c in calls} == {1}
