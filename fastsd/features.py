"""What a model's :meth:`~fastsd.base.PrototypeModel.transform` and the linear probe
(:mod:`fastsd.probe`) read out of a trained network: its features.

- ``"response"``: the network's output (SparseDream ``o``, SoftHebb's soft
  winner-take-all, Krotov–Hopfield's hidden drives), in the model's dtype;
- ``"logit"``: the response on the log-odds scale, for rules that define it
  (SparseDream ``a − L p − t``, SoftHebb ``log y``), computed in float64;
- ``"drive"``: the feed-forward drive ``a = W x``, computed in float64.

On MNIST SparseDream's response is ~0 for most neurons and samples, so a linear
classifier reads far more from its logits (``docs/evaluation.md``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .kernels import wta as kernel

#: Every feature kind a rule may define, in the order messages list them.
FEATURES = ("response", "logit", "drive")

__all__ = ["FEATURES", "feature_kinds", "check_features", "feature_map", "drive_map"]


def feature_kinds(model) -> tuple[str, ...]:
    """The feature kinds ``model`` (a rule's class or instance) defines: ``"response"``
    and ``"drive"`` always, ``"logit"`` if the rule defines logits (``_logits``)."""
    return tuple(kind for kind in FEATURES
                 if kind != "logit" or hasattr(model, "_logits"))


def check_features(model, features) -> str:
    """``features`` checked against the kinds ``model`` defines.

    Raises
    ------
    TypeError
        ``features`` is not a string.
    ValueError
        An unknown kind, or ``"logit"`` for a rule without logits.
    """
    kinds = feature_kinds(model)
    name = model.__name__ if isinstance(model, type) else type(model).__name__
    if not isinstance(features, str):
        raise TypeError(f"features must be one of {', '.join(map(repr, kinds))}, got "
                        f"{features!r}")
    if features not in kinds:
        why = (f"features='logit' needs a model whose rule defines logits; {name} has "
               "none" if features == "logit" else f"unknown features {features!r}")
        raise ValueError(f"{why} (features must be one of "
                         f"{', '.join(map(repr, kinds))})")
    return features


def drive_map(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``X -> X Wᵀ`` (the drives ``a = W x`` of every row), in float64."""
    WT = np.ascontiguousarray(np.asarray(weights).T, dtype=np.float64)

    def drive(X: np.ndarray) -> np.ndarray:
        return kernel.drives(X, WT, np.empty((X.shape[0], WT.shape[1])))

    return drive


def feature_map(model, state: dict, features: str) -> Callable[[np.ndarray], np.ndarray]:
    """The function computing the ``features`` of a block of rows of checked inputs.

    Parameters
    ----------
    model : PrototypeModel
        A fastsd model (its rule's ``_respond`` and ``_logits`` hooks are used).
    state : dict
        Its checked state (``model._checked_state(...)``).
    features : str
        A kind ``model`` defines (see :func:`check_features`).

    Returns
    -------
    callable
        ``X (n, n_features) -> (n, n_neurons)``.
    """
    features = check_features(model, features)
    if features == "drive":
        return drive_map(state["weights_"])
    if features == "logit":
        return lambda X: model._logits(state, X)
    return lambda X: model._respond(state, X)
