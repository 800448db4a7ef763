"""The :class:`Dataset` container and the checks every data set passes on its way in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ._idx import MAX_CLASSES, DataError

__all__ = ["Dataset", "make_dataset"]


@dataclass(frozen=True, repr=False)
class Dataset:
    """An image classification data set with a fixed train/test split.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        ``(n, rows * cols)`` float32 images in ``[0, 1]`` (pixel byte / 255).
    y_train, y_test : numpy.ndarray
        ``(n,)`` int64 labels, non-negative and below ``MAX_CLASSES`` (1 000);
        ``0..9`` for MNIST.
    name : str
        Data set name, e.g. ``"mnist"`` (only for data verified to be MNIST),
        ``"fashion-mnist"``.
    source : str
        Which source the data came from, e.g. ``"cache: /root/.cache/fastsd/mnist.npz"``.
    image_shape : tuple
        ``(rows, cols)``, e.g. ``(28, 28)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    image_shape: tuple

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={self.x_train.shape[0]}, "
                f"test={self.x_test.shape[0]}, image_shape={self.image_shape}, "
                f"source={self.source!r})")


def _images(where: str, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Validate images and return them as (n, pixels) float32 in [0, 1] plus their shape."""
    if x.ndim in (2, 3) and x.shape[0] == 0:
        raise DataError(f"{where}: holds no images (0 samples)")
    if x.ndim == 3 and x.shape[1] and x.shape[2]:
        shape = tuple(int(s) for s in x.shape[1:])
    elif x.ndim == 2 and x.shape[1] and int(np.sqrt(x.shape[1])) ** 2 == x.shape[1]:
        side = int(np.sqrt(x.shape[1]))
        shape = (side, side)
    else:
        raise DataError(f"{where}: images must have shape (n, rows, cols) or (n, side**2) "
                        f"with at least one pixel, got {x.shape}")
    x = x.reshape(x.shape[0], -1)
    if x.dtype.kind in "iu":
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{where}: integer pixel values outside 0-255")
        # float32 division of exact integers is correctly rounded: exactly byte / 255
        return np.divide(x, np.float32(255), dtype=np.float32), shape
    if x.dtype.kind == "f":
        if not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
            raise DataError(f"{where}: float pixel values outside [0, 1]")
        return x.astype(np.float32), shape
    raise DataError(f"{where}: images have unsupported dtype {x.dtype}")


def _labels(where: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels have non-integer dtype {y.dtype}")
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if y.shape[0] != n:
        raise DataError(f"{where}: image/label count mismatch: {y.shape[0]} labels for "
                        f"{n} images")
    if y.size and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise DataError(f"{where}: labels must be in 0..{MAX_CLASSES - 1} (found "
                        f"{y.min()}..{y.max()})")
    return y.astype(np.int64)


def make_dataset(arrays: Mapping[str, np.ndarray], *, name: str, source: str,
                 where: str) -> Dataset:
    """Check ``arrays`` (``x_train``, ``y_train``, ``x_test``, ``y_test``) and build a
    :class:`Dataset`; every problem raises :class:`DataError` naming ``where``."""
    xtr, shape = _images(f"{where} (x_train)", np.asarray(arrays["x_train"]))
    xte, shape_te = _images(f"{where} (x_test)", np.asarray(arrays["x_test"]))
    if shape != shape_te:
        raise DataError(f"{where}: train images are {shape} but test images are {shape_te}")
    ytr = _labels(f"{where} (y_train)", np.asarray(arrays["y_train"]), xtr.shape[0])
    yte = _labels(f"{where} (y_test)", np.asarray(arrays["y_test"]), xte.shape[0])
    return Dataset(xtr, ytr, xte, yte, name=name, source=source, image_shape=shape)
