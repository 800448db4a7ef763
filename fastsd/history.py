"""Training history: samples seen, training seconds and test accuracy at each epoch."""
from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._validation import check_inputs, check_labels

if TYPE_CHECKING:
    from .base import PrototypeModel

#: The series of a training history (``TrainingHistory.as_dict``), in order.
HISTORY_KEYS = ("samples", "seconds", "accuracy")


class TrainingHistory:
    """Collects a model's learning curve during ``fit``.

    Parameters
    ----------
    X : ndarray
        The (validated) training inputs.
    y : array-like or None
        Training labels; with ``eval_set`` they give each neuron its WTA class.
    eval_set : (x_test, y_test) or None
        Held-out data scored with the cosine WTA at every evaluation point. Without it
        (or without ``y``) the history still records samples and seconds, with NaN
        accuracy.
    previous : dict, optional
        The ``history_`` of the fit this one continues (``resume_fit``): its points
        are kept and the clock goes on from its last time.
    max_input : float or None, default 1.0
        Largest value accepted in ``x_test`` (the model's ``max_input``).

    Notes
    -----
    ``seconds`` counts training time only: the clock stops while evaluating.
    """

    def __init__(self, X, y=None, eval_set=None, previous: dict | None = None,
                 max_input: float | None = 1.0):
        previous = previous or {}
        self.samples: list[int] = list(previous.get("samples", []))
        self.seconds: list[float] = list(previous.get("seconds", []))
        self.accuracy: list[float] = list(previous.get("accuracy", []))
        self._data = None
        if eval_set is not None:
            if y is None:
                raise ValueError("eval_set needs the training labels y (to give neurons "
                                 "their classes)")
            try:
                x_test, y_test = eval_set
            except (TypeError, ValueError):
                raise TypeError("eval_set must be a pair (x_test, y_test)") from None
            x_test = check_inputs(x_test, dtype=X.dtype, n_features=X.shape[1],
                                  name="eval_set x_test", max_value=max_input)
            self._data = (X, check_labels(y, X.shape[0], name="y"), x_test,
                          check_labels(y_test, x_test.shape[0], name="eval_set y_test"))
        elif y is not None:
            check_labels(y, X.shape[0], name="y")
        self._elapsed = 0.0
        self._since = time.perf_counter()

    def start_clock(self) -> None:
        """Count training time from now (work before it, such as compiling, is not),
        on top of the time of the points already recorded."""
        self._elapsed = self.seconds[-1] if self.seconds else 0.0
        self._since = time.perf_counter()

    def record(self, model: PrototypeModel, samples: int) -> float:
        """Append a point for ``model`` after ``samples`` samples; returns the accuracy."""
        self._elapsed += time.perf_counter() - self._since
        accuracy = math.nan
        if self._data is not None:
            from .evaluate import wta
            accuracy = wta(model, *self._data, score="cosine").accuracy
        self.samples.append(int(samples))
        self.seconds.append(self._elapsed)
        self.accuracy.append(accuracy)
        self._since = time.perf_counter()
        return accuracy

    def as_dict(self) -> dict:
        """``{"samples": [...], "seconds": [...], "accuracy": [...]}`` (JSON-able)."""
        return {"samples": list(self.samples), "seconds": list(self.seconds),
                "accuracy": list(self.accuracy)}


def show_accuracy(bar: Any, accuracy: float) -> None:
    """Put the latest test accuracy on a tqdm progress bar (if there is one)."""
    if not math.isnan(accuracy):
        bar.set_postfix_str(f"cosine WTA {100 * accuracy:.2f}%")


def check_history(history: Mapping) -> dict:
    """Validate a model's ``history_`` (as saved and loaded) and return it as plain lists.

    Parameters
    ----------
    history : dict
        ``{"samples": [...], "seconds": [...], "accuracy": [...]}``, as
        :meth:`TrainingHistory.as_dict` makes it: lists of equal length of
        non-negative integers, non-negative finite seconds and accuracies in [0, 1]
        (or NaN where none was measured).

    Returns
    -------
    dict
        The same series, as lists of Python ``int`` and ``float``.

    Raises
    ------
    ValueError
        Anything else, with a message naming the problem (nothing is recursed into,
        so deeply nested input fails cleanly too).
    """
    if not isinstance(history, dict):
        raise ValueError(f"the training history must be a dict with keys "
                         f"{list(HISTORY_KEYS)}, got a {type(history).__name__}")
    if set(history) != set(HISTORY_KEYS):
        raise ValueError(f"the training history must have exactly the keys "
                         f"{list(HISTORY_KEYS)}, got {sorted(map(str, history))[:10]}")
    out = {name: _series(name, history[name]) for name in HISTORY_KEYS}
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise ValueError("the training history's series have different lengths: "
                         + ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    return out


def _series(name: str, values) -> list:
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"history {name!r} must be a list, got a {type(values).__name__}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"history {name!r} must hold numbers, found {value!r:.60}")
    if name == "samples":
        if not all(isinstance(v, numbers.Integral) and v >= 0 for v in values):
            raise ValueError("history 'samples' must hold non-negative integers")
        return [int(v) for v in values]
    values = [float(v) for v in values]
    if name == "seconds" and not all(0 <= v < math.inf for v in values):
        raise ValueError("history 'seconds' must hold non-negative finite numbers")
    if name == "accuracy" and not all(math.isnan(v) or 0 <= v <= 1 for v in values):
        raise ValueError("history 'accuracy' must hold numbers in [0, 1] or NaN")
    return values
