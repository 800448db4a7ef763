"""The SparseDream estimator: semantics of fit/partial_fit, reproducibility, persistence."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastsd
import naive
from conftest import image_like
from fastsd import SparseDream, TrainingDiverged
from conftest import reference_defaults

SD = reference_defaults(SparseDream)

SMALL = dict(n_neurons=12, xi=0.05, sp=0.05, gamma=0.5, beta=0.01, prec=1e-3,
             prune_every=50)


@pytest.fixture(scope="module")
def X():
    return image_like(300, 49, seed=11)


def reference_fit(X, seed, epochs, per_epoch, params):
    """fit() spelled out with the numpy reference and the documented rng protocol."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (params["n_neurons"], X.shape[1]))
    t = np.zeros(params["n_neurons"])
    L = np.zeros((params["n_neurons"],) * 2)
    rates = {k: params[k] for k in ("xi", "sp", "gamma", "beta", "prec")}
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])[:per_epoch]
        naive.sparsedream_pass(X, order, W, t, L, prune_every=params["prune_every"], **rates)
    return W, t, L


def test_fit_follows_reference(X):
    model = SD(**SMALL, random_state=3).fit(X, epochs=3, samples_per_epoch=120)
    W, t, L = reference_fit(X, 3, 3, 120, SMALL)
    np.testing.assert_allclose(model.weights_, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.thresholds_, t, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.inhibition_, L, rtol=1e-9, atol=1e-12)
    assert model.samples_seen_ == 360


def test_same_seed_same_weights_other_seed_differs(X):
    a = SD(**SMALL, random_state=7).fit(X, epochs=2)
    b = SD(**SMALL, random_state=7).fit(X, epochs=2)
    c = SD(**SMALL, random_state=8).fit(X, epochs=2)
    assert np.array_equal(a.weights_, b.weights_)
    assert np.array_equal(a.thresholds_, b.thresholds_)
    assert not np.array_equal(a.weights_, c.weights_)


def test_refit_restarts_from_random_state(X):
    model = SD(**SMALL, random_state=1)
    first = model.fit(X).weights_.copy()
    assert np.array_equal(model.fit(X).weights_, first)


def test_partial_fit_from_assigned_state(X):
    rng = np.random.default_rng(0)
    model = SD(**SMALL)
    model.weights_ = rng.uniform(0.1, 1.0, (12, 49))
    model.thresholds_ = rng.normal(0, 0.1, 12)
    model.inhibition_ = np.zeros((12, 12))
    W, t, L = (np.array(a) for a in (model.weights_, model.thresholds_, model.inhibition_))
    order = rng.integers(0, 300, 170)
    model.partial_fit(X, order=order)
    naive.sparsedream_pass(X, order, W, t, L, prune_every=50,
                           **{k: SMALL[k] for k in ("xi", "sp", "gamma", "beta", "prec")})
    np.testing.assert_allclose(model.weights_, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.inhibition_, L, rtol=1e-9, atol=1e-12)


def test_partial_fit_initialises_like_fit(X):
    order = np.random.default_rng(5).permutation(300)
    a = SD(**SMALL, random_state=4).partial_fit(X, order=order)
    b = SD(**SMALL, random_state=4)
    b._init_state(X.shape[1], np.random.default_rng(4), np.dtype(np.float64))
    b.partial_fit(X, order=order)
    assert np.array_equal(a.weights_, b.weights_)


def test_float32_model(X):
    m32 = SD(**SMALL, dtype="float32", random_state=2).fit(X, epochs=2)
    m64 = SD(**SMALL, random_state=2).fit(X, epochs=2)
    assert m32.weights_.dtype == m32.thresholds_.dtype == np.float32
    np.testing.assert_allclose(m32.weights_, m64.weights_, rtol=1e-3, atol=1e-4)
    assert m32.transform(X[:5]).dtype == np.float32


def test_transform_matches_reference(X):
    model = SD(**SMALL, features="response", feature_norm=None, random_state=0).fit(X)
    expected = naive.sparsedream_response(X, model.weights_, model.thresholds_,
                                          model.inhibition_)
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_roundtrip(X, tmp_path, dtype):
    model = SD(**SMALL, dtype=dtype, random_state=9).fit(X)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = SparseDream.load(path)
    assert loaded.get_params() == model.get_params()
    for name in ("weights_", "thresholds_", "inhibition_"):
        got, want = getattr(loaded, name), getattr(model, name)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert loaded.samples_seen_ == model.samples_seen_
    assert type(fastsd.load(path)) is SparseDream
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_save_is_atomic(X, tmp_path, monkeypatch):
    model = SD(**SMALL, random_state=9).fit(X)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        SparseDream.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a readable fastsd model"):
        SparseDream.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x_train=np.zeros(3))
    with pytest.raises(ValueError, match="no 'meta' entry"):
        SparseDream.load(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"format": "fastsd-model"}], dtype=object))
    with pytest.raises(ValueError, match="not a readable fastsd model"):
        SparseDream.load(pickled)
    wrong_shape = tmp_path / "shape.npz"
    meta = {"format": "fastsd-model", "format_version": 1, "model": "SparseDream",
            "params": {"n_neurons": 5}}
    np.savez(wrong_shape, meta=np.array(json.dumps(meta)), weights_=np.ones((4, 9)),
             thresholds_=np.zeros(4), inhibition_=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="weights_ has shape"):
        SparseDream.load(wrong_shape)


def test_load_rejects_truncated_file(X, tmp_path):
    path = tmp_path / "m.npz"
    SD(**SMALL, random_state=0).fit(X).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable fastsd model"):
        SparseDream.load(path)
    assert zipfile.is_zipfile(path) is False


@pytest.mark.parametrize("batch_size", [1, 5])
def test_divergence_keeps_previous_state(X, batch_size):
    """Huge finite weights on two neurons overflow the reconstruction: the pass fails
    with a clear error and the model keeps its state from before the pass (per-sample
    and mini-batch paths)."""
    model = SD(**SMALL, random_state=0).fit(X).set_params(batch_size=batch_size)
    Xb = X.copy()
    Xb[0, -3:] = 1.0
    model.weights_[:2, -3:] = 1.5e308
    before = {n: getattr(model, n).copy() for n in ("weights_", "thresholds_",
                                                    "inhibition_")}
    seen = model.samples_seen_
    with pytest.raises(TrainingDiverged, match="NaN or infinite.*keeps the state"):
        model.partial_fit(Xb, order=np.arange(10))
    for name, value in before.items():
        assert np.array_equal(getattr(model, name), value)
    assert model.samples_seen_ == seen


def test_dead_neurons_warn(X):
    with pytest.warns(RuntimeWarning, match="all-zero weights"):
        SD(**{**SMALL, "xi": 100.0}, random_state=0).fit(X)


def test_params_api():
    model = SD(xi=0.1)
    assert model.get_params()["xi"] == 0.1
    assert model.set_params(gamma=2.0) is model and model.gamma == 2.0
    with pytest.raises(ValueError, match="Invalid parameter 'gama' for estimator "
                                         "SparseDream.*Valid parameters are"):
        model.set_params(gama=1)  # scikit-learn's set_params and repr
    assert repr(SparseDream(xi=0.1)) == "SparseDream(xi=0.1)"  # changed ones only


BAD_PARAMS = [
    ({"xi": 0}, ValueError, "xi must be > 0"),
    ({"xi": -1}, ValueError, "xi must be > 0"),
    ({"xi": float("nan")}, ValueError, "xi must be finite"),
    ({"xi": "fast"}, TypeError, "xi must be a number or \"auto\""),
    ({"sp": 0}, ValueError, "sp must be > 0"),
    ({"sp": 1}, ValueError, "sp must be < 1"),
    ({"gamma": -0.1}, ValueError, "gamma must be >= 0"),
    ({"beta": -1e-3}, ValueError, "beta must be >= 0"),
    ({"prec": 0}, ValueError, "prec must be > 0"),
    ({"prune_every": 0}, ValueError, "prune_every must be >= 1"),
    ({"prune_every": 1.5}, TypeError, "prune_every must be an integer"),
    ({"n_neurons": 0}, ValueError, "n_neurons must be >= 1"),
    ({"n_neurons": True}, TypeError, "n_neurons must be an integer"),
    ({"dtype": "int32"}, ValueError, "dtype must be 'float32' or 'float64'"),
    ({"random_state": -1}, ValueError, "random_state must be non-negative"),
    ({"random_state": "x"}, TypeError, "random_state must be None"),
    ({"xi": 1e200, "dtype": "float32"}, ValueError, "out of range for float32"),
]


@pytest.mark.parametrize("params, error, message", BAD_PARAMS)
def test_bad_params(X, params, error, message):
    with pytest.raises(error, match=message):
        SD(**{**SMALL, **params}).fit(X)


BAD_X = [
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), ValueError,
     "1 NaN or infinite"),
    (lambda X: np.full_like(X, np.inf), ValueError, "NaN or infinite"),
    (lambda X: X[0], ValueError, "must be 2-D"),
    (lambda X: X.reshape(len(X), 7, 7), ValueError, "must be 2-D.*flatten"),
    (lambda X: X[:0], ValueError, "is empty"),
    (lambda X: -X - 0.1, ValueError, "negative values"),
    (lambda X: X * 255, ValueError, "divide by 255"),
    (lambda X: X.astype(str), TypeError, "must hold numbers"),
    (lambda X: X.astype(complex), ValueError, "Complex data not supported.*must be real"),
    (lambda X: None, TypeError, "2-D numeric array"),
]


@pytest.mark.parametrize("make, error, message", BAD_X)
def test_bad_inputs(X, make, error, message):
    with pytest.raises(error, match=message):
        SD(**SMALL).fit(make(X))


def test_feature_count_must_match(X):
    model = SD(**SMALL, random_state=0).fit(X)
    with pytest.raises(ValueError, match="has 48 features, but SparseDream is expecting 49 features"):
        model.partial_fit(X[:, :48])
    with pytest.raises(ValueError, match="has 48 features, but SparseDream is expecting 49 features"):
        model.transform(X[:, :48])


def test_bad_fit_arguments(X):
    model = SD(**SMALL)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        model.fit(X, epochs=0)
    with pytest.raises(ValueError, match="samples_per_epoch must be <= 300"):
        model.fit(X, samples_per_epoch=301)
    with pytest.raises(ValueError, match="order has indices outside"):
        model.partial_fit(X, order=[0, 300])
    with pytest.raises(TypeError, match="order must hold integers"):
        model.partial_fit(X, order=[0.5])


def test_use_before_fit(X):
    with pytest.raises(fastsd.NotFittedError, match="no learned state"):
        SD(**SMALL).transform(X)


def test_assigned_state_is_checked(X):
    model = SD(**SMALL, random_state=0).fit(X)
    model.weights_ = np.ones((11, 49))
    with pytest.raises(ValueError, match=r"weights_ has shape \(11, 49\), expected"):
        model.partial_fit(X)
    model.weights_ = np.full((12, 49), np.nan)
    with pytest.raises(ValueError, match="weights_ contains NaN"):
        model.transform(X)


def test_train_entry_point(X):
    model = fastsd.train(X, n_neurons=12, epochs=2, samples_per_epoch=100, random_state=0)
    assert model.samples_seen_ == 200 and model.weights_.shape == (12, 49)
    with pytest.raises(ValueError, match="unknown parameter 'eta'"):
        fastsd.train(X, eta=1)
    with pytest.raises(ValueError, match="unknown dataset"):
        fastsd.train(dataset="cifar")


def test_history_records_learning_curve(X):
    y = np.arange(300) % 3
    model = SD(**SMALL, random_state=0).fit(
        X, y, epochs=3, samples_per_epoch=100, eval_set=(X[:60], y[:60]))
    h = model.history_
    assert h["samples"] == [0, 100, 200, 300]
    assert np.all(np.diff(h["seconds"]) >= 0) and len(h["accuracy"]) == 4
    from fastsd.evaluate import cosine_wta
    assert h["accuracy"][-1] == cosine_wta(model.weights_, X, y, X[:60], y[:60]).accuracy
    unlabeled = SD(**SMALL, random_state=0).fit(X, epochs=2)
    assert unlabeled.history_["samples"] == [0, 300, 600]
    assert np.all(np.isnan(unlabeled.history_["accuracy"]))


def test_history_input_errors(X):
    y = np.zeros(300, int)
    with pytest.raises(ValueError, match="eval_set needs the training labels y"):
        SD(**SMALL).fit(X, eval_set=(X, y))
    with pytest.raises(ValueError, match="y has 299 labels for 300 samples"):
        SD(**SMALL).fit(X, y[:-1])
    with pytest.raises(TypeError, match="eval_set must be a pair"):
        SD(**SMALL).fit(X, y, eval_set=X)
    with pytest.raises(ValueError, match="eval_set x_test has 48 features"):
        SD(**SMALL).fit(X, y, eval_set=(X[:, :48], y))
