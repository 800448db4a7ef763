"""SoftHebb: the compiled pass against the numpy reference, chunking, wrong rules that
must fail, and (below) the estimator."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import image_like
from fastsd.kernels import softhebb as kernel
from fastsd.kernels.softhebb import softhebb_rates, softhebb_scratch
from naive_softhebb import sh_pass, softmax

N, M, N_SAMPLES = 12, 64, 300
BETA, ETA = 4.0, 0.05
#: float64: the kernel evaluates the same formulas as the reference, rounded differently
#: (vectorised dots, ``(w - s w) + a x`` for ``w + a (x - u w)``): ~1e-16 per operation,
#: a few times 64 terms per dot, and the rule contracts ``|w_k|`` toward 1 (Oja's term),
#: so differences stay near 1e-14 after 300 samples (measured 4e-15). 1e-10 leaves a
#: margin of 1e4 and is still 1e7 below what any of the wrong rules below changes.
RTOL64, ATOL64 = 1e-10, 1e-12
#: float32 against the float64 reference: ~6e-8 per operation, same argument (measured
#: 2e-6 relative).
RTOL32, ATOL32 = 1e-4, 1e-5


def setup(seed=0, n=N_SAMPLES, m=M, n_neurons=N):
    rng = np.random.default_rng(seed)
    X = image_like(n, m, seed=seed + 1)
    order = rng.permutation(n)
    W = rng.random((n_neurons, m)) * np.sqrt(3 / m)
    b = np.full(n_neurons, -np.log(n_neurons) / BETA)
    return X, order, W, b


def run_kernel(X, order, W, b, *, batch=1, dtype=np.float64, beta=BETA, eta=ETA,
               eta_b=None, done=0.0, total=0.0, splits=()):
    """The compiled pass over all of ``order``, one call per piece between ``splits``."""
    W = np.array(W, dtype=dtype)
    b = np.array(b, dtype=dtype)
    X = np.ascontiguousarray(X, dtype=dtype)
    scratch = softhebb_scratch(batch, W.shape[0], dtype)
    rates = softhebb_rates(batch, beta, eta, eta if eta_b is None else eta_b, done, total)
    bounds = [0, *splits, len(order)]
    for s, e in zip(bounds[:-1], bounds[1:]):
        bad = kernel.softhebb_pass(X, order, s, e, W, b, rates, scratch)
        if bad >= 0:
            return W, b, bad
    return W, b, -1


# -- the kernel against the reference -------------------------------------------------
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_matches_reference(batch, dtype):
    X, order, W0, b0 = setup()
    W, b, bad = run_kernel(X, order, W0, b0, batch=batch, dtype=dtype)
    assert bad == -1
    Wr, br = sh_pass(W0, b0, X, order, batch_size=batch, eta=ETA, beta=BETA)
    assert np.abs(Wr - W0).max() > 0.05  # the data moved the weights substantially
    rtol, atol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    np.testing.assert_allclose(W, Wr, rtol=rtol, atol=atol)
    np.testing.assert_allclose(b, br, rtol=rtol, atol=atol)


def test_kernel_anneal_and_bias_rate_match_reference():
    """Linear anneal over a fit of ``total`` samples starting ``done`` samples in, and a
    bias rate different from the weight rate."""
    X, order, W0, b0 = setup(seed=3)
    done, total = 200.0, 1000.0
    W, b, _ = run_kernel(X, order, W0, b0, batch=5, eta_b=0.2, done=done, total=total)
    Wr, br = sh_pass(W0, b0, X, order, batch_size=5, eta=ETA, eta_b=0.2, beta=BETA,
                     rates=lambda k: 1 - (done + k) / total)
    np.testing.assert_allclose(W, Wr, rtol=RTOL64, atol=ATOL64)
    np.testing.assert_allclose(b, br, rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize("batch, splits", [(1, (1, 2, 57, 299)), (7, (7, 140, 294)),
                                           (7, (21,))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_pass_is_bit_identical(batch, splits, dtype):
    X, order, W0, b0 = setup(seed=5)
    whole = run_kernel(X, order, W0, b0, batch=batch, dtype=dtype, total=900.0)
    parts = run_kernel(X, order, W0, b0, batch=batch, dtype=dtype, total=900.0,
                       splits=splits)
    assert whole[2] == parts[2] == -1
    np.testing.assert_array_equal(whole[0], parts[0])
    np.testing.assert_array_equal(whole[1], parts[1])


# -- plausible wrong rules must fail the comparison --------------------------------------
def wrong_pass(W, b, X, order, *, variant, batch=1):
    W, b = np.array(W, dtype=float), np.array(b, dtype=float)
    for s in range(0, len(order), batch):
        dW, db = np.zeros_like(W), np.zeros_like(b)
        for x in X[order[s:s + batch]]:
            u = W @ x + b
            y = softmax((1.0 if variant == "no_beta" else BETA) * u)
            uw = W @ x if variant == "u_without_bias" else u
            if variant == "x_minus_w":
                dW += y[:, None] * (x[None, :] - W)
            else:
                dW += y[:, None] * (x[None, :] - uw[:, None] * W)
            db += np.exp(-BETA * b) * (y - np.exp(BETA * b))
        scale = 1 if variant == "sum_not_mean" else batch
        W += ETA * dW / scale
        if variant == "bias_beta_rate":
            b += ETA * db / scale  # missing the 1/beta of the log-prior scaling
        elif variant != "no_bias_update":
            b += ETA / BETA * db / scale
    return W, b


@pytest.mark.parametrize("variant, batch", [
    ("no_bias_update", 1), ("x_minus_w", 1), ("no_beta", 1), ("u_without_bias", 1),
    ("bias_beta_rate", 1), ("sum_not_mean", 7)])
def test_wrong_rules_fail(variant, batch):
    X, order, W0, b0 = setup()
    W, b, _ = run_kernel(X, order, W0, b0, batch=batch)
    # the checker itself is right when the variant is the true rule
    Wr, br = sh_pass(W0, b0, X, order, batch_size=batch, eta=ETA, beta=BETA)
    np.testing.assert_allclose(W, Wr, rtol=RTOL64, atol=ATOL64)
    Ww, bw = wrong_pass(W0, b0, X, order, variant=variant, batch=batch)
    assert np.all(np.isfinite(Ww)) and np.all(np.isfinite(bw))
    assert not (np.allclose(W, Ww, rtol=1e3 * RTOL32, atol=1e3 * ATOL32)
                and np.allclose(b, bw, rtol=1e3 * RTOL32, atol=1e3 * ATOL32))


# -- divergence, response ---------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 4])
def test_divergence_reports_first_bad_batch(batch):
    X, order, W0, b0 = setup()
    W0 = W0 * 50  # large drives: eta * u^2 >> 1, the Oja term overshoots
    _, _, bad = run_kernel(X, order, W0, b0, batch=batch, eta=2.0)
    assert bad >= 0 and bad % batch == 0
    W, b, ok = run_kernel(X, order[:bad], W0, b0, batch=batch, eta=2.0)
    assert ok == -1 and np.all(np.isfinite(W)) and np.all(np.isfinite(b))
    W, b, again = run_kernel(X, order[:bad + batch], W0, b0, batch=batch, eta=2.0)
    assert again == bad
    assert not (np.all(np.isfinite(W)) and np.all(np.isfinite(b)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_rows(dtype):
    rng = np.random.default_rng(2)
    U = (rng.normal(size=(50, 9)) * 30).astype(dtype)
    want = np.stack([softmax(BETA * u.astype(float)) for u in U])
    got = kernel.softmax_rows(U.copy(), BETA)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=tol)


# -- the estimator ------------------------------------------------------------------------
from fastsd.softhebb import SoftHebb  # noqa: E402


def clusters(n_per=150, m=32, k=4, seed=0):
    """``k`` well-separated non-negative clusters (disjoint blocks of bright pixels)."""
    rng = np.random.default_rng(seed)
    means = np.zeros((k, m))
    for c in range(k):
        means[c, c * (m // k):(c + 1) * (m // k)] = 0.8
    labels = np.repeat(np.arange(k), n_per)
    X = np.clip(means[labels] + rng.normal(0, 0.05, (k * n_per, m)), 0, 1)
    return X, labels, means


@pytest.mark.parametrize("bad, match", [
    (dict(n_neurons=0), "n_neurons"), (dict(inverse_temperature=0), "inverse_temperature"),
    (dict(learning_rate=-1), "learning_rate"), (dict(bias_learning_rate=-1e-3),
                                                "bias_learning_rate"),
    (dict(init_radius=0), "init_radius"), (dict(batch_size=0), "batch_size"),
    (dict(dtype="int8"), "dtype"), (dict(anneal="yes"), "anneal")])
def test_bad_parameters_name_the_parameter(bad, match):
    X, _, _ = clusters(n_per=10)
    with pytest.raises((ValueError, TypeError), match=match):
        SoftHebb(4, **bad).fit(X)


def test_input_errors():
    X, _, _ = clusters(n_per=10)
    model = SoftHebb(4, random_state=0).fit(X)
    with pytest.raises(ValueError):
        model.transform(X[:, :5])  # wrong number of features
    with pytest.raises(ValueError):
        SoftHebb(4).fit(np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="batch_size"):
        SoftHebb(4, batch_size=100).fit(X)
    with pytest.raises(Exception, match="fit"):
        SoftHebb(4).transform(X)


def test_fit_transform_save_load_round_trip(tmp_path):
    X, _, _ = clusters()
    model = SoftHebb(6, random_state=1, dtype="float64", batch_size=3,
                     features="response", feature_norm=None).fit(X, epochs=2)
    assert model.weights_.shape == (6, X.shape[1]) and model.biases_.shape == (6,)
    assert model.samples_seen_ == 2 * len(X)
    Y = model.transform(X)
    assert Y.shape == (len(X), 6) and Y.dtype == np.float64
    np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-12)
    u = X @ model.weights_.T + model.biases_
    np.testing.assert_allclose(Y, np.stack([softmax(12.0 * r) for r in u]), rtol=1e-9,
                               atol=1e-300)
    np.testing.assert_array_equal(model._winners(
        {"weights_": model.weights_, "biases_": model.biases_}, X), u.argmax(axis=1))
    model.save(tmp_path / "m.npz")
    again = SoftHebb.load(tmp_path / "m.npz")
    assert again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.weights_, model.weights_)
    np.testing.assert_array_equal(again.biases_, model.biases_)
    np.testing.assert_array_equal(again.transform(X), Y)
    # same seed, same result; partial_fit continues from the state
    np.testing.assert_array_equal(
        SoftHebb(6, random_state=1, dtype="float64", batch_size=3).fit(X, epochs=2).weights_,
        model.weights_)
    before = model.weights_.copy()
    model.partial_fit(X[:30], order=np.arange(30))
    assert model.samples_seen_ == 2 * len(X) + 30 and not np.array_equal(before,
                                                                         model.weights_)


def test_fit_matches_reference_with_anneal():
    """fit = the reference on the same initial state and sample orders (the rates
    annealed over the whole fit of two epochs)."""
    X, _, _ = clusters(n_per=40)
    kw = dict(learning_rate=0.01, bias_learning_rate=0.002, anneal=True, batch_size=4,
              dtype="float64", random_state=3)
    model = SoftHebb(5, **kw).fit(X, epochs=2)
    rng = np.random.default_rng(3)
    ref = SoftHebb(5, **kw)
    ref._init_state(X.shape[1], rng, np.float64)
    W, b = ref.weights_, ref.biases_
    total = 2 * len(X)
    for e in range(2):
        order = rng.permutation(len(X))
        W, b = sh_pass(W, b, X, order, batch_size=4, eta=0.01, eta_b=0.002, beta=12.0,
                       rates=lambda k, e=e: 1 - (e * len(X) + k) / total)
    np.testing.assert_allclose(model.weights_, W, rtol=RTOL64, atol=ATOL64)
    np.testing.assert_allclose(model.biases_, b, rtol=RTOL64, atol=ATOL64)


def test_divergence_keeps_the_previous_state():
    X, _, _ = clusters()
    model = SoftHebb(4, random_state=0, init_radius=50.0).fit(X[:8], epochs=1)
    kept = model.weights_.copy()
    model.set_params(learning_rate=5.0)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        model.partial_fit(X)
    np.testing.assert_array_equal(model.weights_, kept)


def test_training_finds_the_clusters():
    """On 4 separated clusters the prototypes move to the cluster means (direction and
    unit norm: the Oja term), each cluster gets its own winner, and the learned priors
    ``exp(β b)`` approach the cluster frequencies. The random initial weights do none
    of this."""
    X, labels, means = clusters(seed=2)
    model = SoftHebb(4, random_state=0, learning_rate=0.02, bias_learning_rate=0.01,
                     dtype="float64")
    model._init_state(X.shape[1], np.random.default_rng(0), np.float64)
    unit_means = means / np.linalg.norm(means, axis=1, keepdims=True)

    def best_cosines(W):
        Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
        return (unit_means @ Wn.T).max(axis=1)

    assert best_cosines(model.weights_).max() < 0.8
    model.fit(X, epochs=3)
    assert best_cosines(model.weights_).min() > 0.99
    np.testing.assert_allclose(np.linalg.norm(model.weights_, axis=1), 1.0, atol=0.05)
    winners = model._winners({"weights_": model.weights_, "biases_": model.biases_}, X)
    for c in range(4):  # every cluster has one winner of its own
        assert np.bincount(winners[labels == c], minlength=4).max() == 150
    assert len(np.unique(winners)) == 4
    priors = np.exp(12.0 * model.biases_)
    np.testing.assert_allclose(priors, 0.25, atol=0.08)


def test_logits_are_the_log_response():
    X, _, _ = clusters(n_per=20)
    model = SoftHebb(5, random_state=0, dtype="float64", features="response",
                     feature_norm=None).fit(X)
    state = {"weights_": model.weights_, "biases_": model.biases_}
    logits = model._logits(state, X)
    np.testing.assert_allclose(np.exp(logits), model.transform(X), rtol=1e-9, atol=1e-300)
