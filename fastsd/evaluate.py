"""Winner-take-all (WTA) class assignment, the field's standard score for prototypes.

Each training sample "wins" the neuron with the largest score; each neuron takes the
label it won most often (the smallest label on a tie); a test sample is predicted as the
class of its winner. Three scores:

- ``"cosine"``: rows of ``W`` scaled to unit L2 norm, score ``Ŵ x`` (the notebook's
  ``wta_classification``); an all-zero row scores 0;
- ``"raw"``: score ``W x``;
- ``"response"``: the rule's own response, for rules that define one (``_winners``):
  SparseDream's ``o`` (steps 1–3 with the trained thresholds and inhibition; the
  notebook's ``wta_classification_sparse``), SoftHebb's ``u = W x + b``.

A neuron that wins no training sample has no class (-1): test samples it wins count as
errors, in no column of the confusion matrix (the notebook silently gave such neurons
class 0). Ties between neurons go to the lowest index, as with ``np.argmax``.

Winners are those of the float64 scores for every model dtype (see
:mod:`fastsd.kernels.wta`), also for a float32 model, whose own float32 response would
saturate to exactly 1.0 and tie neurons. Inputs are converted to the model's dtype
(float64 for a plain weights array); float32 inputs are not copied to float64, since
the kernels convert each pixel exactly as they read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._interrupt import map_rows
from ._model_state import eval_inputs, model_state, rule_hook
from ._validation import check_labels, check_n_classes, check_number
from .kernels import wta as kernel

if TYPE_CHECKING:
    from .base import PrototypeModel

SCORES = ("cosine", "raw", "response")

__all__ = ["SCORES", "WTAResult", "wta", "wta_all", "cosine_wta", "assign_classes",
           "summarize"]


@dataclass(frozen=True, eq=False)
class WTAResult:
    """Outcome of a WTA evaluation.

    Attributes
    ----------
    score : str
        Which score picked the winners (``"cosine"``, ``"raw"`` or ``"response"``).
    accuracy : float
        Fraction of test samples predicted correctly, in [0, 1].
    neuron_classes : ndarray (n_neurons,)
        Class of each neuron, -1 for neurons that won no training sample.
    unassigned : ndarray
        Indices of neurons with no class.
    misclassified : ndarray (n_classes,)
        Wrongly predicted test samples per true class.
    confusion : ndarray (n_classes, n_classes)
        Counts, rows = true class, columns = predicted class. A test sample won by a
        neuron without class counts as wrong but appears in no column.
    n_test : int
        Number of test samples.
    unclassified : int
        Test samples won by a neuron without class (all counted wrong), so that
        ``confusion.sum() + unclassified == n_test``.
    support : ndarray (n_classes,)
        Test samples per true class.
    """

    score: str
    accuracy: float
    neuron_classes: np.ndarray
    unassigned: np.ndarray
    misclassified: np.ndarray
    confusion: np.ndarray
    n_test: int
    unclassified: int
    support: np.ndarray

    @property
    def error_rates(self) -> np.ndarray:
        """Fraction of each true class misclassified (NaN for classes with no sample)."""
        return np.where(self.support > 0,
                        self.misclassified / np.maximum(self.support, 1), np.nan)

    def __str__(self) -> str:
        return (f"{self.score} WTA accuracy {100 * self.accuracy:.2f}% "
                f"({len(self.unassigned)} neuron(s) without class)")

    def table(self) -> str:
        """Multi-line summary: accuracy, neurons without class, errors per true class."""
        wrong = int(self.misclassified.sum())
        lines = [f"{self.score} WTA: accuracy {100 * self.accuracy:.2f}% "
                 f"({self.n_test - wrong}/{self.n_test} test samples)"]
        if len(self.unassigned):
            ids = ", ".join(str(i) for i in self.unassigned[:20])
            more = ", ..." if len(self.unassigned) > 20 else ""
            lines.append(f"{len(self.unassigned)} neuron(s) won no training sample "
                         f"(no class: {ids}{more}); {self.unclassified} test sample(s) "
                         "won by them count as errors")
        else:
            lines.append("every neuron has a class")
        lines.append(f"{'class':>5}  {'samples':>7}  {'wrong':>6}  {'error':>7}")
        for c, (n, w, r) in enumerate(zip(self.support, self.misclassified, self.error_rates)):
            rate = "n/a" if np.isnan(r) else f"{100 * r:.2f}%"
            lines.append(f"{c:>5}  {int(n):>7}  {int(w):>6}  {rate:>7}")
        total = f"{100 * wrong / self.n_test:.2f}%" if self.n_test else "n/a"
        lines.append(f"{'all':>5}  {self.n_test:>7}  {wrong:>6}  {total:>7}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- pieces
def assign_classes(winners: ArrayLike, labels: ArrayLike, n_neurons: int,
                   n_classes: int) -> np.ndarray:
    """Most frequent label among the samples each neuron won; -1 if it won none.

    Ties go to the smallest label (as ``np.argmax`` does in the notebook).

    Parameters
    ----------
    winners : ndarray of int (n_samples,)
        Winning neuron of each training sample, in ``[0, n_neurons)``.
    labels : ndarray of int (n_samples,)
        Labels in ``[0, n_classes)``.
    n_neurons, n_classes : int

    Returns
    -------
    ndarray of int64 (n_neurons,)
    """
    n_neurons = check_number("n_neurons", n_neurons, low=1, integer=True)
    n_classes = check_n_classes(n_classes)
    winners = _indices("winners", winners, n_neurons)
    labels = check_labels(labels, winners.shape[0], name="labels")
    _check_label_range(labels, n_classes, "labels")
    counts = np.bincount(winners * n_classes + labels,
                         minlength=n_neurons * n_classes).reshape(n_neurons, n_classes)
    classes = np.argmax(counts, axis=1)
    classes[counts.sum(axis=1) == 0] = -1
    return classes


def summarize(score: str, neuron_classes: ArrayLike, test_winners: ArrayLike,
              y_test: ArrayLike, n_classes: int) -> WTAResult:
    """Build a :class:`WTAResult` from neuron classes and the test samples' winners.

    Parameters
    ----------
    score : str
        Name recorded in the result.
    neuron_classes : ndarray of int (n_neurons,)
        As returned by :func:`assign_classes` (-1 = no class).
    test_winners : ndarray of int (n_test,)
        Winning neuron of each test sample.
    y_test : ndarray of int (n_test,)
    n_classes : int
    """
    n_classes = check_n_classes(n_classes)
    neuron_classes = np.asarray(neuron_classes)
    if neuron_classes.ndim != 1 or not np.issubdtype(neuron_classes.dtype, np.integer):
        raise ValueError("neuron_classes must be a 1-D integer array")
    if neuron_classes.size and (neuron_classes.min() < -1
                                or neuron_classes.max() >= n_classes):
        raise ValueError(f"neuron_classes must be in [-1, {n_classes})")
    test_winners = _indices("test_winners", test_winners, neuron_classes.shape[0])
    y_test = check_labels(y_test, test_winners.shape[0], name="y_test")
    _check_label_range(y_test, n_classes, "y_test")
    pred = neuron_classes[test_winners]
    wrong = pred != y_test
    ok = pred >= 0
    confusion = np.bincount(y_test[ok] * n_classes + pred[ok],
                            minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    n_test = int(y_test.shape[0])
    return WTAResult(
        score=str(score), accuracy=float(np.mean(~wrong)) if n_test else float("nan"),
        neuron_classes=neuron_classes, unassigned=np.flatnonzero(neuron_classes < 0),
        misclassified=np.bincount(y_test[wrong], minlength=n_classes),
        confusion=confusion, n_test=n_test, unclassified=int(np.sum(~ok)),
        support=np.bincount(y_test, minlength=n_classes),
    )


def _indices(name, values, n) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"{name} must be neuron indices in [0, {n})")
    return arr.astype(np.int64, copy=False)


def _check_label_range(y, n_classes, name) -> None:
    if y.size and y.max() >= n_classes:
        raise ValueError(f"{name} has label {int(y.max())} but n_classes={n_classes}")


def _score_name(score) -> str:
    if not isinstance(score, str):
        raise TypeError(f"score must be one of {SCORES}, got {score!r}")
    if score not in SCORES:
        raise ValueError(f"unknown WTA score {score!r}; choose from {', '.join(SCORES)}")
    return score


# ----------------------------------------------------------------------------- data
def _data(state, x_train, y_train, x_test, y_test, n_classes):
    m = state["weights"].shape[1]
    bound = state.get("max_input", 1.0)
    x_train = eval_inputs(x_train, state["dtype"], m, "x_train", bound)
    x_test = eval_inputs(x_test, state["dtype"], m, "x_test", bound)
    y_train = check_labels(y_train, x_train.shape[0], name="y_train")
    y_test = check_labels(y_test, x_test.shape[0], name="y_test")
    top = int(max(y_train.max(), y_test.max()))
    if n_classes is None:
        n_classes = top + 1
    else:
        n_classes = check_n_classes(n_classes)
        if top >= n_classes:
            raise ValueError(f"labels go up to {top} but n_classes={n_classes}")
    return x_train, y_train, x_test, y_test, n_classes


class _Scorer:
    """Everything the kernels need for one set of weights, prepared once."""

    def __init__(self, state):
        self.state = state
        self.W = np.asarray(state["weights"], dtype=np.float64)
        self.n_neurons = self.W.shape[0]
        self._linear = {}

    def available(self, score) -> bool:
        return score != "response" or rule_hook(self.state, "_winners") is not None

    def require(self, score) -> None:
        """Raise a ValueError if ``score`` does not apply to these weights."""
        if not self.available(score):
            raise ValueError(f"score='response' needs a model whose rule defines its own "
                             f"response winners (SparseDream, SoftHebb); "
                             f"{self.state['what']} has none (use 'cosine' or 'raw')")

    def winners(self, X, score) -> np.ndarray:
        """Winning neuron of every row of ``X`` (int64), in chunks of rows that Ctrl-C
        can stop (:func:`fastsd._interrupt.map_rows`)."""
        if score == "response":
            self.require(score)
            hook, state = rule_hook(self.state, "_winners"), self.state["state"]
            return map_rows(lambda rows: np.asarray(hook(state, rows), dtype=np.int64), X)
        linear = self.linear(score)
        return map_rows(lambda rows: kernel.linear_winners(
            rows, *linear, np.empty(rows.shape[0], dtype=np.int64)), X)

    def linear(self, score):
        """``Ŵᵀ`` in float32 and float64 and ``max |Ŵ|`` for :func:`linear_winners`.

        Cosine: rows scaled to unit L2 norm (all-zero rows stay 0). Raw: ``W`` times the
        power of two that brings ``max |W|`` into (0.5, 1], exact and winner-preserving.
        """
        if score not in self._linear:
            W = self.W
            if score == "cosine":
                norms = np.sqrt(np.einsum("ij,ij->i", W, W))
                scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
                Wn = W * scale[:, None]
            else:
                top = float(np.abs(W).max())
                # ldexp: 2**k itself would overflow for subnormal tops (k up to 1074)
                Wn = np.ldexp(W, -int(np.ceil(np.log2(top)))) if top > 0 else W
            WT64 = np.ascontiguousarray(Wn.T)
            WT32 = WT64.astype(np.float32)
            wmax = max(float(np.abs(WT64).max()), float(np.abs(WT32).max()))
            self._linear[score] = (WT32, WT64, wmax)
        return self._linear[score]


def _evaluate(scorer, score, x_train, y_train, x_test, y_test, n_classes) -> WTAResult:
    classes = assign_classes(scorer.winners(x_train, score), y_train, scorer.n_neurons,
                             n_classes)
    return summarize(score, classes, scorer.winners(x_test, score), y_test, n_classes)


# ----------------------------------------------------------------------------- API
def wta(model_or_weights: PrototypeModel | ArrayLike, x_train: ArrayLike,
        y_train: ArrayLike, x_test: ArrayLike, y_test: ArrayLike, *,
        score: str = "cosine", n_classes: int | None = None) -> WTAResult:
    """WTA evaluation of a model or weight matrix with one score.

    Parameters
    ----------
    model_or_weights : fitted model or array-like (n_neurons, n_features)
        Any fitted model or plain weights array (used in float64) supports
        ``"cosine"`` and ``"raw"``; a model whose rule defines its own response
        (SparseDream, SoftHebb) also ``"response"``.
    x_train, x_test : array-like (n, n_features), values in [0, 1]
    y_train, y_test : array-like of int (n,)
        Non-negative integer labels.
    score : {"cosine", "raw", "response"}, default "cosine"
    n_classes : int, optional
        Defaults to ``max(label) + 1`` over both label sets.

    Returns
    -------
    WTAResult

    Raises
    ------
    ValueError, TypeError
        For bad inputs (naming the problem), or ``score="response"`` for a model
        whose rule defines no response.
    """
    score = _score_name(score)
    scorer = _Scorer(model_state(model_or_weights))
    scorer.require(score)
    data = _data(scorer.state, x_train, y_train, x_test, y_test, n_classes)
    return _evaluate(scorer, score, *data)


def wta_all(model: PrototypeModel | ArrayLike, x_train: ArrayLike, y_train: ArrayLike,
            x_test: ArrayLike, y_test: ArrayLike, *,
            n_classes: int | None = None) -> dict[str, WTAResult]:
    """Every applicable WTA score of ``model``: ``{"cosine": ..., "raw": ...[, "response"]}``.

    Inputs are validated once; parameters as for :func:`wta`.

    Returns
    -------
    dict of str to WTAResult
        In the order of :data:`SCORES`; ``"response"`` only for models whose rule
        defines one.
    """
    scorer = _Scorer(model_state(model))
    data = _data(scorer.state, x_train, y_train, x_test, y_test, n_classes)
    return {s: _evaluate(scorer, s, *data) for s in SCORES if scorer.available(s)}


def available_scores(model_or_weights: PrototypeModel | ArrayLike) -> tuple[str, ...]:
    """The scores of :data:`SCORES` that apply to ``model_or_weights``."""
    scorer = _Scorer(model_state(model_or_weights))
    return tuple(s for s in SCORES if scorer.available(s))


def cosine_wta(weights: PrototypeModel | ArrayLike, x_train: ArrayLike, y_train: ArrayLike,
               x_test: ArrayLike, y_test: ArrayLike, *,
               n_classes: int | None = None) -> WTAResult:
    """WTA with the cosine score; ``wta(weights, ..., score="cosine")``.

    Parameters
    ----------
    weights : array-like (n_neurons, n_features) or fitted model
    x_train, x_test : array-like (n, n_features), values in [0, 1]
    y_train, y_test : array-like of int
    n_classes : int, optional
        Defaults to ``max(label) + 1``.
    """
    return wta(weights, x_train, y_train, x_test, y_test, score="cosine",
               n_classes=n_classes)
