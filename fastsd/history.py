"""Training history: samples seen, training seconds and test accuracy at each epoch."""
from __future__ import annotations

import math
import time

from ._validation import check_inputs, check_labels


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

    Notes
    -----
    ``seconds`` counts training time only: the clock stops while evaluating.
    """

    def __init__(self, X, y=None, eval_set=None, previous: dict | None = None):
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
                                  name="eval_set x_test")
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

    def record(self, model, samples: int) -> float:
        """Append a point for ``model`` after ``samples`` samples; returns the accuracy."""
        self._elapsed += time.perf_counter() - self._since
        accuracy = math.nan
        if self._data is not None:
            from .evaluate import wta
            accuracy = wta(model.weights_, *self._data, score="cosine").accuracy
        self.samples.append(int(samples))
        self.seconds.append(self._elapsed)
        self.accuracy.append(accuracy)
        self._since = time.perf_counter()
        return accuracy

    def as_dict(self) -> dict:
        """``{"samples": [...], "seconds": [...], "accuracy": [...]}`` (JSON-able)."""
        return {"samples": list(self.samples), "seconds": list(self.seconds),
                "accuracy": list(self.accuracy)}


def show_accuracy(bar, accuracy: float) -> None:
    """Put the latest test accuracy on a tqdm progress bar (if there is one)."""
    if not math.isnan(accuracy):
        bar.set_postfix_str(f"cosine WTA {100 * accuracy:.2f}%")
