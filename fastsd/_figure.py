"""Input checks and figure plumbing shared by the functions of :mod:`fastsd.plotting`."""
from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
