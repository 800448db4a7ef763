"""The data of a sweep: the four arrays, validated, and a fingerprint of them.

A results file belongs to one data set; the fingerprint (``hash``) in every record
lets a resumed sweep refuse to mix runs made on different data.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import check_inputs, check_labels

#: The arrays of a data set, in the order runs receive them.
_SPLITS = ("x_train", "y_train", "x_test", "y_test")


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
