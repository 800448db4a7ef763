"""Paper-ready figures: weight tapestries, learning curves, confusion matrices, sweeps.

Figures are stand-alone :class:`matplotlib.figure.Figure` objects on a
``FigureCanvasAgg``; pyplot is never used, so no display is needed and no global
matplotlib state is touched. Every ``plot_*`` function returns its figure and takes
``path`` (str or path-like, optional: write the figure there atomically with
:func:`fastsd._io.atomic_open`, format ``.png``, ``.pdf`` or ``.svg`` from the suffix),
``title`` (str, optional) and ``dpi`` (default 150; a PNG has ``figsize * dpi`` pixels).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap, PowerNorm
from numpy.typing import ArrayLike

from fastsd._figure import (
    _check_output, _counts, _figure, _finish, _image_shape, _names, _pair, _positive_int,
    _real_array, _tapestry_inches, _tile_labels, _tile_separators, _tile_text,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Where a figure may be written: a path whose suffix names the format, or None.
_OutputPath = str | os.PathLike | None

__all__ = ["grid_shape", "tapestry", "plot_weights", "plot_learning_curve",
           "plot_confusion", "plot_class_errors", "plot_param_curve"]


# ----------------------------------------------------------------------------- tapestry
def grid_shape(n_neurons: int, grid: tuple[int, int] | None = None,
               tile_shape: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Rows and columns of the tile grid for ``n_neurons`` (>= 1) tiles.

    Parameters
    ----------
    n_neurons : int
    grid : (int, int), optional
        Requested ``(rows, cols)``; ValueError if it has fewer than ``n_neurons`` cells,
        or more than ``n_neurons`` rows or columns.
    tile_shape : (int, int), default (1, 1)
        Height and width of one tile (the image shape), so that grids of tall or wide
        images are laid out by the shape of the whole mosaic.

    Returns
    -------
    (int, int)
        ``(rows, cols)``; without ``grid`` the shape whose mosaic is between square and
        twice as wide as tall (``rows * h <= cols * w <= 2 * rows * h``) with the
        fewest empty cells, squarest on a tie (square tiles: 100 -> 10x10, 40 -> 5x8;
        12 tiles of 8x64 pixels -> 12x1). If no grid fits that band, the one closest
        to it.
    """
    n = _positive_int("n_neurons", n_neurons)
    if grid is not None:
        rows, cols = _pair("grid", grid)
        if rows * cols < n:
            raise ValueError(f"grid {rows}x{cols} has {rows * cols} cells, too small "
                             f"for {n} neurons")
        if max(rows, cols) > n:
            raise ValueError(f"grid {rows}x{cols} has more rows or columns than the {n} "
                             "neurons (whole rows or columns would stay empty)")
        return rows, cols
    h, w = _pair("tile_shape", tile_shape)
    best = None
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        wide = math.log(cols * w / (rows * h))  # log of the mosaic's width / height
        outside = max(0.0, -wide, wide - math.log(2.0))
        key = (outside, rows * cols - n, abs(wide))
        if best is None or key < best[0]:
            best = (key, (rows, cols))
    return best[1]


def tapestry(weights: ArrayLike, image_shape: tuple[int, int] | None = None,
             grid: tuple[int, int] | None = None, pad: int = 1) -> np.ndarray:
    """Arrange each neuron's weight vector as an image tile of one mosaic.

    Parameters
    ----------
    weights : array_like, shape (N, m)
        One finite row per neuron, ``m == h * w`` pixels in row-major order.
    image_shape : (int, int), optional
        Tile height ``h`` and width ``w`` (any size, e.g. ``(20, 30)``); default square,
        ``h = w = sqrt(m)`` (ValueError if ``m`` is not a square number).
    grid : (int, int), optional
        ``(rows, cols)``, default :func:`grid_shape` for tiles of this shape.
    pad : int, default 1
        Width of the separators between tiles (no outer border).

    Returns
    -------
    numpy.ndarray, shape (rows*h + (rows-1)*pad, cols*w + (cols-1)*pad)
        Neuron ``i`` at grid row ``i // cols``, column ``i % cols``; separators and
        unused cells are NaN so they render as background.
    """
    w = _real_array("weights", weights, 2)
    h, wd = _image_shape(image_shape, w.shape[1])
    if w.shape[0] == 0 or w.shape[1] != h * wd:
        raise ValueError(f"weights has shape {w.shape} but needs N >= 1 rows of "
                         f"{h}x{wd} = {h * wd} pixels (image_shape)")
    pad = _positive_int("pad", pad, minimum=0)
    rows, cols = grid_shape(w.shape[0], grid, (h, wd))
    out = np.full((rows * h + (rows - 1) * pad, cols * wd + (cols - 1) * pad), np.nan)
    for i, row in enumerate(w):
        y, x = (h + pad) * (i // cols), (wd + pad) * (i % cols)
        out[y:y + h, x:x + wd] = row.reshape(h, wd)
    return out


def plot_weights(weights: ArrayLike, path: _OutputPath = None, *,
                 image_shape: tuple[int, int] | None = None,
                 grid: tuple[int, int] | None = None, title: str | None = None,
                 cmap: str | Colormap | None = None, dpi: int = 150,
                 labels: Sequence[int | None] | None = None, pad: int = 1,
                 scale: str | None = None) -> Figure:
    """Draw the weight tapestry (see :func:`tapestry`) with a colour bar.

    Parameters
    ----------
    weights, image_shape, grid, pad
        As for :func:`tapestry`.
    path, title, dpi
        See the module docstring.
    cmap : str or Colormap, optional
        Default ``"Greys"`` over ``[0, max]`` if all weights are >= 0 (SparseDream),
        else ``"bwr"`` symmetric around 0 (Krotov-Hopfield); these limits are kept.
    labels : sequence of (int or None), optional
        One per neuron (e.g. its WTA class), drawn small in the tile's top-left
        corner; None shows as an en dash. Drawn only on tiles at least 0.4 inch on
        their shorter side (square tiles: up to 25 columns, e.g. N = 625): on smaller
        tiles they would hide the weights.
    scale : {"global", "tile"}, optional
        "tile" divides each neuron's weights by its largest magnitude, so prototypes of
        very different sizes all show (the colour bar then reads relative weight).
        Default: "global" for non-negative weights, "tile" for signed ones (one
        untrained unit with large random weights would otherwise wash out the rest).

    Returns
    -------
    matplotlib.figure.Figure
        Tiles of 0.6 inch up to 10 columns, then slowly smaller, the mosaic at most 14
        inches on its longer side (see ``fastsd._figure._tapestry_inches``): 20x20
        tiles 9.1 in, 40x40 tiles 13.8 in wide; no ticks, thin separators.
    """
    fmt = _check_output(path, dpi)
    mosaic = tapestry(weights, image_shape, grid, pad)  # validates everything
    signed = bool(np.nanmin(mosaic) < 0)
    scale = ("tile" if signed else "global") if scale is None else scale
    if scale not in ("global", "tile"):
        raise ValueError(f"scale must be 'global' or 'tile', got {scale!r}")
    if scale == "tile":
        w = np.asarray(weights, dtype=np.float64)
        peak = np.abs(w).max(axis=1, keepdims=True)
        mosaic = tapestry(np.divide(w, peak, out=np.zeros_like(w), where=peak > 0),
                          image_shape, grid, pad)
    n = np.shape(weights)[0]
    h, wd = _image_shape(image_shape, np.shape(weights)[1])
    rows, cols = grid_shape(n, grid, (h, wd))
    text = None if labels is None else _tile_labels(labels, n)
    lo, hi = float(np.nanmin(mosaic)), float(np.nanmax(mosaic))
    if lo >= 0:
        vmin, vmax, default = 0.0, (hi if hi > 0 else 1.0), "Greys"
    else:
        vmax = max(-lo, hi)
        vmin, default = -vmax, "bwr"
    cmap = default if cmap is None else cmap
    if isinstance(cmap, str):
        cmap = colormaps[cmap]
    elif not isinstance(cmap, Colormap):
        raise TypeError(f"cmap must be a colormap name or Colormap, got {cmap!r}")
    cmap = cmap.with_extremes(bad=(0, 0, 0, 0))  # NaN: show what lies behind

    H, W = mosaic.shape
    img_w, img_h = _tapestry_inches(cols, H, W)
    fig = _figure((img_w + 1.1, img_h + (0.45 if title is not None else 0.15)), dpi)
    ax = fig.add_subplot()
    im = ax.imshow(mosaic, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal",
                   interpolation="nearest" if img_w * dpi >= W else "auto")
    ax.set_axis_off()
    _tile_separators(ax, n, cols, (h, wd), pad, W)
    # a bar ~0.15 in wide and as tall as the mosaic, whatever the grid's shape
    cb = fig.colorbar(im, ax=ax, fraction=0.2 / img_w, pad=0.02, aspect=img_h / 0.15)
    cb.set_label("weight" if scale == "global" else "weight / largest |weight| of its tile")
    cb.ax.tick_params(labelsize=8)
    if text is not None:
        _tile_text(ax, text, cols, (h, wd), pad, img_w / cols * min(1.0, h / wd))
    return _finish(fig, path, fmt, dpi, title)


# ----------------------------------------------------------------------------- curves
def plot_learning_curve(history: Mapping, path: _OutputPath = None, *, title: str | None = None,
                        dpi: int = 150) -> Figure:
    """Test accuracy (%) against training samples seen and against training time.

    Parameters
    ----------
    history : mapping
        Equal-length 1-D sequences ``"samples"`` (samples seen, >= 0), ``"seconds"``
        (training time, >= 0) and ``"accuracy"`` (fraction in [0, 1], NaN where no
        evaluation was made; such points are skipped).
    path, title, dpi
        See the module docstring.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fmt = _check_output(path, dpi)
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a mapping, got {type(history).__name__}")
    keys = ("samples", "seconds", "accuracy")
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"history is missing key(s) {missing}; needs {list(keys)}")
    cols = {k: _real_array(f"history[{k!r}]", history[k], 1, allow_nan=k == "accuracy")
            for k in keys}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1 or not lengths["samples"]:
        raise ValueError(f"history sequences must be non-empty and of equal length, "
                         f"got lengths {lengths}")
    acc = cols["accuracy"]
    for k, bad in (("samples", cols["samples"] < 0), ("seconds", cols["seconds"] < 0),
                   ("accuracy", (acc < 0) | (acc > 1))):
        if bad.any():
            raise ValueError(f"history[{k!r}] has {int(bad.sum())} value(s) out of range"
                             + (" [0, 1] (percent?)" if k == "accuracy" else " (< 0)"))
    ok = ~np.isnan(acc)
    fig = _figure((8.0, 3.4 if title is None else 3.7), dpi)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, xlabel in ((axes[0], "samples", "training samples seen"),
                            (axes[1], "seconds", "training time (s)")):
        ax.plot(cols[key][ok], 100.0 * acc[ok], "o-", ms=4, lw=1.5)
        ax.set(xlabel=xlabel, xlim=(0, None))
        ax.grid(True, alpha=0.35)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    axes[0].set_ylabel("test accuracy (%)")
    return _finish(fig, path, fmt, dpi, title)


def plot_confusion(confusion: ArrayLike, path: _OutputPath = None, *,
                   class_names: Sequence[str] | None = None, normalize: bool = True,
                   title: str | None = None, dpi: int = 150) -> Figure:
    """Heat-map of a confusion matrix, cells annotated (for C <= 30).

    Parameters
    ----------
    confusion : array_like of int, shape (C, C)
        ``confusion[t, p]`` counts samples of true class ``t`` predicted as ``p``.
    path, title, dpi
        See the module docstring.
    class_names : sequence of str, optional
        Tick labels, default ``0 .. C-1``.
    normalize : bool, default True
        Show percent of each true class (empty rows stay blank), else counts. The
        colour scale is square-root so small confusions stay visible.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fmt = _check_output(path, dpi)
    cm = _counts("confusion", confusion, 2)
    if cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {cm.shape}")
    c = cm.shape[0]
    names = _names(class_names, c)
    if normalize:
        tot = cm.sum(axis=1, keepdims=True)
        vals = 100.0 * cm / np.where(tot > 0, tot, np.nan)
        vmax, cblabel = 100.0, "% of true class"
    else:
        vals, vmax, cblabel = cm, max(float(cm.max()), 1.0), "count"
    cmap = colormaps["Blues"].with_extremes(bad="white")
    side = float(np.clip(0.45 * c + 1.0, 3.0, 7.0))
    fig = _figure((side + 1.0, side + (0.3 if title is not None else 0.0)), dpi)
    ax = fig.add_subplot()
    im = ax.imshow(vals, cmap=cmap, norm=PowerNorm(0.5, vmin=0.0, vmax=vmax),
                   interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label=cblabel)
    if normalize:
        cb.set_ticks([0, 1, 5, 10, 25, 50, 75, 100])
    ax.set_xticks(range(c), names, rotation=90 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(c), names)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.tick_params(length=0)
    for (t, p), v in np.ndenumerate(vals if c <= 30 else np.empty((0, 0))):
        if not np.isnan(v):
            s = f"{v:.1f}" if normalize and 0 < v < 9.95 else f"{v:.0f}"
            r, g, b, _ = cmap(im.norm(v))
            dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5  # relative luminance
            ax.text(p, t, s, ha="center", va="center", fontsize=np.clip(70.0 / c, 4, 9),
                    color="white" if dark else "black")
    return _finish(fig, path, fmt, dpi, title)


def plot_class_errors(misclassified: ArrayLike, totals: ArrayLike | None = None,
                      path: _OutputPath = None, *, class_names: Sequence[str] | None = None,
                      title: str | None = None, dpi: int = 150) -> Figure:
    """Bar chart of misclassified samples, or error rate (%), per true class.

    Parameters
    ----------
    misclassified : array_like of int, shape (C,)
        Misclassified samples of each true class.
    totals : array_like of int, shape (C,), optional
        Samples of each true class; if given, bars show the error rate in percent
        ("n/a" for classes without samples).
    path, title, dpi
        See the module docstring.
    class_names : sequence of str, optional
        Tick labels, default ``0 .. C-1``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fmt = _check_output(path, dpi)
    mis = _counts("misclassified", misclassified, 1)
    c = mis.shape[0]
    names = _names(class_names, c)
    vals, ylabel, fmt_v = mis, "misclassified samples", "{:.0f}"
    if totals is not None:
        tot = _counts("totals", totals, 1)
        if tot.shape != mis.shape:
            raise ValueError(f"totals has {tot.shape[0]} entries, misclassified has {c}")
        if (mis > tot).any():
            raise ValueError("misclassified exceeds totals for class(es) "
                             f"{np.flatnonzero(mis > tot).tolist()}")
        vals = 100.0 * mis / np.where(tot > 0, tot, np.nan)
        ylabel, fmt_v = "error rate (%)", "{:.1f}"
    fig = _figure((float(np.clip(0.45 * c + 1.5, 4.0, 9.0)), 3.4), dpi)
    ax = fig.add_subplot()
    bars = ax.bar(np.arange(c), np.nan_to_num(vals), color="tab:blue", width=0.7)
    if c <= 30:
        ax.bar_label(bars, ["n/a" if np.isnan(v) else fmt_v.format(v) for v in vals],
                     padding=2, fontsize=8)
    ax.set_xticks(range(c), names, rotation=90 if max(map(len, names)) > 3 else 0)
    top = float(np.nanmax(vals)) if np.isfinite(vals).any() else 0.0
    ax.set(xlabel="true class", ylabel=ylabel, xlim=(-0.6, c - 0.4),
           ylim=(0, 1.15 * top if top > 0 else 1.0))
    ax.grid(True, axis="y", alpha=0.35)
    ax.set_axisbelow(True)
    return _finish(fig, path, fmt, dpi, title)


def plot_param_curve(x: ArrayLike, mean: ArrayLike | Mapping[str, ArrayLike],
                     sd: ArrayLike | Mapping[str, ArrayLike] | None,
                     path: _OutputPath = None, *, xlabel: str, ylabel: str = "accuracy (%)",
                     logx: bool = False, label: str | None = None, title: str | None = None,
                     dpi: int = 150) -> Figure:
    """Mean +- standard deviation against one hyper-parameter.

    Parameters
    ----------
    x : array_like of float, shape (K,)
        Parameter values.
    mean : array_like of shape (K,), or dict label -> array_like
        Plotted as given (pass percent for the default ``ylabel``); NaN marks a missing
        point. A dict gives one series per entry, dodged sideways by ~1% of the axis.
    sd : array_like of shape (K,), dict with the same keys as ``mean``, or None
        Error-bar half-widths (>= 0); None draws no error bars.
    xlabel, ylabel : str
        Axis labels (with units).
    logx : bool, default False
        Logarithmic x axis (``x > 0`` only).
    label : str, optional
        Legend entry of a single series.
    path, title, dpi
        See the module docstring.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fmt = _check_output(path, dpi)
    pos = _real_array("x", x, 1)
    if pos.size == 0 or (logx and (pos <= 0).any()):
        raise ValueError("x must be non-empty" + (" and > 0 for logx" if logx else ""))
    series: list[tuple[str | None, Any, Any]]  # (name, mean, sd) as given
    if isinstance(mean, Mapping):
        if not mean or not (sd is None or isinstance(sd, Mapping) and set(sd) == set(mean)):
            raise ValueError("mean must be a non-empty dict and sd None or a dict with the "
                             "same keys")
        series = [(str(k), mean[k], None if sd is None else sd[k]) for k in mean]
    elif isinstance(sd, Mapping):
        raise TypeError("sd is a dict but mean is not")
    else:
        series = [(label, mean, sd)]
    checked: list[tuple[str | None, np.ndarray, np.ndarray | None]] = []
    for name, given_mean, given_sd in series:
        tag = "" if name is None else f"[{name!r}]"
        mu = _real_array(f"mean{tag}", given_mean, 1, allow_nan=True)
        s = None if given_sd is None else _real_array(f"sd{tag}", given_sd, 1, allow_nan=True)
        for what, a in (("mean", mu), ("sd", s)):
            if a is not None and a.shape != pos.shape:
                raise ValueError(f"{what}{tag} has {a.size} values, x has {pos.size}")
        if s is not None and (s < 0).any():
            raise ValueError(f"sd{tag} contains negative values")
        checked.append((name, mu, s))
    fig = _figure((5.0, 3.6 if title is None else 3.9), dpi)
    ax = fig.add_subplot()
    t = np.log10(pos) if logx else pos
    span = float(np.ptp(t)) or 1.0
    order = np.argsort(pos, kind="stable")
    for j, (name, mu, s) in enumerate(checked):
        xs = t + (j - (len(checked) - 1) / 2) * 0.012 * span
        ok = order[~np.isnan(mu[order])]
        ax.errorbar(10 ** xs[ok] if logx else xs[ok], mu[ok],
                    yerr=None if s is None else np.nan_to_num(s[ok]),
                    fmt="-" + "osD^vP*X<>"[j % 10], ms=5, lw=1.5,
                    capsize=3, elinewidth=1, label=name)
    if logx:
        ax.set_xscale("log")
    if np.unique(pos).size <= 12:  # few settings: tick exactly at the values tried
        ax.minorticks_off()
        ax.set_xticks(np.unique(pos), [f"{v:g}" for v in np.unique(pos)])
    ax.set(xlabel=str(xlabel), ylabel=str(ylabel))
    ax.grid(True, alpha=0.35)
    if any(name is not None for name, _, _ in checked):
        ax.legend(frameon=False)
    return _finish(fig, path, fmt, dpi, title)
