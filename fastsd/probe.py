"""Linear probe: how linearly separable are the classes in a model's representation?

A multinomial logistic regression (softmax, L2 penalty on the weights, not on the
biases) is trained on the features of the training set and scored on the test set.
Features are standardised with the training set's mean and standard deviation (constant
features stay 0), which makes one ``l2`` meaningful across models whose responses live
on very different scales, and lets L-BFGS converge in a few hundred steps.

The convex objective is minimised with ``scipy.optimize.minimize(method="L-BFGS-B")``
and its exact analytic gradient, which is what scikit-learn's ``LogisticRegression``
does with its default lbfgs solver; this ~20-line loss is kept because its two matrix
products per step run in float32 on the transposed features (everything else in
float64) with BLAS held to one thread: 200 steps on 60000 x 100 take 2-5 s. The same
features through scikit-learn: a model's ``transform`` with ``feature_norm=None``
(:mod:`fastsd.features`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ._interrupt import map_rows
from ._model_state import eval_inputs, model_state
from ._threads import one_blas_thread
from ._validation import check_labels, check_number
from .features import FEATURES, check_features, drive_map, feature_map

__all__ = ["ProbeResult", "linear_probe", "softmax_loss_grad", "FEATURES"]


@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes
    ----------
    accuracy : float
        Test accuracy, in [0, 1].
    train_accuracy : float
        Accuracy on the training features.
    n_iter : int
        L-BFGS iterations run.
    converged : bool
        True if L-BFGS met its tolerance before ``max_iter``.
    features : str
        ``"response"``, ``"drive"``, ``"input"`` (pixels) or ``"custom"`` (a callable).
    l2 : float
        Penalty used.
    loss : float
        Final training objective (mean cross-entropy + ``l2/2 * ||coef||²``).
    coef : ndarray (n_features, n_classes)
    intercept : ndarray (n_classes,)
        Weights and biases acting on standardised features.
    mean, scale : ndarray (n_features,)
        Standardisation: ``(F - mean) / scale``.
    """

    accuracy: float
    train_accuracy: float
    n_iter: int
    converged: bool
    features: str
    l2: float
    loss: float
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, features) -> np.ndarray:
        """Class of each row of raw (not yet standardised) ``features``."""
        F = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return np.argmax(F @ self.coef + self.intercept, axis=1)

    def __str__(self) -> str:
        state = "converged" if self.converged else "not converged"
        return (f"linear probe on {self.features}: test accuracy "
                f"{100 * self.accuracy:.2f}%, train {100 * self.train_accuracy:.2f}% "
                f"({self.n_iter} L-BFGS iterations, {state}, l2={self.l2:g})")


def softmax_loss_grad(params: np.ndarray, FT: np.ndarray, y: np.ndarray, n_classes: int,
                      l2: float) -> tuple[float, np.ndarray]:
    """Objective and gradient of the L2-penalised multinomial logistic regression.

    Parameters
    ----------
    params : ndarray ((n_features + 1) * n_classes,)
        ``coef.ravel()`` (n_features, n_classes) followed by ``intercept`` (n_classes).
    FT : ndarray (n_features, n_samples), float32 or float64
        The features, transposed (C-contiguous: each product reads it in one sweep).
        The two products with it run in its dtype, everything else in float64.
    y : ndarray of int (n_samples,)
    n_classes : int
    l2 : float

    Returns
    -------
    (float, ndarray)
        ``mean_i -log softmax(F_i coef + intercept)[y_i] + l2/2 * ||coef||²`` and its
        gradient with respect to ``params`` (float64).
    """
    d, n = FT.shape
    coef = params[:d * n_classes].reshape(d, n_classes)
    intercept = params[d * n_classes:]
    Z = (coef.T.astype(FT.dtype) @ FT).astype(np.float64, copy=False)  # (C, n)
    Z += intercept[:, None]
    Z -= Z.max(axis=0)
    P = np.exp(Z)
    total = P.sum(axis=0)
    cols = np.arange(n)
    loss = float(np.mean(np.log(total) - Z[y, cols])) + 0.5 * l2 * float(np.sum(coef ** 2))
    P /= total
    P[y, cols] -= 1.0  # n * dLoss/dZ
    grad_coef = (P.astype(FT.dtype) @ FT.T).T / n + l2 * coef
    grad_intercept = P.mean(axis=1)
    return loss, np.concatenate([grad_coef.ravel(), grad_intercept])


def _feature_map(model_or_features, features):
    """A function X -> features, the name of the features, and the model's state.

    A model's features are computed in chunks of rows that Ctrl-C can stop
    (:func:`fastsd._interrupt.map_rows`); a caller's function is called once."""
    obj = model_or_features
    if obj is None:
        return (lambda X: X), "input", None
    if callable(obj) and not hasattr(obj, "weights_"):
        return obj, "custom", None
    fmap, name, state = _model_features(obj, features)
    return (lambda X: map_rows(fmap, X)), name, state


def _model_features(obj, features):
    """:func:`_feature_map` of a model or weights array, on all rows at once."""
    state = model_state(obj)  # validated weights (and thresholds, inhibition) or an error
    model = state.get("model")
    if features is None:
        features = "logit" if hasattr(model, "_logits") else "drive"
    if model is None:
        if features == "response":
            raise ValueError(f"features='response' needs a fitted fastsd model; "
                             f"{state['what']} has none (use features='drive')")
        check_features(obj, features)  # the type, unknown kind or logit error
        return drive_map(state["weights"]), "drive", state
    return feature_map(model, state["state"], features), features, state


def _features(fmap, X, name) -> np.ndarray:
    F = np.asarray(fmap(X), dtype=np.float64)
    if F.ndim != 2 or F.shape[0] != X.shape[0] or F.shape[1] == 0:
        raise ValueError(f"the features of {name} must have shape ({X.shape[0]}, d), got "
                         f"{F.shape}")
    if not np.all(np.isfinite(F)):
        raise ValueError(f"the features of {name} contain NaN or infinite values")
    return F


def linear_probe(model_or_features, x_train, y_train, x_test, y_test, *,
                 features=None, l2=1e-4, max_iter=200) -> ProbeResult:
    """Train a softmax classifier on a model's features of the training set; test it.

    Parameters
    ----------
    model_or_features : fitted model, weights array, callable or None
        A fitted fastsd model: ``"drive"`` and ``"response"``, and ``"logit"`` if its
        rule defines logits (SparseDream, SoftHebb). Another object with ``weights_``,
        or a weights array: ``"drive"`` only. A callable mapping an (n, m) array to
        (n, d) features. None: the raw pixels (a baseline).
    x_train, x_test : array-like (n, m), values in [0, 1]
    y_train, y_test : array-like of int (n,)
        Non-negative integer labels.
    features : {"logit", "response", "drive"} or None, default None
        ``"response"``: the network's response; ``"logit"``:
        the rule's logits, for SparseDream ``a - L p - t`` (``logit(o)`` without
        saturation); ``"drive"``: ``a = W x``. None: ``"logit"`` if the rule defines
        logits, else ``"drive"``. Ignored for a callable or None model.
        On MNIST, ``o`` is ~0 for most neurons and many samples (a sparse code whose
        small values a linear read-out cannot use), so it probes far worse than
        ``"logit"``, the default: the same response on the log-odds scale.
    l2 : float, default 1e-4
        Penalty ``l2/2 * ||coef||²`` added to the mean cross-entropy (>= 0).
    max_iter : int, default 200
        L-BFGS iterations at most.

    Returns
    -------
    ProbeResult
    """
    l2 = check_number("l2", l2, low=0)
    max_iter = check_number("max_iter", max_iter, low=1, integer=True)
    fmap, name, state = _feature_map(model_or_features, features)
    if state is None:
        dtype, n_in = np.dtype(np.float64), None
    else:
        dtype, n_in = state["dtype"], state["weights"].shape[1]
    bound = 1.0 if state is None else state.get("max_input", 1.0)
    x_train = eval_inputs(x_train, dtype, n_in, "x_train", bound)
    x_test = eval_inputs(x_test, dtype, x_train.shape[1], "x_test", bound)
    y_train = check_labels(y_train, x_train.shape[0], name="y_train")
    y_test = check_labels(y_test, x_test.shape[0], name="y_test")
    n_classes = int(max(y_train.max(), y_test.max())) + 1

    with one_blas_thread():
        F = _features(fmap, x_train, "x_train")
        F_test = _features(fmap, x_test, "x_test")
        if F_test.shape[1] != F.shape[1]:
            raise ValueError(f"train and test features differ in width: {F.shape[1]} vs "
                             f"{F_test.shape[1]}")
        mean = F.mean(axis=0)
        scale = F.std(axis=0)
        scale[scale <= 1e-10 * np.maximum(1.0, np.abs(mean))] = 1.0  # constant: stays 0
        F = (F - mean) / scale  # new arrays: F may be the caller's x_train itself
        F_test = (F_test - mean) / scale
        d = F.shape[1]
        FT = np.ascontiguousarray(F.T, dtype=np.float32)
        res = minimize(softmax_loss_grad, np.zeros((d + 1) * n_classes),
                       args=(FT, y_train, n_classes, l2), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter})
        coef = res.x[:d * n_classes].reshape(d, n_classes)
        intercept = res.x[d * n_classes:]
        acc_train = float(np.mean(np.argmax(F @ coef + intercept, axis=1) == y_train))
        acc_test = float(np.mean(np.argmax(F_test @ coef + intercept, axis=1) == y_test))
    return ProbeResult(accuracy=acc_test, train_accuracy=acc_train, n_iter=int(res.nit),
                       converged=bool(res.success), features=name, l2=l2,
                       loss=float(res.fun), coef=coef, intercept=intercept, mean=mean,
                       scale=scale)
