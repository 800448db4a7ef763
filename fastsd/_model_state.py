"""The model's side of an evaluation: its validated weights and state, the rule's own
hooks, and inputs in the dtype the evaluation kernels read.

Shared by the WTA evaluators (:mod:`fastsd.evaluate`) and the linear probe
(:mod:`fastsd.probe`).
"""
from __future__ import annotations

import numpy as np

from ._validation import check_inputs


def model_state(model_or_weights) -> dict:
    """Validated weights and dtype of a model or weights array, with the model and its
    checked state for the scores a rule defines itself (see :func:`is_model`), and the
    largest input value accepted (``max_input``: a fastsd model's own, else 1)."""
    obj = model_or_weights
    if is_model(obj):
        params = obj._check_params()
        dtype = np.dtype(params["dtype"])
        max_input = obj._max_input() if hasattr(obj, "_max_input") else 1.0
        state = obj._checked_state(params["n_neurons"], dtype)
        return {"weights": state["weights_"], "dtype": dtype,
                "what": f"a {type(obj).__name__}", "model": obj, "state": state,
                "max_input": max_input}
    if hasattr(obj, "weights_"):
        what = f"a {type(obj).__name__}"
        raw = getattr(obj, "weights_")
        if raw is None:
            raise ValueError(f"{what} has no weights_ yet; fit it first")
        dtype = np.dtype(np.float32) if np.asarray(raw).dtype == np.float32 \
            else np.dtype(np.float64)
        W = _weights_array(raw, dtype, f"{type(obj).__name__}.weights_")
        return {"weights": W, "dtype": dtype, "what": what}
    if obj is None or isinstance(obj, (str, bytes, dict)):
        raise TypeError("model_or_weights must be a fitted model (with weights_) or a "
                        f"2-D weights array, got {type(obj).__name__}")
    return {"weights": _weights_array(obj, np.dtype(np.float64), "weights"),
            "dtype": np.dtype(np.float64), "what": "a weights array"}


def is_model(obj) -> bool:
    """Whether ``obj`` follows the model protocol the evaluators read: ``weights_``
    (the prototypes, first state attribute), ``_check_params()`` and
    ``_checked_state(n_neurons, dtype)``; optionally ``_winners(state, X)`` (the
    ``"response"`` score) and ``_logits(state, X)`` (the probe's ``"logit"``)."""
    return (not isinstance(obj, type) and hasattr(obj, "_checked_state")
            and hasattr(obj, "_check_params"))


def rule_hook(state, name: str):
    """The rule's own ``name`` method (``_winners``, ``_logits``) or None."""
    model = state.get("model")
    return getattr(model, name, None) if model is not None else None


def _weights_array(value, dtype, name) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype == np.bool_ or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real float array, got dtype {arr.dtype}")
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_neurons, n_features), "
                         f"got shape {arr.shape}")
    return _finite(name, np.ascontiguousarray(arr, dtype=dtype))


def _finite(name, arr) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def eval_inputs(x, dtype, n_features, name, max_input: float | None = 1.0) -> np.ndarray:
    """``x`` checked (values in [0, ``max_input``], None: no upper bound); in ``dtype``,
    or float32 if it already is (converted exactly later)."""
    if getattr(x, "dtype", None) == np.float32:
        dtype = np.dtype(np.float32)
    return check_inputs(x, dtype=dtype, n_features=n_features, name=name,
                        max_value=max_input)
