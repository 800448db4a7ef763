"""``feature_norm`` (each sample's features standardised across the neurons) and
``max_input`` (the largest input value a model accepts): ``docs/sklearn.md``."""
import numpy as np
import pytest

import fastsd
from fastsd.evaluate import wta
from fastsd.features import zscore_rows
from fastsd.persistence import ModelFileError
from fastsd.probe import linear_probe

from conftest import image_like

RULES = {"sd": lambda **kw: fastsd.SparseDream(6, random_state=0, **kw),
         "kh": lambda **kw: fastsd.KrotovHopfield(6, batch_size=10, random_state=0, **kw),
         "softhebb": lambda **kw: fastsd.SoftHebb(6, random_state=0, **kw)}


def _zscore_naive(F):
    """Row by row, from the definition: (f - mean(f)) / std(f)."""
    out = np.zeros(F.shape)
    for i, row in enumerate(np.asarray(F, dtype=np.float64)):
        if row.std() > 0:
            out[i] = (row - row.mean()) / row.std()
    return out


def test_zscore_rows_against_its_definition():
    rng = np.random.default_rng(0)
    F = rng.normal(3.0, 5.0, size=(50, 7)) * rng.uniform(0.1, 10, size=(50, 1))
    F[3] = 2.5  # all equal: zeros, not NaN
    F[4] = 0.0
    Z = zscore_rows(F)
    np.testing.assert_allclose(Z, _zscore_naive(F), rtol=1e-12, atol=1e-12)
    assert np.all(Z[3] == 0) and np.all(Z[4] == 0)
    np.testing.assert_allclose(Z[5].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(Z[5].std(), 1, rtol=1e-12)
    # a shift or positive scale of one row leaves its features unchanged
    G = F.copy()
    G[7] = 4 * G[7] - 100
    np.testing.assert_allclose(zscore_rows(G)[7], Z[7], rtol=1e-9, atol=1e-12)
    assert zscore_rows(F.astype(np.float32)).dtype == np.float64
    # independent of the row's scale, far beyond where the squares overflow or
    # underflow (a plain std of 1e-165 * row is 0, of 1e160 * row inf)
    for scale in (1e-300, 1e-165, 1e160, 1e300):
        np.testing.assert_allclose(zscore_rows(F[5:7] * scale), Z[5:7], rtol=1e-9,
                                   atol=1e-12)
    kept = F.copy()
    zscore_rows(F)
    np.testing.assert_array_equal(F, kept)  # the input is not changed


@pytest.mark.parametrize("bad, message", [
    (np.ones(3), "2-D"), (np.ones((2, 0)), "non-empty"), (np.array([["a", "b"]]), "real"),
    (np.array([[1 + 2j, 1]]), "real"), (np.array([[np.nan, 1.0]]), "NaN"),
    (np.array([[np.inf, 1.0]]), "infinite")])
def test_zscore_rows_refuses_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        zscore_rows(bad)


@pytest.mark.parametrize("rule", list(RULES))
def test_transform_is_the_zscore_of_the_raw_features(rule):
    X = image_like(60, 16, seed=3)
    model = RULES[rule](dtype="float64").fit(X)
    assert model.feature_norm == "zscore"  # the default
    Z = model.transform(X)
    raw = model.set_params(feature_norm=None).transform(X)
    np.testing.assert_allclose(Z, _zscore_naive(raw), rtol=1e-10, atol=1e-10)
    assert not np.allclose(Z, raw)
    f32 = RULES[rule](dtype="float32").fit(X)
    assert f32.transform(X).dtype == np.float32


def test_feature_norm_errors():
    X = image_like(30, 16)
    y = np.arange(30) % 3
    for bad, error in (("l2", ValueError), ("ZSCORE", ValueError), (1, TypeError),
                       (True, TypeError)):
        with pytest.raises(error, match="feature_norm must be 'zscore' or None"):
            fastsd.SparseDream(4, feature_norm=bad).fit(X)
    # one neuron trains, evaluates and saves; only its z-scored features are refused
    one = fastsd.SoftHebb(1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="needs at least 2 neurons"):
        one.transform(X)
    wta(one, X, y, X, y)
    linear_probe(one, X, y, X, y)
    assert one.set_params(feature_norm=None).transform(X).shape == (30, 1)
    model = fastsd.SparseDream(4, random_state=0).fit(X).set_params(feature_norm="l2")
    with pytest.raises(ValueError, match="feature_norm"):
        model.transform(X)
    wta(model, X, y, X, y)  # the evaluators do not read transform's parameters


@pytest.mark.parametrize("rule", list(RULES))
def test_max_input_bounds_every_entry_point(rule):
    X = image_like(40, 16, seed=4)
    y = np.arange(40) % 4
    big = X * 3
    bounded = RULES[rule]()
    for call in (lambda: bounded.fit(big), lambda: bounded.partial_fit(big)):
        with pytest.raises(ValueError, match=r"values up to 2.98.*in \[0, 1\].*max_input=None"):
            call()
    assert not bounded._has_state()  # refused before anything was learned
    bounded.fit(X)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        bounded.transform(big)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        wta(bounded, big, y, X, y)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        linear_probe(bounded, X, y, big, y)
    with pytest.raises(ValueError, match=r"x_test.*in \[0, 1\]"):
        RULES[rule]().fit(X, y, eval_set=(big, y))
    # None: any non-negative values, in every entry point
    free = RULES[rule](max_input=None).fit(big, y, eval_set=(big, y))
    free.partial_fit(big)
    assert free.transform(big * 10).shape == (40, 6)
    wta(free, big, y, big, y)
    linear_probe(free, big, y, big, y)
    with pytest.raises(ValueError, match="Negative values"):
        free.transform(-big)
    # a finite bound other than 1
    with pytest.raises(ValueError, match=r"in \[0, 2\]"):
        RULES[rule](max_input=2).fit(big)
    RULES[rule](max_input=3.5).fit(big)


def test_max_input_errors():
    X = image_like(30, 16)
    for bad, error in ((0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                       ("None", TypeError), (10**400, ValueError)):
        with pytest.raises(error, match="max_input"):
            fastsd.SparseDream(4, max_input=bad).fit(X)
    with pytest.raises(ValueError, match="max_input"):  # before any data is loaded
        fastsd.train(n_neurons=4, max_input=-1, dataset="/no/such/dir")


def test_max_input_is_compared_at_float32_precision():
    X = image_like(40, 16, seed=5)
    top = X / X.max() * 0.3  # exactly 0.3 at its largest, in float64
    for dtype in ("float32", "float64"):
        fastsd.SparseDream(4, max_input=0.3, dtype=dtype, random_state=0).fit(top)
        fastsd.SparseDream(4, max_input=0.3, dtype=dtype, random_state=0).fit(
            top.astype(np.float32))
    with pytest.raises(ValueError, match=r"values up to 0.300000012; .*\[0, 0.3\]"):
        fastsd.SparseDream(4, max_input=0.3, dtype="float64").fit(top * 1.00000004)


def test_inputs_beyond_the_dtype_are_named_not_called_nan():
    X = image_like(30, 16)
    model = fastsd.SparseDream(4, max_input=None, random_state=0).fit(X)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        model.transform(X * 1e100)
    with pytest.raises(ValueError, match="drive features of X overflow float32"):
        model.set_params(features="drive", feature_norm=None).transform(X * 3e38)
    soft = fastsd.SoftHebb(4, max_input=None, features="response", random_state=0).fit(X)
    with pytest.raises(ValueError, match="response features of X overflow float32"):
        soft.transform(X * 1e38)  # a softmax of inf - inf: NaN, not returned
    with pytest.raises(ValueError, match="Negative values.*inputs must be in \\[0, inf\\)"):
        model.transform(-X)


def test_expected_failed_checks_only_for_known_bounds():
    from fastsd.estimator_checks import expected_failed_checks

    assert expected_failed_checks(fastsd.SparseDream(4, max_input=None)) == {}
    assert len(expected_failed_checks(fastsd.SparseDream(4))) == 21
    with pytest.raises(ValueError, match="max_input=1"):
        expected_failed_checks(fastsd.SparseDream(4, max_input=100))


def test_save_load_keeps_both(tmp_path):
    X = image_like(30, 16) * 2
    model = fastsd.SparseDream(4, max_input=None, feature_norm=None, random_state=0).fit(X)
    model.save(tmp_path / "m.npz")
    back = fastsd.SparseDream.load(tmp_path / "m.npz")
    assert back.max_input is None and back.feature_norm is None
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
    bad = fastsd.SparseDream(4, random_state=0).fit(X / 2)
    bad.feature_norm = "l2"
    with pytest.raises((ModelFileError, ValueError), match="feature_norm"):
        bad.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
