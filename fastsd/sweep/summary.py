"""Summaries of a sweep's records: statistics over seeds, a text table and a plot.

A summary is of runs scored on one split (:func:`summarize` refuses a mix of
validation and test records); its rows and table say which.
"""
from __future__ import annotations

import math
import numbers
import os
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .config import _canonical, _fit_defaults
from .data import _describe_split
from .records import _record_split
from .resultsfile import read_results

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Metrics of a record that summaries can rank by; accuracies are higher-is-better.
TIME_METRICS = ("seconds", "eval_seconds")


def _records(records_or_path) -> list[dict]:
    if isinstance(records_or_path, (str, os.PathLike)):
        return read_results(records_or_path)
    return list(records_or_path)


def _setting_of(rec: Mapping) -> dict:
    """All parameter values of a record except the seed (model params, fit args)."""
    out = dict(rec["params"])
    for name in _fit_defaults():
        if name in rec:
            out[name] = rec[name]
    return out


def _metric_value(rec: Mapping, metric: str):
    if metric in TIME_METRICS:
        return rec.get(metric) if rec.get("status", "ok") == "ok" else None
    return (rec.get("accuracy") or {}).get(metric)


def _usable(value) -> bool:
    """Whether a metric value is a finite number (a hand-edited or foreign results file
    may hold NaN, which would make every statistic NaN or raise)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _display_scale(metric: str) -> tuple[float, str]:
    """Factor and unit a metric is shown in: seconds as they are, accuracies in %."""
    return (1.0, "s") if metric in TIME_METRICS else (100.0, "%")


def _one_split(records: Sequence[Mapping]) -> tuple[str, str]:
    """The ``(evaluated_on, split)`` all ``records`` share; ``ValueError`` if they
    differ (records that name none were scored on the test set)."""
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        where = _record_split(rec)
        counts[where] = counts.get(where, 0) + 1
    if len(counts) > 1:
        found = "; ".join(f"{n} on {_describe_split(*where)}"
                          for where, n in counts.items())
        raise ValueError(f"the records were scored on different splits ({found}); "
                         "summarize each split's records separately (their "
                         "'evaluated_on' and data 'split' say which)")
    return next(iter(counts))


def _varying(rows: Sequence[Mapping], names) -> list[str]:
    """Those ``names`` whose value differs between the ``params`` of ``rows``."""
    return [k for k in names if len({_canonical(r["params"].get(k)) for r in rows}) > 1]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summarize(records_or_path: str | os.PathLike | Sequence[Mapping], *,
              by: str | Sequence[str] | None = None, metric: str = "cosine") -> list[dict]:
    """Mean, standard deviation (ddof=1) and count over seeds, best first.

    Parameters
    ----------
    records_or_path : list of dict or path
        Records (from :func:`~fastsd.sweep.sweep`) or a results file.
    by : str or list of str, optional
        Group by these parameters only (pooling all other settings); default: by the
        full setting (every parameter except the seed).
    metric : str, default "cosine"
        An accuracy (``"cosine"``, ``"response"``, ``"probe"``; higher is better) or
        ``"seconds"``/``"eval_seconds"`` (lower is better).

    Returns
    -------
    list of dict
        ``{"params": {...}, "metric", "mean", "sd", "n", "failed", "seeds",
        "evaluated_on", "split"}`` per group; ``n`` counts runs with a value,
        ``failed`` those without (diverged); ``sd`` is None for ``n < 2``, ``mean`` None
        for ``n == 0`` (sorted last); ``evaluated_on`` and ``split`` say what the runs
        were scored on (``"test"`` for records that do not say).

    Raises
    ------
    ValueError
        No records, an unknown ``by`` or ``metric``, or records scored on different
        splits (validation and test, or validation splits of different sizes).
    """
    records = _records(records_or_path)
    if not records:
        raise ValueError("no records to summarize")
    evaluated_on, split = _one_split(records)
    names = sorted({k for r in records for k in _setting_of(r)})
    if by is not None:
        by = [by] if isinstance(by, str) else list(by)
        for name in by:
            if name not in names:
                raise ValueError(f"cannot group by {name!r}; parameters: {', '.join(names)}")
    metrics = set(TIME_METRICS) | {m for r in records for m in (r.get("accuracy") or {})}
    if metric not in metrics:
        raise ValueError(f"unknown metric {metric!r}; available: {', '.join(sorted(metrics))}")
    groups: dict[str, tuple[dict, list]] = {}
    for rec in records:
        values = _setting_of(rec)
        group = values if by is None else {k: values.get(k) for k in by}
        groups.setdefault(_canonical(group), (group, []))[1].append(rec)
    rows = []
    for group, recs in groups.values():
        vals = [float(v) for v in (_metric_value(r, metric) for r in recs)
                if _usable(v)]  # NaN, infinite or non-numbers count as failed runs
        rows.append({
            "params": group, "metric": metric,
            "mean": statistics.fmean(vals) if vals else None,
            "sd": statistics.stdev(vals) if len(vals) > 1 else None,
            "n": len(vals), "failed": len(recs) - len(vals),
            "seeds": sorted(int(r["seed"]) for r in recs),
            "evaluated_on": evaluated_on, "split": split,
        })
    sign = 1.0 if metric in TIME_METRICS else -1.0
    rows.sort(key=lambda r: (r["mean"] is None, sign * (r["mean"] or 0.0), -r["n"]))
    return rows


def format_summary(summary: Sequence[Mapping], *, max_rows: int | None = None) -> str:
    """A text table of :func:`summarize`'s rows: the parameters that vary, then stats.

    A header line says what the runs were scored on (the validation split or the test
    set); accuracies are shown in percent.

    Parameters
    ----------
    summary : list of dict
        Rows of :func:`summarize`.
    max_rows : int, optional
        Show only the first (best) rows, and how many more there are.

    Returns
    -------
    str
        The header line and the table (``"(no results)"`` for no rows).
    """
    rows = list(summary)
    if not rows:
        return "(no results)"
    metric = rows[0].get("metric", "cosine")
    names = list(dict.fromkeys(k for r in rows for k in r["params"]))
    # grouped ``by`` a few parameters: show them all
    varying = names if len(names) <= 3 else _varying(rows, names)
    scale, unit = _display_scale(metric)
    header = ["#"] + varying + [f"{metric} mean {unit}", f"sd {unit}", "n"]
    any_failed = any(r.get("failed") for r in rows)
    if any_failed:
        header.append("failed")
    table = [header]
    shown = rows if max_rows is None else rows[:max_rows]
    for i, r in enumerate(shown, 1):
        line = [str(i)] + [_fmt(r["params"].get(k)) for k in varying]
        line += ["-" if r["mean"] is None else f"{scale * r['mean']:.2f}",
                 "-" if r["sd"] is None else f"{scale * r['sd']:.2f}", str(r["n"])]
        if any_failed:
            line.append(str(r.get("failed", 0)))
        table.append(line)
    widths = [max(len(row[j]) for row in table) for j in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]
    text.insert(1, "  ".join("-" * w for w in widths))
    if len(shown) < len(rows):
        text.append(f"... {len(rows) - len(shown)} more")
    return "\n".join([_header(rows[0])] + text)


def _header(row: Mapping) -> str:
    """What a summary's numbers are: the metric, and the split the runs were scored on."""
    metric = row.get("metric", "cosine")
    where = _describe_split(row.get("evaluated_on", "test"), row.get("split", "test"))
    if metric in TIME_METRICS:
        return f"{metric} (s), mean ± sd over seeds; runs scored on {where}"
    return f"{metric} accuracy on {where}, mean ± sd over seeds"


def plot_sweep(records_or_path: str | os.PathLike | Sequence[Mapping], param: str,
               path: str | os.PathLike | None = None, *, metric: str = "cosine",
               logx: bool = False, title: str | None = None, dpi: int = 150) -> Figure:
    """Mean ± sd over seeds of ``metric`` against ``param``.

    One curve per combination of the other parameters that vary; see
    :func:`fastsd.plotting.plot_param_curve`.

    Parameters
    ----------
    records_or_path : list of dict or path
        Records or a results file, as for :func:`summarize`.
    param : str
        The numeric parameter on the x axis.
    path : path, optional
        Write the figure here.
    metric : str, default "cosine"
        As for :func:`summarize`.
    logx : bool, default False
        Logarithmic x axis.
    title : str, optional
        Figure title.
    dpi : int, default 150
        Resolution of the written image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..plotting import plot_param_curve

    rows = summarize(records_or_path, metric=metric)
    if param not in rows[0]["params"]:
        raise ValueError(f"unknown parameter {param!r}; parameters: "
                         f"{', '.join(rows[0]['params'])}")
    for r in rows:
        v = r["params"][param]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"cannot plot against {param!r}: value {v!r} is not a number")
    others = _varying(rows, [k for k in rows[0]["params"] if k != param])
    xs = sorted({float(r["params"][param]) for r in rows})
    index = {x: i for i, x in enumerate(xs)}
    scale, _ = _display_scale(metric)
    means: dict[str, np.ndarray] = {}
    sds: dict[str, np.ndarray] = {}
    for r in rows:
        label = ", ".join(f"{k}={_fmt(r['params'].get(k))}" for k in others) or metric
        mu = means.setdefault(label, np.full(len(xs), np.nan))
        sd = sds.setdefault(label, np.full(len(xs), np.nan))
        i = index[float(r["params"][param])]
        if r["mean"] is not None:
            mu[i] = scale * r["mean"]
        if r["sd"] is not None:
            sd[i] = scale * r["sd"]
    if metric in TIME_METRICS:
        ylabel = f"{metric.replace('_', ' ')} (s)"
    else:
        ylabel = f"{metric} {rows[0]['evaluated_on']} accuracy (%)"
    y: np.ndarray | dict[str, np.ndarray] = means
    err: np.ndarray | dict[str, np.ndarray] = sds
    if len(means) == 1:  # one series, without a legend
        (label, y), = means.items()
        err = sds[label]
    return plot_param_curve(xs, y, err, path, xlabel=param, ylabel=ylabel, logx=logx,
                            title=title, dpi=dpi)
