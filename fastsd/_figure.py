"""Input checks and figure plumbing shared by the functions of :mod:`fastsd.plotting`."""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fastsd._io import atomic_open

_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
_NO_DATE = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _pair(name, value):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of ints, got {value!r}")
    return _positive_int(f"{name}[0]", value[0]), _positive_int(f"{name}[1]", value[1])


def _image_shape(image_shape, n_pixels):
    """``image_shape`` checked, or the square one of ``n_pixels`` if None."""
    if image_shape is not None:
        return _pair("image_shape", image_shape)
    side = math.isqrt(n_pixels)
    if side * side != n_pixels or side == 0:
        raise ValueError(f"weights have {n_pixels} pixels per neuron, not a square number: "
                         "pass image_shape=(rows, cols)")
    return side, side


def _real_array(name, a, ndim, allow_nan=False):
    """Float64 copy of ``a``: TypeError if not real numbers, ValueError if ndim or inf/NaN."""
    arr = np.asarray(a)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        what = "inf" if allow_nan else "non-finite (NaN or inf)"
        raise ValueError(f"{name} contains {int(bad.sum())} {what} value(s)")
    return arr


def _counts(name, a, ndim):
    arr = _real_array(name, a, ndim)
    if (arr < 0).any():
        raise ValueError(f"{name} contains {int((arr < 0).sum())} negative count(s)")
    if (arr != np.round(arr)).any():
        raise ValueError(f"{name} must hold whole-number counts")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def _names(class_names, n):
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} entries, expected {n}")
    return names


def _check_output(path, dpi):
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not dpi > 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be str or path-like, got {type(path).__name__}")
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"path must end in .png, .pdf or .svg, got {os.fspath(path)!r}")
    return fmt


#: Tapestry size: inches per tile up to 10 columns (shrinking as ``cols ** -0.4``
#: beyond), the bounds of the mosaic's longer side, and the smallest tile that gets a label.
_TILE_INCHES = 0.6
_MOSAIC_INCHES = (2.5, 14.0)
_LABELLED_TILE_INCHES = 0.4
_SEPARATOR = "0.55"  # colour of the separators between tiles (mid grey)


def _tapestry_inches(cols, height, width):
    """Width and height (inches) of the mosaic of a tapestry with ``cols`` columns whose
    image has ``height`` x ``width`` pixels: 0.6 in per tile up to 10 columns, then
    ``0.6 * (10 / cols) ** 0.4`` (20 columns 9.1 in, 40 columns 13.8 in), the width
    within 2.5-14 in and the height at most 14 in, so the figure stays bounded for any N
    while tiles shrink slowly (a 28-pixel tile still gets ~26 device pixels at 80
    columns and 150 dpi)."""
    per_tile = _TILE_INCHES * min(1.0, (10.0 / cols) ** 0.4)
    img_w = float(np.clip(per_tile * cols, *_MOSAIC_INCHES))
    img_h = img_w * height / width
    if img_h > _MOSAIC_INCHES[1]:  # tall grids: limit the height instead
        img_w, img_h = img_w * _MOSAIC_INCHES[1] / img_h, _MOSAIC_INCHES[1]
    return img_w, img_h


def _figure(figsize, dpi):
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path, fmt, dpi, title):
    if title is not None:
        fig.suptitle(str(title))
    if path is not None:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi, metadata=_NO_DATE[fmt])
    return fig


def _tile_labels(labels, n):
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (Sequence, np.ndarray)):
        raise TypeError("labels must be a sequence with one int or None per neuron")
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries, expected one per neuron ({n})")
    for i, lab in enumerate(labels):
        if not (lab is None or isinstance(lab, str) or isinstance(lab, numbers.Integral)
                and not isinstance(lab, (bool, np.bool_))):
            raise TypeError(f"labels[{i}] must be int, str or None, got {lab!r}")
    return ["\u2013" if lab is None else str(lab) for lab in labels]


def _tile_separators(ax, n, cols, tile_shape, pad, width):
    """Grey behind the occupied cells of a tapestry drawn on ``ax`` (the separators show
    through its NaN gaps; empty cells stay blank). Nothing if ``pad`` is 0."""
    (h, wd), (full, rest) = tile_shape, divmod(n, cols)
    if not pad:
        return
    if full:
        ax.add_patch(Rectangle((-0.5, -0.5), width, full * (h + pad) - pad, lw=0,
                               fc=_SEPARATOR, zorder=-1))
    if rest:
        ax.add_patch(Rectangle((-0.5, full * (h + pad) - pad - 0.5),
                               rest * (wd + pad) - pad, h + pad, lw=0, fc=_SEPARATOR,
                               zorder=-1))


def _tile_text(ax, text, cols, tile_shape, pad, tile_inches):
    """Each tile's label small in its top-left corner, if tiles are at least
    ``_LABELLED_TILE_INCHES`` on their shorter side, ``tile_inches`` (on smaller ones
    labels would hide the weights)."""
    if tile_inches < _LABELLED_TILE_INCHES:
        return
    h, wd = tile_shape
    size = float(np.clip(0.22 * 72.0 * tile_inches, 3.0, 8.0))  # ~22% of the shorter side
    for i, s in enumerate(text):
        ax.text((wd + pad) * (i % cols) + 0.5, (h + pad) * (i // cols) + 0.5, s,
                fontsize=size, ha="left", va="top", color="black",
                bbox=dict(boxstyle="square,pad=0.12", fc="white", ec="none", alpha=0.75))
