"""Winner-take-all (WTA) class assignment, the field's standard score for prototypes.

Each training sample "wins" the neuron with the largest score; each neuron takes the
label it won most often; a test sample is predicted as the class of its winner.
A neuron that wins no training sample has no class (-1): test samples it wins count
as errors (the notebook silently gave such neurons class 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_inputs, check_labels


@dataclass(frozen=True)
class WTAResult:
    """Outcome of a WTA evaluation.

    Attributes
    ----------
    score : str
        Which score picked the winners ("cosine", ...).
    accuracy : float
        Fraction of test samples predicted correctly, in [0, 1].
    neuron_classes : ndarray (n_neurons,)
        Class of each neuron, -1 for neurons that won no training sample.
    unassigned : ndarray
        Indices of neurons with no class.
    misclassified : ndarray (n_classes,)
        Wrongly predicted test samples per true class.
    confusion : ndarray (n_classes, n_classes)
        Counts, rows = true class, columns = predicted class (an unassigned winner
        counts as wrong but appears in no column).
    """

    score: str
    accuracy: float
    neuron_classes: np.ndarray
    unassigned: np.ndarray
    misclassified: np.ndarray
    confusion: np.ndarray

    def __str__(self) -> str:
        return (f"{self.score} WTA accuracy {100 * self.accuracy:.2f}% "
                f"({len(self.unassigned)} neuron(s) without class)")


def _unit_rows(W: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return np.divide(W, norms, out=np.zeros_like(W), where=norms > 0)


def assign_classes(winners: np.ndarray, labels: np.ndarray, n_neurons: int,
                   n_classes: int) -> np.ndarray:
    """Most frequent label among the samples each neuron won; -1 if it won none.

    Ties go to the smallest label (as ``np.argmax`` does in the notebook).
    """
    counts = np.zeros((n_neurons, n_classes), dtype=np.int64)
    np.add.at(counts, (winners, labels), 1)
    classes = np.argmax(counts, axis=1)
    classes[counts.sum(axis=1) == 0] = -1
    return classes


def summarize(score: str, neuron_classes: np.ndarray, test_winners: np.ndarray,
              y_test: np.ndarray, n_classes: int) -> WTAResult:
    """Build a :class:`WTAResult` from neuron classes and the test samples' winners."""
    pred = neuron_classes[test_winners]
    wrong = pred != y_test
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    ok = pred >= 0
    np.add.at(confusion, (y_test[ok], pred[ok]), 1)
    return WTAResult(
        score=score, accuracy=float(np.mean(~wrong)), neuron_classes=neuron_classes,
        unassigned=np.flatnonzero(neuron_classes < 0),
        misclassified=np.bincount(y_test[wrong], minlength=n_classes),
        confusion=confusion,
    )


def cosine_wta(weights, x_train, y_train, x_test, y_test, *, n_classes=None) -> WTAResult:
    """WTA with the cosine score: rows of ``weights`` scaled to unit L2 norm, score ``Ŵ x``.

    Parameters
    ----------
    weights : ndarray (n_neurons, n_features)
    x_train, x_test : ndarray (n, n_features), values in [0, 1]
    y_train, y_test : integer labels
    n_classes : int, optional
        Defaults to ``max(label) + 1``.
    """
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim != 2 or not np.all(np.isfinite(W)):
        raise ValueError(f"weights must be a finite 2-D array, got shape {W.shape}")
    x_train = check_inputs(x_train, dtype=np.float64, n_features=W.shape[1], name="x_train")
    x_test = check_inputs(x_test, dtype=np.float64, n_features=W.shape[1], name="x_test")
    y_train = check_labels(y_train, x_train.shape[0], name="y_train")
    y_test = check_labels(y_test, x_test.shape[0], name="y_test")
    if n_classes is None:
        n_classes = int(max(y_train.max(), y_test.max())) + 1
    Wn = _unit_rows(W)
    classes = assign_classes(np.argmax(x_train @ Wn.T, axis=1), y_train, W.shape[0],
                             n_classes)
    return summarize("cosine", classes, np.argmax(x_test @ Wn.T, axis=1), y_test, n_classes)
