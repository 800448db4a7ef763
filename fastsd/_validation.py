"""Input checks with messages that name the problem, run before any compiled code.

Numba would otherwise answer bad input with a typing traceback or, worse, a silently
wrong result; everything public goes through these helpers first.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numba import njit

from ._interrupt import deferred_interrupt

#: Labels are class numbers below this (the evaluators' per-class arrays stay small).
MAX_CLASSES = 1000

#: Integers passed to compiled code are int64: larger ones do not fit.
INT64_MAX = int(np.iinfo(np.int64).max)

#: Floating dtypes the kernels are compiled for.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a supported ``np.dtype`` (float32 or float64).

    ``None`` is refused (numpy would read it as float64): say which one.
    """
    if dtype is None:
        raise TypeError("dtype must be 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return dt


def check_number(name: str, value: Any, *, low=None, high=None, low_open=False,
                 high_open=False, integer=False) -> float | int:
    """Check that ``value`` is a real (or integer) number inside the given bounds.

    Bounds are inclusive unless ``low_open``/``high_open``. Booleans are rejected.
    Returns the value as ``float`` (or ``int`` when ``integer``). An integer must fit
    in int64 whatever the bounds, since compiled code receives it as one.
    """
    kind = "an integer" if integer else "a real number"
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, wanted):
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    try:
        value = int(value) if integer else float(value)
    except OverflowError:  # an int beyond float's range
        raise ValueError(f"{name} must be finite, got an integer of "
                         f"{int(value).bit_length()} bits") from None
    if integer and abs(value) > INT64_MAX:
        raise ValueError(f"{name} must be at most {INT64_MAX} in magnitude (int64), got "
                         f"{value}")
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_fits_dtype(name: str, value: float, dtype: np.dtype) -> None:
    """Raise if ``value`` over- or underflows to another sign class in ``dtype``
    (``1e200`` is inf and ``1e-50`` is 0 in float32)."""
    with np.errstate(over="ignore", under="ignore"):
        cast = dtype.type(value)
    if not np.isfinite(cast) or (value > 0) != (cast > 0):
        raise ValueError(f"{name}={value!r} is out of range for {dtype.name}; use "
                         "dtype='float64' or a less extreme value")


def check_random_state(random_state: Any) -> np.random.Generator:
    """Return a ``Generator`` from None, an int seed, or a Generator."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
        raise TypeError("random_state must be None, a non-negative int or a "
                        f"numpy Generator, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be non-negative, got {random_state}")
    return np.random.default_rng(int(random_state))


def check_inputs(X: Any, *, dtype: np.dtype, n_features: int | None = None,
                 name: str = "X", max_value: float | None = 1.0,
                 model: Any = None) -> np.ndarray:
    """Validate a sample matrix and return it as a C-contiguous array of ``dtype``.

    Messages use scikit-learn's wording where its estimator checks look for it
    (complex data, ``Expected 2D array``, ``0 sample(s)``, ``X has N features, but
    ... is expecting M features as input``, ``Negative values in data passed to``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Pixel intensities, non-negative (and at most ``max_value`` unless None). An
        object array is converted to numbers if it holds only numbers.
    dtype : np.dtype
        The model's dtype; ``X`` is converted to it (a copy only if needed).
    n_features : int, optional
        Required number of columns (the model's input size).
    name : str, default "X"
        The argument's name, for messages.
    max_value : float or None, default 1.0
        Largest value allowed (None: no upper bound).
    model : object, optional
        The estimator the data is passed to, named in messages.
    """
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be a 2-D numeric array, got {type(X).__name__}")
    _refuse_sparse(X, name)
    what = "the model" if model is None else type(model).__name__
    arr = np.asarray(X)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers, got dtype object ({exc})") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"Complex data not supported: {name} must be real, got dtype "
                         f"{arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = (" (flatten images to rows, e.g. X.reshape(len(X), -1))" if arr.ndim > 2
                else f": Expected 2D array, got {arr.ndim}D array instead. Reshape your "
                "data either using array.reshape(-1, 1) if it has a single feature or "
                "array.reshape(1, -1) if it is a single sample")
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape "
                         f"{arr.shape}{hint}")
    for axis, what_ in enumerate(("sample", "feature")):
        if arr.shape[axis] == 0:
            raise ValueError(f"{name} is empty: found array with 0 {what_}(s) "
                             f"(shape={arr.shape}) while a minimum of 1 is required.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features but the model expects "
                         f"{n_features}" if model is None else
                         f"{name} has {arr.shape[1]} features, but {what} is expecting "
                         f"{n_features} features as input")
    given = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    # the bound at float32 precision: 0.3 in float32 data or a float32 model is
    # float32(0.3), a hair above 0.3, and stays so when converted to float64
    limit = None if max_value is None else max(max_value, float(np.float32(max_value)))
    high = _finite_nonnegative_max(arr)
    if high is not None:  # the common case, in one pass
        _check_max(name, high, max_value, limit, model)
        return arr
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        if np.isfinite(given[first]):
            raise ValueError(f"{name} has values beyond the range of {np.dtype(dtype).name} "
                             f"(e.g. {float(given[first]):.6g} at index {first})")
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s), "
                         f"first at index {first}")
    low = float(arr.min())
    if low < 0:
        domain = "[0, inf)" if max_value is None else f"[0, {max_value:.9g}]"
        raise ValueError(f"Negative values in data passed to {what}: {name} has "
                         f"negative values (min {low:g}); inputs must be in {domain}")
    _check_max(name, float(arr.max()), max_value, limit, model)
    return arr


def _refuse_sparse(value: Any, name: str) -> None:
    """A scipy sparse matrix or array is refused (numpy would see a 0-d object array)."""
    if type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a scipy sparse {type(value).__name__}; the kernels "
                        f"read dense arrays: densify it first with .toarray()")


def _check_max(name: str, high: float, max_value: float | None, limit: float | None,
               model: Any) -> None:
    if max_value is not None and high > limit:
        hint = " (raw bytes? divide by 255)" if max_value == 1 and high > 1.5 else ""
        if model is not None:
            hint += f"; {type(model).__name__}(max_input=None) accepts larger values"
        raise ValueError(f"{name} has values up to {high:.9g}; pixel intensities must be "
                         f"in [0, {max_value:.9g}]{hint}")


def _finite_nonnegative_max(arr: np.ndarray) -> float | None:
    """The largest value of the contiguous float array ``arr`` if every value is finite
    and ``>= +0.0``, else None (then the caller looks closer, with numpy).

    One vectorised pass over the bits as integers: for floats with the sign bit clear,
    integer order is float order, and inf/NaN are the integers from the exponent mask up
    (three numpy passes, ``isfinite``, ``min`` and ``max``, took 6x longer on MNIST).
    """
    ints, inf_bits = ((np.int32, 0x7F800000) if arr.dtype == np.float32
                      else (np.int64, 0x7FF0000000000000))
    with deferred_interrupt():  # the first call loads the kernel (and Numba's imports)
        lowest, highest = _int_range(arr.reshape(-1).view(ints))
    if lowest < 0 or highest >= inf_bits:
        return None
    return float(np.array(highest, dtype=ints).view(arr.dtype))


@njit(cache=True, nogil=True)
def _int_range(flat):
    lowest = flat[0]
    highest = flat[0]
    for k in range(1, flat.shape[0]):
        x = flat[k]
        lowest = min(lowest, x)
        highest = max(highest, x)
    return lowest, highest


def check_labels(y: Any, n_samples: int, *, name: str = "y") -> np.ndarray:
    """Validate class labels for ``n_samples`` rows; returns them as an int64 array.

    Labels are integers (any integer dtype, or floats with integral values such as
    ``3.0``) in ``[0, MAX_CLASSES)``: the evaluators allocate per-class arrays (up to
    neurons x classes), so a stray huge label would ask for gigabytes. The range is
    checked before any conversion (a uint64 ``2**63`` would wrap to a negative int64).
    """
    _refuse_sparse(y, name)
    if isinstance(y, (str, bytes)) or y is None:
        raise TypeError(f"{name} must be a 1-D array of integer class labels, got "
                        f"{type(y).__name__}")
    arr = np.asarray(y)
    if arr.dtype == object:  # e.g. integers in an object array: numbers if they are
        arr = np.array(arr.tolist())
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels for {n_samples} samples")
    integral = np.issubdtype(arr.dtype, np.integer)
    if not integral and not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"Unknown label type: {name} must hold integer class labels, got "
                        f"dtype {arr.dtype}")
    if not integral and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise TypeError(f"{name} must hold integer class labels, got non-integral "
                        f"values of dtype {arr.dtype}")
    if arr.size:
        low, high = arr.min(), arr.max()  # in arr's own dtype: no wrap-around
        if low < 0:
            raise ValueError(f"{name} has negative labels (min {low})")
        if high >= MAX_CLASSES:
            raise ValueError(f"{name} has label {high}; labels must be class numbers "
                             f"in [0, {MAX_CLASSES})")
    return arr.astype(np.int64, copy=False)


def check_n_classes(n_classes: Any) -> int:
    """``n_classes`` as an int in ``[1, MAX_CLASSES]``."""
    return check_number("n_classes", n_classes, low=1, high=MAX_CLASSES, integer=True)


def check_bool(name: str, value) -> bool:
    """``value`` as a bool; ``TypeError`` naming ``name`` for anything but True/False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)
