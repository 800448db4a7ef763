"""The data of a sweep: the four arrays, validated, a fingerprint of them, and the
split that runs train on and are scored on.

A results file belongs to one data set; the fingerprint (``hash``) in every record
lets a resumed sweep refuse to mix runs made on different data.

By default (``evaluate="validation"``) runs train on the training set less its last
``validation`` images and are scored on those; the test set stays on the client. With
``evaluate="test"`` they train on the whole training set and are scored on the test set.
"""
from __future__ import annotations

import hashlib
import numbers
import os
from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import check_inputs, check_labels

#: The arrays of a data set, in the order runs receive them.
_SPLITS = ("x_train", "y_train", "x_test", "y_test")

#: What a sweep's runs can be scored on (``sweep(evaluate=...)``).
EVALUATE = ("validation", "test")

#: Images held out for validation by default: the last sixth of the training set
#: (10 000 of MNIST's 60 000).
DEFAULT_VALIDATION = 1 / 6


def _own_dtype(x) -> np.dtype:
    """float32 and float64 images keep their dtype; others become float64."""
    dt = np.asarray(x).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _load_data(data) -> tuple[tuple[np.ndarray, ...], dict]:
    """(x_train, y_train, x_test, y_test) validated; and a fingerprint.

    Images keep their dtype if float32 or float64 (MNIST is float32: half the bytes to
    send); workers convert them once to the models' dtype
    (:func:`fastsd.sweep.task._as_dtype`).

    Parameters
    ----------
    data : None, path, Dataset, dict or tuple
        ``None`` or a path: MNIST (``load_mnist(data)``); an object with the
        attributes, or a dict with the keys, ``x_train, y_train, x_test, y_test``; or
        those four arrays.

    Returns
    -------
    arrays : tuple of ndarray
        ``(x_train, y_train, x_test, y_test)``.
    info : dict
        ``name, n_train, n_test, n_features`` and ``hash`` (hex digest of the data).
    """
    name = "arrays"
    if data is None or isinstance(data, (str, os.PathLike)):
        from ..datasets import load_mnist
        data = load_mnist(data, progress=False)
    if all(hasattr(data, a) for a in _SPLITS):
        name = getattr(data, "name", "dataset")
        arrays = tuple(getattr(data, a) for a in _SPLITS)
    elif isinstance(data, Mapping):
        missing = [k for k in _SPLITS if k not in data]
        if missing:
            raise ValueError(f"data is missing {missing}")
        arrays = tuple(data[k] for k in _SPLITS)
    elif isinstance(data, Sequence) and len(data) == 4:
        arrays = tuple(data)
    else:
        raise TypeError("data must be None (MNIST), a path, a Dataset, a dict or a tuple "
                        "(x_train, y_train, x_test, y_test)")

    x_train = check_inputs(arrays[0], dtype=_own_dtype(arrays[0]), name="x_train")
    x_test = check_inputs(arrays[2], dtype=_own_dtype(arrays[2]),
                          n_features=x_train.shape[1], name="x_test")
    y_train = check_labels(arrays[1], x_train.shape[0], name="y_train")
    y_test = check_labels(arrays[3], x_test.shape[0], name="y_test")
    h = hashlib.blake2b(digest_size=8)
    for a in (x_train.astype(np.float32, copy=False), y_train, x_test.astype(
            np.float32, copy=False), y_test):
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1))
    info = {"name": str(name), "n_train": int(x_train.shape[0]),
            "n_test": int(x_test.shape[0]), "n_features": int(x_train.shape[1]),
            "hash": h.hexdigest()}
    return (x_train, y_train, x_test, y_test), info


# ------------------------------------------------------------------------------ split
def _check_split(evaluate, validation) -> tuple[str, int | float]:
    """``evaluate`` and ``validation`` checked (type and range) before any data is loaded.

    Parameters
    ----------
    evaluate : str
        ``"validation"`` or ``"test"``.
    validation : int or float
        Images held out of the training set: a count (int >= 1) or a fraction of it
        (float in (0, 1)). Checked even with ``evaluate="test"``, which ignores it.

    Returns
    -------
    evaluate : str
    validation : int or float
        As plain Python values.

    Raises
    ------
    ValueError, TypeError
        Naming the bad value.
    """
    if not isinstance(evaluate, str) or evaluate not in EVALUATE:
        raise ValueError(f"evaluate must be 'validation' or 'test', got {evaluate!r}")
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise TypeError("validation must be a count of images (int) or a fraction of the "
                        f"training set (float in (0, 1)), got {validation!r}")
    if isinstance(validation, numbers.Integral):
        if validation < 1:
            raise ValueError(f"validation={validation}: a count of validation images "
                             "must be >= 1")
        return evaluate, int(validation)
    if not 0 < validation < 1:  # NaN fails too
        raise ValueError(f"validation={validation!r}: a fraction of the training set must "
                         "be in (0, 1) (give a count of images as an int)")
    return evaluate, float(validation)


def _n_validation(validation: int | float, n_train: int) -> int:
    """Images to hold out of ``n_train``: a count as given, a fraction rounded to the
    nearest int; at least 1, and at least 1 image left to train on."""
    if isinstance(validation, numbers.Integral):
        n_val, given = int(validation), f"validation={validation}"
    else:
        n_val = round(validation * n_train)
        given = f"validation={validation:g} ({n_val} of the {n_train} training images)"
    if n_val < 1:
        raise ValueError(f"{given} holds out no image; the validation split needs at "
                         "least 1")
    if n_val >= n_train:
        raise ValueError(f"{given} leaves no image to train on: the training set has "
                         f"{n_train} images; hold out at most {n_train - 1}")
    return n_val


def _split(arrays: tuple[np.ndarray, ...], info: Mapping, evaluate: str,
           validation: int | float) -> tuple[tuple[np.ndarray, ...], dict]:
    """The arrays runs receive and the ``data`` info of their records.

    Parameters
    ----------
    arrays : tuple of ndarray
        ``(x_train, y_train, x_test, y_test)`` from :func:`_load_data`.
    info : dict
        Its info.
    evaluate, validation
        As checked by :func:`_check_split`.

    Returns
    -------
    arrays : tuple of ndarray
        ``(x_fit, y_fit, x_eval, y_eval)``: with ``"validation"``, the training set
        less its last ``validation`` images, then those images (the test set is not
        among them); with ``"test"``, the four arrays as given.
    info : dict
        ``info`` with ``n_train`` (images trained on), ``n_eval`` (images scored) and
        ``split`` (``"test"`` or ``"validation: last V of N training images"``).
    """
    if evaluate == "test":
        return tuple(arrays), {**info, "n_eval": info["n_test"], "split": "test"}
    x_train, y_train = arrays[0], arrays[1]
    n = int(x_train.shape[0])
    cut = n - _n_validation(validation, n)
    split = f"validation: last {n - cut} of {n} training images"
    return ((x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:]),
            {**info, "n_train": cut, "n_eval": n - cut, "split": split})


def _describe_split(evaluated_on: str, split: str) -> str:
    """What runs were scored on, for headers and messages.

    Parameters
    ----------
    evaluated_on : str
        A record's ``evaluated_on`` (``"validation"`` or ``"test"``).
    split : str
        Its ``data["split"]``.

    Returns
    -------
    str
        ``"the test set"`` or ``"the validation split (last V of N training images)"``.
    """
    if evaluated_on == "test":
        return "the test set"
    detail = split.partition(": ")[2] or split
    return f"the {evaluated_on} split ({detail})"
