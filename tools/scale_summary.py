"""The summary half of ``tools/scale_table.py``: results file -> table and pictures.

Reads the JSON lines that ``scale_table.py`` appends (one per method, N and seed),
groups them by method and N, and writes the Markdown table ``scale_table.md``,
``accuracy_vs_n.png`` (log x) and ``time_vs_n.png`` (log-log). Figures quoted from
papers (:data:`LITERATURE`) can be added as markers and table rows; they are labelled as
quoted, since they were not measured here and not scored by the same WTA.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

#: Figures quoted from papers (not measured here): label -> {N: test accuracy in %}.
#: Diehl & Cook 2015, "Unsupervised learning of digit recognition using
#: spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99: a spiking
#: network with STDP, MNIST test set, neurons labelled by their average spike response.
LITERATURE = {
    "Diehl & Cook 2015, spiking STDP, MNIST test (quoted)": {400: 87.0, 1600: 91.9, 6400: 95.0},
}
LITERATURE_NOTE = ("Quoted, not measured: Diehl & Cook 2015 (Front. Comput. Neurosci. "
                   "9:99), a spiking STDP network trained on all 60 000 MNIST training "
                   "images and scored on the MNIST test set by its own spike-count class "
                   "vote, not by this cosine WTA.")

#: What one run is measured on: records differing in any of these are not comparable.
SETTING = ("data", "evaluated_on", "n_eval", "epochs_override")


def read_records(path) -> list[dict]:
    """The records of a results file (empty list if it does not exist).

    A line that is not valid JSON (the torn last line of a killed run) is skipped with
    a warning.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of dict
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: not a JSON line, skipped", stacklevel=2)
    return records


def select(records, **wanted) -> list[dict]:
    """The records of one setting (:data:`SETTING`).

    Parameters
    ----------
    records : list of dict
    **wanted
        Values of :data:`SETTING` fields to keep (None: any).

    Returns
    -------
    list of dict
        Records that match ``wanted``; ValueError if they still hold more than one
        setting (the message lists them).
    """
    kept = [r for r in records
            if all(v is None or r.get(k) == v for k, v in wanted.items())]
    settings = sorted({tuple(str(r.get(k)) for k in SETTING) for r in kept})
    if len(settings) > 1:
        listed = "; ".join(", ".join(f"{k}={v}" for k, v in zip(SETTING, s))
                           for s in settings)
        raise ValueError(f"the results mix {len(settings)} settings ({listed}); choose one "
                         "with --data, --evaluate and --epochs, or keep them in separate files")
    return kept


def aggregate(records) -> dict:
    """``{method: {N: (mean %, sd %, runs, mean seconds, diverged runs)}}``, methods in
    first-seen order; diverged runs (accuracy None) count in no mean.

    Parameters
    ----------
    records : list of dict
        Records of one setting.

    Returns
    -------
    dict
        ``sd`` is the sample standard deviation (NaN for one run).
    """
    groups: dict = {}
    for r in records:
        groups.setdefault(r["method"], {}).setdefault(int(r["n_neurons"]), []).append(r)
    out = {}
    for method, by_n in groups.items():
        out[method] = {}
        for n, runs in sorted(by_n.items()):
            ok = [r for r in runs if r["accuracy"] is not None]
            acc = 100.0 * np.array([r["accuracy"] for r in ok])
            out[method][n] = (float(acc.mean()) if ok else math.nan,
                              float(acc.std(ddof=1)) if len(ok) > 1 else math.nan,
                              len(ok), float(np.mean([r["seconds"] for r in ok]))
                              if ok else math.nan, len(runs) - len(ok))
    return out


def _seconds(t: float) -> str:
    return f"{t:.2f}" if t < 10 else f"{t:.1f}" if t < 100 else f"{t:.0f}"


def caption(records) -> str:
    """One paragraph saying what the table measured (data, split, seeds, machine)."""
    r = records[0]
    if r["evaluated_on"] == "validation":
        where = (f"the validation split (the last {r['n_eval']} training images; models "
                 f"and class assignment use the other {r['n_train']})")
    else:
        where = (f"the test set ({r['n_eval']} images; models and class assignment use "
                 f"all {r['n_train']} training images)")
    epochs = ("each method's default epochs" if r.get("epochs_override") is None
              else f"**{r['epochs_override']} epoch(s) (smoke-test override, not the "
                   "defaults)**")
    cpus = sorted({rec.get("cpu", "?") for rec in records})
    return (f"Cosine WTA accuracy (%) of each method on {where}, data `{r['data']}`, "
            f"{epochs}: mean ± sd over seeds (runs) / mean training seconds "
            f"(fit only, kernels warm; k-means: scikit-learn `KMeans(n_init=1)`). "
            f"CPU: {', '.join(cpus)}.")


def markdown(stats, records, literature=False) -> str:
    """The Markdown table: one row per method, one column per N.

    Parameters
    ----------
    stats : dict
        From :func:`aggregate`.
    records : list of dict
        The records behind ``stats`` (for the caption).
    literature : bool
        Add the rows of :data:`LITERATURE` (and their columns of N).

    Returns
    -------
    str
    """
    ns = sorted({n for by_n in stats.values() for n in by_n}
                | ({n for pts in LITERATURE.values() for n in pts} if literature else set()))
    lines = [caption(records), "",
             "| method | " + " | ".join(f"N={n}" for n in ns) + " |",
             "|---|" + "---:|" * len(ns)]
    for method, by_n in stats.items():
        cells = []
        for n in ns:
            if n not in by_n:
                cells.append("–")
                continue
            mean, sd, runs, secs, failed = by_n[n]
            spread = "" if math.isnan(sd) else f" ± {sd:.2f}"
            cell = (f"{mean:.2f}{spread} ({runs}) / {_seconds(secs)} s" if runs else "")
            cells.append(cell + (f" {failed} diverged" if failed else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if literature:
        for label, pts in LITERATURE.items():
            cells = [f"*{pts[n]:.1f}*" if n in pts else "–" for n in ns]
            lines.append(f"| *{label}* | " + " | ".join(cells) + " |")
        lines += ["", LITERATURE_NOTE]
    return "\n".join(lines) + "\n"


def _outside_legend(fig) -> None:
    """Widen a :func:`fastsd.plotting.plot_param_curve` figure and move its legend to
    the right of the axes, where it hides no point."""
    fig.set_size_inches(7.5, 4.0)
    fig.axes[0].legend(frameon=False, fontsize=8, loc="upper left",
                       bbox_to_anchor=(1.01, 1.0))


def pictures(stats, out_dir, literature=False, title=None, dpi=150) -> tuple[Path, Path]:
    """Write ``accuracy_vs_n.png`` and ``time_vs_n.png`` into ``out_dir``.

    Parameters
    ----------
    stats : dict
        From :func:`aggregate`.
    out_dir : path-like
    literature : bool
        Mark the :data:`LITERATURE` figures (black stars, labelled as quoted).
    title : str, optional
        Title of both pictures (e.g. the data and split).
    dpi : int

    Returns
    -------
    (Path, Path)
        The two PNG files (written atomically).
    """
    from matplotlib.ticker import FuncFormatter

    from fastsd._figure import _finish
    from fastsd.plotting import plot_param_curve

    out_dir = Path(out_dir)
    measured = sorted({n for by_n in stats.values() for n in by_n})
    quoted = {n for pts in LITERATURE.values() for n in pts} if literature else set()
    ns = np.array(sorted(set(measured) | quoted), dtype=float)

    def series(index):
        return {m: np.array([by_n[n][index] if n in by_n else np.nan for n in ns])
                for m, by_n in stats.items()}

    sd = {m: np.nan_to_num(v) for m, v in series(1).items()}
    fig = plot_param_curve(ns, series(0), sd, xlabel="neurons N", logx=True,
                           ylabel="cosine WTA accuracy (%)", dpi=dpi)
    if literature:
        ax = fig.axes[0]
        for j, (label, pts) in enumerate(LITERATURE.items()):
            ax.plot(list(pts), list(pts.values()), ls=":", lw=1, color="black",
                    marker="*P"[j % 2], ms=10, label=label)
    _outside_legend(fig)
    acc_path = out_dir / "accuracy_vs_n.png"
    _finish(fig, acc_path, "png", dpi, title)
    fig = plot_param_curve(ns[np.isin(ns, measured)], {m: v[np.isin(ns, measured)]
                                                         for m, v in series(3).items()},
                           None, xlabel="neurons N", ylabel="training time (s)",
                           logx=True, dpi=dpi)
    ax = fig.axes[0]
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # not 10^-1

    def minor(v, _):  # label 2 and 5 (x 10^k) if the axis spans under two decades
        lo, hi = ax.get_ylim()
        lead = round(v / 10 ** math.floor(math.log10(v)))
        return f"{v:g}" if hi / lo < 100 and lead in (2, 5) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="y", which="minor", labelsize=8)
    _outside_legend(fig)
    time_path = out_dir / "time_vs_n.png"
    _finish(fig, time_path, "png", dpi, title)
    return acc_path, time_path
