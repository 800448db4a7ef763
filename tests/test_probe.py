"""The linear probe: exact objective and gradient, accuracy on MNIST, input checks."""
from __future__ import annotations

import numpy as np
import pytest

import naive_wta
from conftest import image_like
from fastsd import SparseDream
from fastsd.probe import FEATURES, ProbeResult, linear_probe, softmax_loss_grad
from conftest import reference_defaults

SD = reference_defaults(SparseDream)


def small_problem(n=40, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, d))
    y = rng.integers(0, c, n)
    params = rng.normal(scale=0.5, size=(d + 1) * c)
    return F, y, params


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_loss_matches_reference_and_gradient_finite_differences(l2):
    F, y, params = small_problem()
    n, d = F.shape
    c = 3
    FT = np.ascontiguousarray(F.T)
    loss, grad = softmax_loss_grad(params, FT, y, c, l2)
    coef, intercept = params[:d * c].reshape(d, c), params[d * c:]
    assert loss == pytest.approx(naive_wta.softmax_loss(coef, intercept, F, y, l2),
                                 rel=1e-12)
    h = 1e-6
    numeric = np.empty_like(params)
    for k in range(params.size):
        step = np.zeros_like(params)
        step[k] = h
        numeric[k] = (softmax_loss_grad(params + step, FT, y, c, l2)[0]
                      - softmax_loss_grad(params - step, FT, y, c, l2)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_float32_features_close_to_float64():
    F, y, params = small_problem(n=200, d=8, c=4, seed=1)
    params = np.resize(params, 9 * 4)
    l64, g64 = softmax_loss_grad(params, np.ascontiguousarray(F.T), y, 4, 1e-3)
    l32, g32 = softmax_loss_grad(params, np.ascontiguousarray(F.T, np.float32), y, 4, 1e-3)
    assert g32.dtype == np.float64
    assert l32 == pytest.approx(l64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


def separable(n, seed, m=32):
    """Two classes told apart by which half of the pixels is on."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = image_like(n, m, seed=seed, density=0.5)
    X[y == 0, : m // 2] *= 0.1
    X[y == 1, m // 2:] *= 0.1
    return X.astype(np.float32), y


def test_probe_on_pixels_callable_and_drive():
    x_train, y_train = separable(400, 0)
    x_test, y_test = separable(200, 1)
    base = linear_probe(None, x_train, y_train, x_test, y_test)
    assert base.features == "input" and base.accuracy > 0.95 and base.converged
    custom = linear_probe(lambda X: X[:, ::2], x_train, y_train, x_test, y_test)
    assert custom.features == "custom" and custom.coef.shape == (16, 2)
    W = np.random.default_rng(2).random((6, 32))
    drive = linear_probe(W, x_train, y_train, x_test, y_test, features="drive")
    assert drive.features == "drive" and drive.accuracy > 0.9
    assert 1 <= drive.n_iter <= 200
    F_test = x_test.astype(np.float64) @ W.T
    assert np.mean(drive.predict(F_test) == y_test) == drive.accuracy
    assert "linear probe on drive" in str(drive)


def test_probe_model_features():
    x_train, y_train = separable(300, 3)
    x_test, y_test = separable(100, 4)
    model = SD(n_neurons=8, sp=0.1, random_state=0).fit(x_train.astype(float))
    for features in FEATURES:
        res = linear_probe(model, x_train, y_train, x_test, y_test, features=features,
                           max_iter=30)
        assert isinstance(res, ProbeResult) and res.features == features
        assert res.coef.shape == (8, 2) and 0 <= res.accuracy <= 1
        assert res.n_iter <= 30


def test_probe_beats_chance_on_mnist(mnist):
    model = SD(random_state=0).fit(mnist.x_train[:20000], epochs=1)
    n = 10000  # probe trained on 10k samples (faster), tested on all 10k test samples
    data = (mnist.x_train[:n], mnist.y_train[:n], mnist.x_test, mnist.y_test)
    logit = linear_probe(model, *data, features="logit")
    assert logit.accuracy >= 0.80, str(logit)
    assert logit.train_accuracy >= 0.80
    # The response o itself is ~0 for most neurons and samples (a very sparse code);
    # a linear read-out still beats chance (10%) by far, but much less well.
    response = linear_probe(model, *data, features="response")
    assert response.features == "response"
    assert response.accuracy >= 0.3, str(response)


def test_probe_bad_inputs():
    x_train, y_train = separable(50, 5)
    x_test, y_test = separable(20, 6)
    W = np.random.default_rng(0).random((4, 32))
    data = (x_train, y_train, x_test, y_test)
    with pytest.raises(ValueError, match="features='logit' needs a model whose rule "
                                         "defines logits"):
        linear_probe(W, *data, features="logit")
    assert linear_probe(W, *data).features == "drive"  # the default without logits
    with pytest.raises(ValueError, match="features='response' needs a fitted fastsd model"):
        linear_probe(W, *data, features="response")
    with pytest.raises(ValueError, match="unknown features 'pixels'"):
        linear_probe(W, *data, features="pixels")
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        linear_probe(W, *data, features="drive", l2=-1.0)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        linear_probe(W, *data, features="drive", max_iter=0)
    with pytest.raises(ValueError, match="y_test has 3 labels for 20 samples"):
        linear_probe(W, x_train, y_train, x_test, y_test[:3], features="drive")
    with pytest.raises(ValueError, match="x_test has 31 features but the model expects 32"):
        linear_probe(W, x_train, y_train, x_test[:, 1:], y_test, features="drive")
    with pytest.raises(ValueError, match="features of x_train contain NaN"):
        linear_probe(lambda X: X * np.nan, *data)
    with pytest.raises(ValueError, match="features of x_train must have shape"):
        linear_probe(lambda X: X[0], *data)


def test_probe_features_match_numpy():
    """The probe's three feature maps against numpy from the model's state: the drive
    ``W x``, the log-odds ``a - L σ(a - t) - t`` (step 3 before its sigmoid) and the
    response ``o`` (steps 1-3)."""
    from scipy.special import expit

    import naive
    from conftest import image_like
    from fastsd.probe import _feature_map

    X = image_like(200, 24, seed=1)
    model = SD(n_neurons=9, sp=0.1, beta=0.05, random_state=0).fit(X, epochs=2)
    # an assigned, asymmetric inhibition (training keeps L symmetric): L, not Lᵀ
    L = model.inhibition_ + np.triu(np.full((9, 9), 0.05), 1)
    model.inhibition_ = L
    W, t = model.weights_, model.thresholds_
    a = X @ W.T
    want = {"drive": a, "logit": a - expit(a - t) @ L.T - t,
            "response": naive.sparsedream_response(X, W, t, L)}
    for name, expected in want.items():
        fmap, _, _ = _feature_map(model, name)
        np.testing.assert_allclose(fmap(X), expected, rtol=1e-9, atol=1e-12)
