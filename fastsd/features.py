"""What a model's :meth:`~fastsd.base.PrototypeModel.transform` and the linear probe
(:mod:`fastsd.probe`) read out of a trained network: its features.

- ``"response"``: the network's output (SparseDream ``o``, SoftHebb's soft
  winner-take-all, Krotov–Hopfield's hidden drives), in the model's dtype;
- ``"logit"``: the response on the log-odds scale, for rules that define it
  (SparseDream ``a − L p − t``, SoftHebb ``log y``), computed in float64;
- ``"drive"``: the feed-forward drive ``a = W x``, computed in float64.

On MNIST SparseDream's response is ~0 for most neurons and samples, so a linear
classifier reads far more from its logits (``docs/evaluation.md``).

``transform`` then applies the model's ``feature_norm``: ``"zscore"`` standardises
each sample's features across the neurons (:func:`zscore_rows`), None leaves them as
they are. The linear probe reads them unnormalised and standardises each feature
over the training set instead.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .kernels import wta as kernel

#: Every feature kind a rule may define, in the order messages list them.
FEATURES = ("response", "logit", "drive")
#: What ``feature_norm`` may be.
FEATURE_NORMS = ("zscore", None)

__all__ = ["FEATURES", "FEATURE_NORMS", "feature_kinds", "check_features",
           "check_feature_norm", "zscore_rows", "feature_map", "drive_map"]


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


def check_feature_norm(feature_norm, n_neurons: int | None = None) -> str | None:
    """``feature_norm`` checked: ``"zscore"`` or None; with ``n_neurons`` (when the
    features are computed), ``"zscore"`` needs two neurons or more (one neuron's
    standardised feature is always 0; two give every sample ``±1``).

    Raises
    ------
    TypeError
        Neither a string nor None.
    ValueError
        Another string, or ``"zscore"`` with one neuron.
    """
    if feature_norm is not None and not isinstance(feature_norm, str):
        raise TypeError(f"feature_norm must be 'zscore' or None, got {feature_norm!r}")
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"feature_norm must be 'zscore' or None, got {feature_norm!r}")
    if feature_norm == "zscore" and n_neurons is not None and n_neurons < 2:
        raise ValueError("feature_norm='zscore' needs at least 2 neurons (one neuron's "
                         "standardised feature is always 0); use feature_norm=None")
    return feature_norm


def zscore_rows(F: np.ndarray) -> np.ndarray:
    """Each row of ``F`` less its mean, over its standard deviation, in float64 (a new
    array). A row whose values are all equal (spread at most 1e-12 of its largest
    magnitude) becomes zeros. Each row is first divided by its largest magnitude, so
    the result does not depend on the row's scale (no overflow or underflow in the
    squares).

    This removes what every neuron's feature shares for one sample, e.g. a
    brighter image's larger drives, and puts every sample on one scale: a linear
    classifier fitted on these needs no scaler (``docs/sklearn.md``).

    Raises
    ------
    ValueError
        ``F`` is not a non-empty 2-D array of real numbers, or holds NaN or infinity.
    """
    F = np.asarray(F)
    if F.ndim != 2 or 0 in F.shape or not (np.issubdtype(F.dtype, np.floating)
                                           or np.issubdtype(F.dtype, np.integer)):
        raise ValueError(f"features must be a non-empty 2-D array of real numbers, got "
                         f"shape {F.shape} and dtype {F.dtype}")
    F = np.asarray(F, dtype=np.float64)
    if not np.isfinite(F).all():
        raise ValueError("features contain NaN or infinite values")
    return _zscore(F)  # a new array: F is the caller's


def _zscore(F) -> np.ndarray:
    """:func:`zscore_rows` without the checks (``transform`` checks its result once):
    a row with a non-finite value gives NaN."""
    F = np.array(F, dtype=np.float64)
    size = np.abs(F).max(axis=1, keepdims=True)
    size[~(size > 0)] = 1.0  # all-zero rows stay 0; NaN rows stay NaN
    F /= size
    F -= F.mean(axis=1, keepdims=True)
    spread = F.std(axis=1, keepdims=True)
    flat = spread <= 1e-12
    spread[flat] = 1.0
    F /= spread
    F[flat[:, 0]] = 0.0
    return F


def drive_map(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``X -> X Wᵀ`` (the drives ``a = W x`` of every row), in float64."""
    WT = np.ascontiguousarray(np.asarray(weights).T, dtype=np.float64)

    def drive(X: np.ndarray) -> np.ndarray:
        return kernel.drives(X, WT, np.empty((X.shape[0], WT.shape[1])))

    return drive


def feature_map(model, state: dict, features: str, feature_norm: str | None = None
                ) -> Callable[[np.ndarray], np.ndarray]:
    """The function computing the ``features`` of a block of rows of checked inputs,
    normalised by ``feature_norm``.

    Parameters
    ----------
    model : PrototypeModel
        A fastsd model (its rule's ``_respond`` and ``_logits`` hooks are used).
    state : dict
        Its checked state (``model._checked_state(...)``).
    features : str
        A kind ``model`` defines (see :func:`check_features`).
    feature_norm : "zscore" or None, default None
        ``"zscore"``: each row standardised (:func:`zscore_rows`).

    Returns
    -------
    callable
        ``X (n, n_features) -> (n, n_neurons)``.
    """
    features = check_features(model, features)
    if features == "drive":
        fmap = drive_map(state["weights_"])
    elif features == "logit":
        fmap = lambda X: model._logits(state, X)  # noqa: E731
    else:
        fmap = lambda X: model._respond(state, X)  # noqa: E731
    if check_feature_norm(feature_norm, state["weights_"].shape[0]) == "zscore":
        return lambda X: _zscore(fmap(X))
    return fmap
