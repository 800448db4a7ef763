"""Plain-numpy references for the WTA evaluators and the probe, straight from their
descriptions (``fastsd/evaluate.py``, ``fastsd/probe.py``).

Written in the notebook's style (normalise, argmax, count wins, assign classes, predict)
and in float64 throughout, favouring clarity over speed.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit as sigmoid


def cosine_scores(W, X):
    """``Ŵ x`` for every row of ``X``: rows of ``W`` scaled to unit L2 norm (zero rows: 0)."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    Wn = np.divide(W, norms, out=np.zeros_like(W), where=norms > 0)
    return np.asarray(X, dtype=np.float64) @ Wn.T


def raw_scores(W, X):
    """``W x`` for every row of ``X``."""
    return np.asarray(X, dtype=np.float64) @ np.asarray(W, dtype=np.float64).T


def response_scores(W, t, L, X):
    """SparseDream's ``o`` (steps 1–3) for every row of ``X``."""
    W, t, L, X = (np.asarray(a, dtype=np.float64) for a in (W, t, L, X))
    a = X @ W.T                     # 1
    p = sigmoid(a - t)              # 2
    return sigmoid(a - p @ L.T - t)  # 3


def scores(score, model_or_W, X):
    """The named score of every row of ``X`` for a model (or a weights array)."""
    W = getattr(model_or_W, "weights_", model_or_W)
    if score == "cosine":
        return cosine_scores(W, X)
    if score == "raw":
        return raw_scores(W, X)
    return response_scores(W, model_or_W.thresholds_, model_or_W.inhibition_, X)


def wta_classification(train_scores, y_train, test_scores, y_test, n_classes):
    """The notebook's evaluator on precomputed scores (n_samples, n_neurons).

    Returns a dict: train/test ``winners``, ``neuron_classes`` (-1 = won nothing),
    ``predictions`` (-1 where the winner has no class), ``accuracy``, ``misclassified``
    per true class, ``confusion`` (rows true, columns predicted; unclassified left out).
    """
    n_neurons = train_scores.shape[1]
    wins = np.argmax(train_scores, axis=1)
    n_wins = np.zeros((n_neurons, n_classes))
    for n_i, lbl in zip(wins, y_train):
        n_wins[n_i][lbl] += 1
    n_cls = np.argmax(n_wins, axis=1)
    n_cls[n_wins.sum(axis=1) == 0] = -1
    test_wins = np.argmax(test_scores, axis=1)
    predictions = np.empty(len(y_test), dtype=np.int64)
    incorrect = np.zeros(n_classes, dtype=np.int64)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    num_correct = 0
    for i in range(len(y_test)):
        pre = n_cls[test_wins[i]]
        predictions[i] = pre
        if pre == y_test[i]:
            num_correct += 1
        else:
            incorrect[y_test[i]] += 1
        if pre >= 0:
            confusion[y_test[i], pre] += 1
    return dict(winners=wins, test_winners=test_wins, neuron_classes=n_cls,
                predictions=predictions, accuracy=num_correct / len(y_test),
                misclassified=incorrect, confusion=confusion)


def wta(score, model_or_W, x_train, y_train, x_test, y_test, n_classes=None):
    """:func:`wta_classification` with the named score."""
    if n_classes is None:
        n_classes = int(max(np.max(y_train), np.max(y_test))) + 1
    return wta_classification(scores(score, model_or_W, x_train), y_train,
                              scores(score, model_or_W, x_test), y_test, n_classes)


def softmax_loss(coef, intercept, F, y, l2):
    """Mean cross-entropy of ``softmax(F coef + intercept)`` plus ``l2 / 2 * ||coef||²``."""
    z = F @ coef + intercept
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean() + 0.5 * l2 * np.sum(coef ** 2)
