"""The models as scikit-learn citizens: ``check_estimator``, the constructor's ``epochs``
and ``features``, scikit-learn's error wording, pipelines and grid search."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

import fastsd
from fastsd.estimator_checks import OUT_OF_DOMAIN, expected_failed_checks
from fastsd.probe import linear_probe

from conftest import image_like

#: Small instances for the checks: few neurons, one epoch (the checks fit dozens of
#: times on 1-60 samples); Krotov-Hopfield's default batch of 100 is more than a check's
#: data set holds.
SMALL = {"sd": lambda: fastsd.SparseDream(8, epochs=1),
         "kh": lambda: fastsd.KrotovHopfield(8, batch_size=5, epochs=1),
         "softhebb": lambda: fastsd.SoftHebb(8, epochs=1)}


@pytest.mark.parametrize("max_input", [1.0, None])
@pytest.mark.parametrize("rule", list(SMALL))
def test_check_estimator_fails_exactly_the_expected_checks(rule, max_input):
    """Every check runs; those that fail are exactly the package's list (a newly
    failing check, or a listed one that now passes, fails this test): the checks with
    data above 1 under the default bound, none without a bound."""
    model = SMALL[rule]().set_params(max_input=max_input)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(model, on_fail=None)
    assert len(results) > 40  # the checks ran
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    expected = expected_failed_checks(model)
    assert failed == set(expected)
    assert len(expected) == (0 if max_input is None else 21)
    assert set(expected.values()) <= {OUT_OF_DOMAIN}
    for r in results:  # and they fail for the listed reason only
        if r["status"] == "failed":
            assert "pixel intensities must be in [0, 1]" in str(r["exception"]), r
    # the list is what a user passes: then nothing fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(clone(model), expected_failed_checks=expected)


def test_tags_say_what_is_true():
    for rule, make in SMALL.items():
        tags = make().__sklearn_tags__()
        assert tags.input_tags.positive_only and not tags.input_tags.sparse
        assert not tags.input_tags.allow_nan and not tags.target_tags.required
        assert tags.transformer_tags.preserves_dtype == [make().dtype]
    assert fastsd.SoftHebb(dtype="float64").__sklearn_tags__() \
        .transformer_tags.preserves_dtype == ["float64"]


@pytest.mark.parametrize("rule", list(SMALL))
def test_scikit_learn_wording(rule):
    """The messages scikit-learn's checks look for, on data in [0, 1] (the checks that
    test them train on data above 1 and are expected to fail before reaching them)."""
    X = image_like(30, 12)
    model = SMALL[rule]().fit(X)
    assert model.n_features_in_ == 12
    with pytest.raises(ValueError, match=f"X has 11 features, but {type(model).__name__} "
                                         "is expecting 12 features as input"):
        model.transform(X[:, 1:])
    with pytest.raises(ValueError, match="Expected 2D array.*Reshape your data"):
        model.transform(X[0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        clone(model).fit(X.astype(complex))
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 12\)\)"):
        clone(model).fit(X[:0])
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        clone(model).fit(X - 0.5)
    with pytest.raises(TypeError, match="argument must be .*string.* number"):
        bad = X.astype(object)
        bad[0, 0] = {"a": 1}
        clone(model).fit(bad)
    assert clone(model).fit(X.astype(object)).n_features_in_ == 12  # numbers in objects
    with pytest.raises(ValueError, match="values up to 3.*must be in \\[0, 1\\]"):
        clone(model).fit(3 * X + 0.5)
    names = model.get_feature_names_out()
    assert len(names) == 8 and names[0] == type(model).__name__.lower() + "0"


def _sd_logits(model, X):
    """SparseDream's logits from their definition, ``a − σ(a − t) Lᵀ − t``."""
    a = X @ model.weights_.T.astype(np.float64)
    t = model.thresholds_.astype(np.float64)
    return a - expit(a - t) @ model.inhibition_.T.astype(np.float64) - t


def test_transform_logit_is_the_probes_logit():
    X = image_like(80, 16, seed=1)
    y = np.arange(80) % 4
    model = fastsd.SparseDream(6, beta=0.01, dtype="float64", feature_norm=None,
                               random_state=0).fit(X)
    assert model.features == "logit"
    F = model.transform(X)
    np.testing.assert_allclose(F, _sd_logits(model, X), rtol=1e-12, atol=1e-12)
    probe = linear_probe(model, X, y, X, y, features="logit")
    np.testing.assert_allclose(probe.mean, F.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(probe.scale, F.std(axis=0), rtol=1e-12)
    # the other kinds are what their names say, in the model's dtype
    response = model.set_params(features="response").transform(X)
    np.testing.assert_allclose(response, expit(F), rtol=1e-9, atol=1e-12)
    drive = model.set_params(features="drive").transform(X)
    np.testing.assert_allclose(drive, X @ model.weights_.T, rtol=1e-12)
    f32 = fastsd.SparseDream(6, feature_norm=None, random_state=0).fit(X)
    assert f32.transform(X).dtype == np.float32
    np.testing.assert_allclose(f32.transform(X), _sd_logits(f32, X), rtol=1e-5, atol=1e-5)


def test_softhebb_logit_is_log_of_response():
    X = image_like(40, 16, seed=2)
    model = fastsd.SoftHebb(5, dtype="float64", feature_norm=None, random_state=0).fit(X)
    logit = model.transform(X)
    response = model.set_params(features="response").transform(X)
    np.testing.assert_allclose(np.exp(logit), response, rtol=1e-9, atol=1e-300)


def test_features_errors():
    X = image_like(20, 16)
    with pytest.raises(ValueError, match="unknown features 'pixels'.*'response', 'logit', "
                                         "'drive'"):
        fastsd.SparseDream(4, features="pixels").fit(X)
    with pytest.raises(ValueError, match="'logit' needs a model whose rule defines logits; "
                                         "KrotovHopfield has none"):
        fastsd.KrotovHopfield(4, batch_size=10, features="logit").fit(X)
    with pytest.raises(TypeError, match="features must be one of"):
        fastsd.SoftHebb(4, features=None).fit(X)
    model = fastsd.SparseDream(4, random_state=0).fit(X).set_params(features="pixels")
    with pytest.raises(ValueError, match="unknown features 'pixels'"):
        model.transform(X)


def test_epochs_parameter_and_its_override():
    X = image_like(50, 16)
    model = fastsd.SparseDream(4, epochs=3, random_state=0)
    assert model.fit(X).samples_seen_ == 150
    assert model.fit(X, epochs=2).samples_seen_ == 100  # fit's argument wins
    assert model.fit(X, samples_per_epoch=10).samples_seen_ == 30
    auto = fastsd.SparseDream(4, epochs="auto", random_state=0)
    assert auto.fit(X).samples_seen_ == auto.default_epochs(50) * 50 > 50
    for bad, error in ((0, ValueError), (1.5, TypeError), ("many", TypeError)):
        with pytest.raises(error, match="epochs"):
            fastsd.SoftHebb(4, epochs=bad).fit(X)
    same = fastsd.SparseDream(4, epochs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(same.weights_,
                                  fastsd.SparseDream(4, random_state=0).fit(X, epochs=2).weights_)


def test_pipeline_and_grid_search_on_mnist(mnist):
    """``epochs`` and a rate are tuned by GridSearchCV in two processes."""
    x, y = mnist.x_train[:400], mnist.y_train[:400]
    pipe = make_pipeline(fastsd.SparseDream(16, random_state=0), LogisticRegression())
    search = GridSearchCV(pipe, {"sparsedream__xi": [0.01, 0.05],
                                 "sparsedream__epochs": [1, 2]}, n_jobs=2, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LogisticRegression's ConvergenceWarning
        search.fit(x, y)
    assert set(search.best_params_) == {"sparsedream__xi", "sparsedream__epochs"}
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.best_score_ > 0.5  # ten classes: chance is 0.1
    best = search.best_estimator_.steps[0][1]
    assert best.samples_seen_ == 400 * search.best_params_["sparsedream__epochs"]
