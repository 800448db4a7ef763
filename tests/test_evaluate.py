"""WTA evaluators (fastsd.evaluate, fastsd.kernels.wta) against the numpy references.

The kernels sum in a different order than numpy's matrix products (over nonzero pixels,
four at a time, reassociated), so scores differ from the reference by a few ulps of
float64. Winners can then differ only where the two best scores are within ~1e-15 of
each other: on continuous random data and on MNIST (smallest top-2 gap of a trained
model's scores ~1e-4) that does not happen, so winners, neuron classes, accuracies,
misclassified counts and confusion matrices must be IDENTICAL.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import naive_wta
from conftest import image_like
from fastsd import NotFittedError, SparseDream
from fastsd import evaluate as E
from fastsd._model_state import model_state

M = 64
N_CLASSES = 4


def labelled(n, seed):
    X = image_like(n, M, seed=seed)
    y = np.random.default_rng(seed + 100).integers(0, N_CLASSES, n)
    return X, y


@pytest.fixture(scope="module")
def data():
    x_train, y_train = labelled(600, 1)
    x_test, y_test = labelled(200, 2)
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="module", params=["float64", "float32"])
def model(request, data):
    m = SparseDream(n_neurons=12, xi=0.05, sp=0.1, gamma=0.5, beta=0.01,
                    dtype=request.param, random_state=0)
    return m.fit(data[0], epochs=2)


def as_model_dtype(model, data):
    """The data as the evaluator reads it: x in the model's dtype."""
    x_train, y_train, x_test, y_test = data
    dtype = np.dtype(model.dtype)
    return x_train.astype(dtype), y_train, x_test.astype(dtype), y_test


def assert_same(result, ref):
    assert np.array_equal(result.neuron_classes, ref["neuron_classes"])
    assert result.accuracy == ref["accuracy"]
    assert np.array_equal(result.misclassified, ref["misclassified"])
    assert np.array_equal(result.confusion, ref["confusion"])
    assert np.array_equal(result.unassigned, np.flatnonzero(ref["neuron_classes"] < 0))
    assert result.n_test == len(ref["predictions"])
    assert result.unclassified == int(np.sum(ref["predictions"] < 0))


# ----------------------------------------------------------------------------- identity
@pytest.mark.parametrize("score", E.SCORES)
def test_model_matches_reference(model, data, score):
    result = E.wta(model, *data, score=score)
    ref = naive_wta.wta(score, model, *as_model_dtype(model, data))
    assert result.score == score
    assert_same(result, ref)


@pytest.mark.parametrize("score", E.SCORES)
def test_winners_match_reference(model, data, score):
    X = data[0]
    scorer = E._Scorer(model_state(model))
    expected = np.argmax(naive_wta.scores(score, model, X), axis=1)
    assert np.array_equal(scorer.winners(X, score), expected)
    # float32 inputs are read as float32 and converted exactly in the kernel
    X32 = X.astype(np.float32)
    expected32 = np.argmax(naive_wta.scores(score, model, X32), axis=1)
    assert np.array_equal(scorer.winners(X32, score), expected32)


@pytest.mark.parametrize("score", ["cosine", "raw"])
def test_weights_array_matches_reference(data, score):
    W = np.random.default_rng(5).uniform(0.0, 1.0, (9, M)) ** 4
    assert_same(E.wta(W, *data, score=score), naive_wta.wta(score, W, *data))
    # any model-like object with weights_ works too
    holder = type("Holder", (), {"weights_": W.astype(np.float32)})()
    x_train, y_train, x_test, y_test = data  # float32 weights: x is read as float32
    ref = naive_wta.wta(score, holder.weights_, x_train.astype(np.float32), y_train,
                        x_test.astype(np.float32), y_test)
    assert_same(E.wta(holder, *data, score=score), ref)


def test_wta_all_and_cosine_wta(model, data):
    results = E.wta_all(model, *data)
    assert list(results) == ["cosine", "raw", "response"]
    for score, result in results.items():
        assert_same(result, naive_wta.wta(score, model, *as_model_dtype(model, data)))
    assert_same(E.cosine_wta(model.weights_, *data), naive_wta.wta("cosine", model, *data))
    assert list(E.wta_all(model.weights_, *data)) == ["cosine", "raw"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_winner_is_argmax_property(draw):
    n_neurons = draw.draw(st.integers(1, 9), label="N")
    m = draw.draw(st.integers(1, 13), label="m")
    n = draw.draw(st.integers(1, 6), label="n")
    value = st.floats(0, 1, allow_nan=False, width=32)
    W = draw.draw(hnp.arrays(np.float64, (n_neurons, m), elements=st.floats(-2, 2)),
                  label="W")
    X = draw.draw(hnp.arrays(np.float64, (n, m), elements=st.one_of(st.just(0.0), value)),
                  label="X")
    scorer = E._Scorer({"weights": W, "dtype": np.dtype(np.float64)})
    for score in ("cosine", "raw"):
        win = scorer.winners(X, score)
        ref = naive_wta.scores(score, W, X)
        for s in range(n):
            top = ref[s].max()
            tol = 1e-12 * (1.0 + np.abs(ref[s]).max())
            assert ref[s, win[s]] >= top - tol  # the winner has the highest score
            if np.sum(ref[s] >= top - tol) == 1:  # no near-tie: exactly numpy's argmax
                assert win[s] == np.argmax(ref[s])


def test_ties_go_to_lowest_index():
    W = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    X = np.array([[1.0, 0.0], [0.0, 0.0], [0.3, 0.3]])
    scorer = E._Scorer({"weights": W, "dtype": np.dtype(np.float64)})
    # sample 0: neurons 1 and 2 tie; blank sample: all tie; sample 2: 0, 1, 2 and 3 tie
    assert scorer.winners(X, "raw").tolist() == [1, 0, 0]
    assert np.argmax(X @ W.T, axis=1).tolist() == [1, 0, 0]
    # duplicated neurons tie exactly whatever their position in the vectorised loop
    rng = np.random.default_rng(0)
    W = rng.random((37, 20))
    W[35] = W[36] = W[2] = W[30]
    X = rng.random((50, 20)) * W[30] ** 2  # favours neuron 30 and its copies
    for score in ("cosine", "raw", "response"):
        model = SparseDream(37, dtype="float64")
        model.weights_, model.thresholds_ = W, np.zeros(37)
        model.inhibition_ = np.zeros((37, 37))
        won = E._Scorer(model_state(model)).winners(X, score)
        assert not np.isin(won, [30, 35, 36]).any()  # 2 is the lowest of each group
        assert np.array_equal(won, np.argmax(naive_wta.scores(score, model, X), axis=1))


def test_float32_pass_defers_near_ties_to_float64():
    """Scores that differ by far less than float32 resolution are decided in float64."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 1.0, 50)
    W = np.tile(base, (6, 1))
    for i in range(6):
        W[i, i] *= 1.0 + (i + 1) * 1e-12  # neuron i differs only at pixel i
    X = np.zeros((6, 50))
    X[:, 10:] = rng.random((6, 40))
    X[np.arange(6), np.arange(6)] = 1.0  # sample s lights pixel s: neuron s wins
    scorer = E._Scorer({"weights": W, "dtype": np.dtype(np.float64)})
    assert scorer.winners(X, "raw").tolist() == list(range(6))
    assert np.argmax(naive_wta.raw_scores(W, X), axis=1).tolist() == list(range(6))
    X32 = X.astype(np.float32)
    assert scorer.winners(X32, "raw").tolist() == list(range(6))


# ----------------------------------------------------------------------------- mnist
@pytest.fixture(scope="module")
def mnist_model(mnist):
    return SparseDream(random_state=0).fit(mnist.x_train[:20000], epochs=1)


@pytest.fixture(scope="module")
def mnist64(mnist):
    return mnist.x_train.astype(np.float64), mnist.x_test.astype(np.float64)


@pytest.mark.parametrize("score", E.SCORES)
def test_mnist_matches_reference(mnist, mnist64, mnist_model, score):
    result = E.wta(mnist_model, mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test,
                   score=score)
    ref = naive_wta.wta(score, mnist_model, mnist64[0], mnist.y_train, mnist64[1],
                        mnist.y_test)
    assert_same(result, ref)
    assert result.accuracy > {"cosine": 0.7, "raw": 0.3, "response": 0.6}[score]


# ----------------------------------------------------------------------------- classes
def test_unassigned_neuron_counts_as_error():
    rng = np.random.default_rng(3)
    x_train = rng.random((300, 10)) * (rng.random((300, 10)) < 0.6)
    x_train[:, :2] = 0.0  # pixels 0 and 1 are never on in training
    y_train = rng.integers(0, 3, 300)
    W = rng.uniform(0.1, 1.0, (5, 10))
    W[:, :2] = 0.0
    W[2] = 0.0
    W[2, :2] = 1.0  # neuron 2 only sees pixels 0 and 1: it can never win in training
    x_test = rng.random((40, 10))
    x_test[:, :2] = 0.0
    x_test[0] = 0.0
    x_test[0, 0] = 1.0  # ... but it wins this test sample
    y_test = rng.integers(0, 3, 40)
    for score in ("cosine", "raw"):
        res = E.wta(W, x_train, y_train, x_test, y_test, score=score)
        assert res.neuron_classes[2] == -1
        assert res.unassigned.tolist() == [2]
        assert res.unclassified == 1
        assert res.misclassified[y_test[0]] >= 1
        assert res.confusion.sum() == 39
        assert_same(res, naive_wta.wta(score, W, x_train, y_train, x_test, y_test))
        assert "1 neuron(s) won no training sample (no class: 2)" in res.table()


def test_confusion_and_counts_add_up(model, data):
    y_test = data[3]
    support = np.bincount(y_test, minlength=N_CLASSES)
    for res in E.wta_all(model, *data).values():
        correct = int(round(res.accuracy * res.n_test))
        assert res.n_test == len(y_test)
        assert res.confusion.sum() + res.unclassified == res.n_test
        assert np.trace(res.confusion) == correct
        assert res.misclassified.sum() == res.n_test - correct
        assert np.array_equal(res.support, support)
        if res.unclassified == 0:  # every error is off the diagonal of its row
            off = res.confusion.sum(axis=1) - np.diag(res.confusion)
            assert np.array_equal(off, res.misclassified)
        np.testing.assert_allclose(res.error_rates, res.misclassified / support)


def test_assign_classes_ties_and_empty():
    winners = np.array([0, 0, 1, 1, 1, 3])
    labels = np.array([2, 1, 0, 0, 1, 4])
    classes = E.assign_classes(winners, labels, n_neurons=5, n_classes=5)
    assert classes.tolist() == [1, 0, -1, 4, -1]  # neuron 0: tie of 1 and 2 -> 1


def test_table_and_str(model, data):
    res = E.wta(model, *data, score="cosine")
    text = res.table()
    assert text.splitlines()[0].startswith("cosine WTA: accuracy")
    assert len(text.splitlines()) == 3 + N_CLASSES + 1
    assert f"{100 * res.accuracy:.2f}%" in str(res)


def test_n_classes_argument(data):
    W = np.random.default_rng(0).random((6, M))
    res = E.wta(W, *data, n_classes=7)
    assert res.confusion.shape == (7, 7) and res.misclassified.shape == (7,)
    with pytest.raises(ValueError, match="labels go up to 3 but n_classes=3"):
        E.wta(W, *data, n_classes=3)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("change, exc, match", [
    (dict(x_train=np.zeros((5, M + 1))), ValueError, "x_train has 65 features but the "
                                                     "model expects 64"),
    (dict(x_test=np.full((3, M), np.nan)), ValueError, "x_test contains .* NaN"),
    (dict(x_train=np.zeros((2, 8, 8))), ValueError, "must be 2-D"),
    (dict(x_test=np.full((3, M), 2.0)), ValueError, r"pixel intensities must be in \[0, 1\]"),
    (dict(x_train=np.array([["a"] * M])), TypeError, "x_train must hold numbers"),
    (dict(y_train=np.zeros(3, int)), ValueError, "y_train has 3 labels for 600 samples"),
    (dict(y_test=-np.ones(200, int)), ValueError, "y_test has negative labels"),
    (dict(y_train=np.full(600, 0.5)), TypeError, "y_train must hold integer class labels"),
    (dict(y_test=np.zeros((200, 1), int)), ValueError, "y_test must be 1-D"),
])
def test_bad_inputs(model, data, change, exc, match):
    args = dict(zip(["x_train", "y_train", "x_test", "y_test"], data))
    args.update(change)
    with pytest.raises(exc, match=match):
        E.wta(model, **args)


def test_bad_scores_and_models(data):
    W = np.random.default_rng(0).random((6, M))
    with pytest.raises(ValueError, match="unknown WTA score 'dot'"):
        E.wta(W, *data, score="dot")
    with pytest.raises(TypeError, match="score must be one of"):
        E.wta(W, *data, score=1)
    with pytest.raises(ValueError, match="score='response' needs a model whose rule defines"):
        E.wta(W, *data, score="response")
    with pytest.raises(ValueError, match="weights contains NaN"):
        E.wta(np.where(W > 0.5, np.nan, W), *data)
    with pytest.raises(ValueError, match="non-empty 2-D array"):
        E.wta(W[0], *data)
    with pytest.raises(TypeError, match="real float array"):
        E.wta(W.astype(complex), *data)
    with pytest.raises(TypeError, match="fitted model"):
        E.wta(None, *data)
    with pytest.raises(NotFittedError):
        E.wta(SparseDream(), *data)
    broken = SparseDream(n_neurons=6).fit(data[0])
    broken.thresholds_ = np.zeros(5)
    with pytest.raises(ValueError, match="thresholds_ has shape"):
        E.wta(broken, *data)
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        E.wta(W, *data, n_classes=0)
