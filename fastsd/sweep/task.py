"""One run of a sweep: the Dask task that trains and evaluates one model.

:func:`run_one` runs in the worker processes. Dask pickles it by reference, as
``fastsd.sweep.task.run_one``: workers import this module (and so the
``fastsd.sweep`` package, which imports no Dask at import time); it must stay a
top-level function of an importable module.
"""
from __future__ import annotations

import os
import socket
import time
import warnings
import weakref
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from .._threads import one_blas_thread
from .._version import __version__
from ..passes import TrainingDiverged
from ..rules import DEFAULT_RULE, rule_class

if TYPE_CHECKING:
    from ..base import PrototypeModel

#: WTA scores every run is evaluated with (``fastsd.evaluate.wta``'s ``score``).
SCORES = ("cosine", "response")

#: Per worker process: images converted to a model dtype, kept while the scattered
#: original lives, so each worker converts the data once, not once per run.
_CONVERTED: dict[tuple[int, str], tuple[weakref.ref, np.ndarray]] = {}


def _as_dtype(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype``, converted once per worker."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype and x.flags.c_contiguous:
        return x
    key = (id(x), dtype.str)
    hit = _CONVERTED.get(key)
    if hit is not None and hit[0]() is x:
        return hit[1]
    for k in [k for k, (ref, _) in _CONVERTED.items() if ref() is None]:
        _CONVERTED.pop(k, None)
    out = np.ascontiguousarray(x, dtype=dtype)
    _CONVERTED[key] = (weakref.ref(x), out)
    return out


def _limit_threads() -> tuple[int, int]:
    """Use one Numba thread in this (worker) thread.

    Returns the threads in use and the size of Numba's pool (``NUMBA_NUM_THREADS`` when
    Numba was imported: 1 on the local cluster's workers).
    """
    try:
        import numba
        numba.set_num_threads(1)
        return int(numba.get_num_threads()), int(numba.config.NUMBA_NUM_THREADS)
    except (ImportError, ValueError):  # pragma: no cover
        return -1, -1


def available_scores(model: PrototypeModel) -> tuple[str, ...]:
    """The WTA scores that apply to ``model`` (``"response"`` only if its rule has one)."""
    from ..evaluate import available_scores as scores
    return scores(model)


def _wta_accuracy(model, data, score: str) -> float:
    from ..evaluate import wta
    return float(wta(model, *data, score=score).accuracy)


def _worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def run_one(spec: Mapping, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
            y_test: np.ndarray, probe: bool = False) -> dict:
    """Train and evaluate one run; the Dask task of :func:`~fastsd.sweep.sweep`.

    Usable alone. A run whose training diverges is returned with
    ``status="diverged"`` and accuracies ``None``.

    Parameters
    ----------
    spec : dict
        ``params`` (model parameters without random_state), ``fit`` (fit arguments),
        ``seed`` and ``setting``.
    x_train, y_train : ndarray
        The images trained on (and from which the WTA assigns neurons to classes).
    x_test, y_test : ndarray
        The images scored: the validation split or the test set, as the client chose.
    probe : bool, default False
        Also evaluate ``fastsd.probe.linear_probe``.

    Returns
    -------
    dict
        The JSON-able record of the run, without ``run_id``, ``data`` and
        ``evaluated_on`` (which the client adds).
    """
    threads = _limit_threads()
    rule = spec.get("rule", DEFAULT_RULE)
    model = rule_class(rule)(**spec["params"], random_state=spec["seed"])
    dtype = model._check_params()["dtype"]
    x_train, x_test = _as_dtype(x_train, dtype), _as_dtype(x_test, dtype)
    data = (x_train, y_train, x_test, y_test)
    status, error = "ok", None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            with one_blas_thread():
                model.fit(x_train, **spec["fit"])
        except TrainingDiverged as exc:
            status, error = "diverged", str(exc)
        seconds = time.perf_counter() - start
    accuracy: dict[str, float | None] = {s: None for s in SCORES}
    start = time.perf_counter()
    if status == "ok":
        with one_blas_thread():
            for score in SCORES:
                if score in available_scores(model):
                    accuracy[score] = _wta_accuracy(model, data, score)
            if probe:
                from ..probe import linear_probe
                accuracy["probe"] = float(linear_probe(model, *data).accuracy)
    elif probe:
        accuracy["probe"] = None
    eval_seconds = time.perf_counter() - start
    return {
        "status": status, "error": error, "rule": rule,
        "setting": dict(spec["setting"]), "params": dict(spec["params"]),
        "seed": int(spec["seed"]), **dict(spec["fit"]),
        "samples": int(getattr(model, "samples_seen_", 0)) if status == "ok" else 0,
        "accuracy": accuracy, "seconds": seconds, "eval_seconds": eval_seconds,
        "warnings": sorted({str(w.message) for w in caught}),
        "numba_threads": threads[0], "numba_pool_threads": threads[1],
        "fastsd_version": __version__,
        "host": socket.gethostname(), "worker": _worker_address(), "pid": os.getpid(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
