"""Hyper-parameter sweeps of SparseDream on a Dask cluster, recorded run by run.

A sweep is a set of *settings* (a grid, whose cartesian product is taken, or an
explicit list) times a list of *seeds*. Every (setting, seed) pair is one *run*: a Dask
task that trains ``SparseDream(**base, **setting, random_state=seed)``, times the fit,
evaluates it (cosine and network-response WTA, optionally the linear probe) and returns
a JSON-able record. The client appends each record to a JSON Lines file as soon as it
arrives, so an interrupted sweep (crash, Ctrl-C, lost cluster) resumes where it
stopped: running the same sweep again skips every run already in the file.

>>> from fastsd.sweep import sweep, summarize, format_summary
>>> records = sweep({"gamma": [0.5, 1, 2]}, base={"samples_per_epoch": 6000},
...                 seeds=(0, 1, 2), results="runs/gamma.jsonl")      # doctest: +SKIP
>>> print(format_summary(summarize("runs/gamma.jsonl")))               # doctest: +SKIP

Where runs execute
------------------
* default: a ``LocalCluster`` with ``n_workers`` (default ``os.cpu_count()``) worker
  processes of one thread each, started for the sweep and closed after it;
* ``scheduler="tcp://host:port"`` (or a scheduler JSON file): an existing cluster;
* ``client=``: a ``distributed.Client`` you made (it is left open).

A script that starts the local cluster must guard its top level with
``if __name__ == "__main__":``: worker processes are spawned and import the main module
(the ``fastsd sweep`` command needs nothing).

Each task limits Numba and BLAS to one thread, so one task uses one core; worker
processes of the local cluster get ``NUMBA_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1``.
The data is sent to every worker once (``scatter(..., broadcast=True)``). If a worker
dies, Dask reruns its tasks elsewhere; a run is still recorded exactly once.

Run identity
------------
A run is keyed by the canonical JSON of all model parameters (defaults filled in and
normalised, e.g. ``gamma=1`` and ``gamma=1.0`` are the same), the fit arguments
(``epochs``, ``samples_per_epoch`` with ``None`` resolved to the training-set size) and
the seed. A results file belongs to one data set: resuming with different data is an
error (use another results file).

Records
-------
One JSON object per line::

    run_id, status ("ok" or "diverged"), error, setting (the swept values), params (all
    model parameters except random_state), seed, epochs, samples_per_epoch, samples
    (samples trained in total), accuracy {"cosine", "response"[, "probe"]} as fractions
    in [0, 1] (None when diverged), seconds (fit), eval_seconds, warnings,
    numba_threads (in use), numba_pool_threads, data {name, n_train, n_test,
    n_features, hash}, fastsd_version,
    host, worker, pid, timestamp (UTC, ISO 8601)
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import itertools
import json
import numbers
import os
import socket
import statistics
import sys
import threading
import time
import tomllib
import warnings
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import __version__
from ._validation import check_inputs, check_labels, check_number
from .sparsedream import SparseDream, TrainingDiverged

try:  # POSIX: an advisory lock keeps lines from two processes from interleaving
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["sweep", "summarize", "format_summary", "plot_sweep", "read_results",
           "append_record", "load_config", "expand", "run_key", "sweepable_params",
           "SweepError", "WORKER_ENV", "SCORES"]

#: Environment of the local cluster's worker processes: one task = one core.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}

#: WTA scores every run is evaluated with (``fastsd.evaluate.wta``'s ``score``).
SCORES = ("cosine", "response")

#: Metrics of a record that summaries can rank by; accuracies are higher-is-better.
TIME_METRICS = ("seconds", "eval_seconds")

#: Keys of a config file's ``[sweep]`` table and the ``sweep()`` argument each sets.
CONFIG_SWEEP_KEYS = {"seeds": "seeds", "results": "results", "scheduler": "scheduler",
                     "workers": "n_workers", "probe": "probe", "data": "data",
                     "retries": "retries"}
CONFIG_TABLES = ("sweep", "base", "grid", "settings")


class SweepError(RuntimeError):
    """Some runs of a sweep failed (not diverged: raised). The others were recorded.

    Attributes
    ----------
    records : list of dict
        Records of the runs that completed (including earlier ones from the file).
    failures : list of (dict, BaseException)
        The failed runs' descriptions and exceptions; rerunning the sweep retries them.
    """

    def __init__(self, message, records, failures):
        super().__init__(message)
        self.records = records
        self.failures = failures


# --------------------------------------------------------------------------- parameters
def _model_param_names() -> list[str]:
    return [p for p in SparseDream._param_names() if p != "random_state"]


def _fit_defaults() -> dict[str, Any]:
    """Keyword-only arguments of ``SparseDream.fit`` (except ``progress``) and defaults.

    Read from the signature, so fit arguments added later (``batch_size``) become
    sweepable without changing this module.
    """
    sig = inspect.signature(SparseDream.fit)
    return {name: p.default for name, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "progress"}


def sweepable_params() -> list[str]:
    """Names a grid, a setting or ``base`` may hold: model parameters and fit arguments."""
    return _model_param_names() + list(_fit_defaults())


def _normalize(values: Mapping[str, Any], where: str) -> tuple[dict, dict]:
    """Validate one merged setting; return (all model params, fit args), normalised.

    Every parameter is checked by constructing the model and calling its
    ``_check_params()``; numbers come back as ``float``/``int`` and the dtype as its
    name, so equal settings have equal keys.
    """
    model_names = set(_model_param_names())
    fit = _fit_defaults()
    model_part = {k: v for k, v in values.items() if k in model_names}
    try:
        model = SparseDream(**model_part)
        checked = model._check_params()
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    params = model.get_params()
    params.pop("random_state", None)
    for name, value in checked.items():
        params[name] = value.name if isinstance(value, np.dtype) else value
    fit_args = {}
    for name, default in fit.items():
        value = values.get(name, default)
        try:
            if name == "epochs":
                value = check_number("epochs", value, low=1, integer=True)
            elif name == "samples_per_epoch" and value is not None:
                value = check_number("samples_per_epoch", value, low=1, integer=True)
            elif isinstance(value, (np.generic,)):
                value = value.item()
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"{where}: {name} must be a number, got {value!r}")
        fit_args[name] = value
    return params, fit_args


def _check_names(mapping: Mapping, where: str) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where} must be a table (dict) of parameter names, got "
                        f"{type(mapping).__name__}")
    valid = sweepable_params()
    for name in mapping:
        if name == "random_state":
            raise ValueError(f"{where}: random_state is set by the sweep's seeds; list "
                             "them in seeds instead")
        if name not in valid:
            raise ValueError(f"{where}: unknown parameter {name!r}; valid parameters: "
                             f"{', '.join(valid)}")


def expand(grid: Mapping[str, Sequence] | None = None, *,
           settings: Sequence[Mapping] | None = None, base: Mapping | None = None,
           epochs: int | None = None, samples_per_epoch: int | None = None) -> list[dict]:
    """Validated settings of a sweep, before seeds.

    Parameters
    ----------
    grid : dict name -> list of values, optional
        The cartesian product of the lists is taken (in the order given).
    settings : list of dict, optional
        Explicit settings instead of a grid; each overrides ``base``.
    base : dict, optional
        Fixed parameters of every run (a name may not be both in ``base`` and ``grid``).
    epochs, samples_per_epoch : int, optional
        Fixed fit arguments, same as putting them in ``base``.

    Returns
    -------
    list of dict
        One dict per setting with keys ``setting`` (the swept values, normalised),
        ``params`` (all model parameters) and ``fit`` (fit arguments).

    Raises
    ------
    ValueError, TypeError
        Naming the problem: unknown parameter (with the valid ones), empty grid or
        value list, a value the model rejects, duplicate settings, grid and settings
        both given.
    """
    base = {} if base is None else base
    _check_names(base, "base")
    base = dict(base)
    for name, value in (("epochs", epochs), ("samples_per_epoch", samples_per_epoch)):
        if value is not None:
            if name in base:
                raise ValueError(f"{name} is given both as an argument and in base")
            base[name] = value
    if grid is not None and settings is not None:
        raise ValueError("give either a grid or a list of settings, not both")
    if grid is None and settings is None:
        raise ValueError("nothing to sweep: give a grid (name -> list of values) or a "
                         "list of settings (use settings=[{}] to repeat base over seeds)")
    swept: list[dict] = []
    if grid is not None:
        _check_names(grid, "grid")
        if not grid:
            raise ValueError("the grid is empty: give at least one parameter with a list "
                             "of values")
        lists = {}
        for name, values in grid.items():
            if name in base:
                raise ValueError(f"{name!r} is both fixed (base) and swept (grid); "
                                 "remove it from one of them")
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(
                    values, (Sequence, np.ndarray)):
                raise TypeError(f"grid: the values of {name!r} must be a list, got "
                                f"{values!r} (put fixed values in base)")
            if len(values) == 0:
                raise ValueError(f"grid: the value list of {name!r} is empty")
            lists[name] = list(values)
        swept = [dict(zip(lists, combo)) for combo in itertools.product(*lists.values())]
    else:
        if isinstance(settings, (str, bytes, Mapping)) or not isinstance(settings, Sequence):
            raise TypeError(f"settings must be a list of dicts, got {type(settings).__name__}")
        if len(settings) == 0:
            raise ValueError("the list of settings is empty")
        for i, setting in enumerate(settings):
            _check_names(setting, f"settings[{i}]")
            swept.append(dict(setting))
    out, seen = [], {}
    for i, setting in enumerate(swept):
        where = (f"setting {_describe(setting)}" if grid is not None
                 else f"settings[{i}] {_describe(setting)}")
        params, fit = _normalize({**base, **setting}, where)
        normal = {**params, **fit}
        entry = {"setting": {k: normal[k] for k in setting}, "params": params, "fit": fit}
        ident = _canonical({"params": params, "fit": fit})
        if ident in seen:
            raise ValueError(f"{where} duplicates {seen[ident]} (same parameters after "
                             "normalisation)")
        seen[ident] = where
        out.append(entry)
    return out


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(seeds, (Sequence, np.ndarray)):
        raise TypeError(f"seeds must be a list of non-negative integers, got {seeds!r}")
    if len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed")
    out = [check_number("seed", s, low=0, integer=True) for s in seeds]
    if len(set(out)) != len(out):
        raise ValueError(f"seeds has duplicates: {out}")
    return out


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _describe(setting: Mapping) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in setting.items()) + "}"


def run_key(params: Mapping, fit: Mapping, seed: int) -> str:
    """Canonical JSON identifying one run (all model params, fit args, seed)."""
    return _canonical({"params": dict(params), "fit": dict(fit), "seed": int(seed)})


def _record_key(rec: Mapping) -> str:
    """The run key of a record read from a results file (missing names get defaults)."""
    params = dict(rec["params"])
    known = set(_model_param_names())
    extra = {k: v for k, v in params.items() if k not in known}
    try:
        norm, _ = _normalize({k: v for k, v in params.items() if k in known}, "record")
    except (TypeError, ValueError):
        norm = {k: v for k, v in params.items() if k in known}
    fit = {name: rec.get(name, default) for name, default in _fit_defaults().items()}
    return run_key({**norm, **extra}, fit, rec["seed"])


@dataclass(frozen=True)
class _Run:
    setting: dict
    params: dict
    fit: dict
    seed: int
    key: str = field(repr=False)

    @property
    def run_id(self) -> str:
        return hashlib.blake2b(self.key.encode(), digest_size=8).hexdigest()

    def spec(self) -> dict:
        return {"setting": self.setting, "params": self.params, "fit": self.fit,
                "seed": self.seed}


def _plan(settings: list[dict], seeds: list[int], n_train: int) -> list[_Run]:
    runs = []
    for entry in settings:
        fit = dict(entry["fit"])
        spe = fit.get("samples_per_epoch")
        if spe is None:
            fit["samples_per_epoch"] = n_train
        elif spe > n_train:
            raise ValueError(f"setting {_describe(entry['setting'])}: samples_per_epoch="
                             f"{spe} is more than the {n_train} training samples")
        setting = dict(entry["setting"])
        if "samples_per_epoch" in setting:
            setting["samples_per_epoch"] = fit["samples_per_epoch"]
        for seed in seeds:
            runs.append(_Run(setting, entry["params"], fit, seed,
                             run_key(entry["params"], fit, seed)))
    return runs


# --------------------------------------------------------------------------------- data
def _load_data(data) -> tuple[tuple[np.ndarray, ...], dict]:
    """(x_train, y_train, x_test, y_test) validated; and a fingerprint.

    Images keep their dtype if float32 or float64 (MNIST is float32: half the bytes to
    send); workers convert them once to the models' dtype (:func:`_as_dtype`).
    """
    name = "arrays"
    if data is None or isinstance(data, (str, os.PathLike)):
        from .datasets import load_mnist
        data = load_mnist(data, progress=False)
    if all(hasattr(data, a) for a in ("x_train", "y_train", "x_test", "y_test")):
        name = getattr(data, "name", "dataset")
        arrays = (data.x_train, data.y_train, data.x_test, data.y_test)
    elif isinstance(data, Mapping):
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
        if missing:
            raise ValueError(f"data is missing {missing}")
        arrays = tuple(data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif isinstance(data, Sequence) and len(data) == 4:
        arrays = tuple(data)
    else:
        raise TypeError("data must be None (MNIST), a path, a Dataset, a dict or a tuple "
                        "(x_train, y_train, x_test, y_test)")

    def own_dtype(x):
        dt = np.asarray(x).dtype
        return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)

    x_train = check_inputs(arrays[0], dtype=own_dtype(arrays[0]), name="x_train")
    x_test = check_inputs(arrays[2], dtype=own_dtype(arrays[2]),
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


# --------------------------------------------------------------------------- one run
#: Per worker process: images converted to a model dtype, kept while the scattered
#: original lives, so each worker converts the data once, not once per run.
_CONVERTED: dict[tuple[int, str], tuple[weakref.ref, np.ndarray]] = {}


def _as_dtype(x: np.ndarray, dtype) -> np.ndarray:
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


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - the worker env already sets it
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _wta_accuracy(model, data, score: str) -> float:
    from .evaluate import wta
    return float(wta(model, *data, score=score).accuracy)


def _worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def run_one(spec: Mapping, x_train, y_train, x_test, y_test, probe: bool = False) -> dict:
    """Train and evaluate one run; the Dask task of :func:`sweep` (usable alone).

    ``spec`` holds ``params`` (model parameters without random_state), ``fit``
    (fit arguments), ``seed`` and ``setting``. A run whose training diverges is
    returned with ``status="diverged"`` and accuracies ``None``.
    """
    threads = _limit_threads()
    dtype = spec["params"].get("dtype", "float64")
    x_train, x_test = _as_dtype(x_train, dtype), _as_dtype(x_test, dtype)
    data = (x_train, y_train, x_test, y_test)
    model = SparseDream(**spec["params"], random_state=spec["seed"])
    status, error = "ok", None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            with _blas_one_thread():
                model.fit(x_train, **spec["fit"])
        except TrainingDiverged as exc:
            status, error = "diverged", str(exc)
        seconds = time.perf_counter() - start
    accuracy: dict[str, float | None] = {s: None for s in SCORES}
    start = time.perf_counter()
    if status == "ok":
        with _blas_one_thread():
            for score in SCORES:
                accuracy[score] = _wta_accuracy(model, data, score)
            if probe:
                from .probe import linear_probe
                accuracy["probe"] = float(linear_probe(model, *data).accuracy)
    elif probe:
        accuracy["probe"] = None
    eval_seconds = time.perf_counter() - start
    return {
        "status": status, "error": error,
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


# ---------------------------------------------------------------------- results file
_WRITE_LOCK = threading.Lock()


def append_record(path: str | os.PathLike, record: Mapping) -> None:
    """Append ``record`` as one JSON line: a single ``write``, flushed and fsynced.

    An advisory lock (``flock``) keeps concurrent writers' lines whole. If the file
    ends in an incomplete line (a write cut short by a crash), the new record starts
    on a line of its own; readers skip the incomplete one.
    """
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _WRITE_LOCK:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        if created and hasattr(os, "O_DIRECTORY"):
            with contextlib.suppress(OSError):
                dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)


def read_results(path: str | os.PathLike, *, missing_ok: bool = False) -> list[dict]:
    """Records of a results file, in file order, each run once.

    Lines that are not a JSON record (an incomplete last line from a crash, say) are
    skipped with a ``RuntimeWarning``; so are later duplicates of a run.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"results path {path} is a directory, not a file")
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records, seen, dups = [], set(), 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last = number == len(lines)  # no newline after it: the write was cut short
        try:
            rec = json.loads(line.decode("utf-8"))
            if not isinstance(rec, dict) or "params" not in rec or "seed" not in rec:
                raise ValueError("not a sweep record")
            key = _record_key(rec)
        except (ValueError, UnicodeDecodeError, TypeError, KeyError) as exc:
            what = ("incomplete last line (a write cut short by a crash?)" if last
                    else f"not a valid record ({exc})")
            warnings.warn(f"{path}: line {number} ignored: {what}", RuntimeWarning,
                          stacklevel=2)
            continue
        if key in seen:
            dups += 1
            continue
        seen.add(key)
        records.append(rec)
    if dups:
        warnings.warn(f"{path}: {dups} duplicate record(s) of runs already in the file "
                      "ignored", RuntimeWarning, stacklevel=2)
    return records


# ---------------------------------------------------------------------------- cluster
def _check_results_path(results) -> Path:
    if not isinstance(results, (str, os.PathLike)) or not os.fspath(results):
        raise TypeError(f"results must be a file path, got {results!r}")
    path = Path(results)
    if path.is_dir():
        raise IsADirectoryError(f"results path {path} is a directory, not a file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise PermissionError(f"results file {path} is not readable and writable")
    return path


def _start_client(stack: contextlib.ExitStack, client, scheduler, n_workers,
                  timeout: float):
    """The Client to run on; what we start is closed by ``stack``."""
    if client is not None:
        return client
    from distributed import Client
    if scheduler is not None:
        kwargs = ({"scheduler_file": os.fspath(scheduler)} if os.path.isfile(scheduler)
                  else {"address": scheduler})
        try:
            c = Client(**kwargs, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler} within "
                                  f"{timeout:g} s ({type(exc).__name__}: {exc})") from None
        stack.callback(c.close)
        return c
    import logging

    import dask
    from distributed import LocalCluster

    # Worker processes import numpy and numba while unpickling (before a Nanny's
    # ``env`` is applied), so the thread counts must be in the environment they are
    # spawned with. Dask's nannies (which run in this process) set ``pre-spawn-environ``
    # in os.environ here too: put our values back once the cluster is closed.
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    stack.callback(_restore_env, saved)
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
            processes=True, env=WORKER_ENV, silence_logs=logging.ERROR,
            dashboard_address=":0")  # any free port: 8787 may be another cluster's
    stack.callback(cluster.close)
    c = Client(cluster, set_as_default=False)
    stack.callback(c.close)
    return c


def _restore_env(saved: Mapping[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _check_execution(client, scheduler, n_workers, retries, connect_timeout):
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None:
        if not isinstance(scheduler, (str, os.PathLike)) or not os.fspath(scheduler):
            raise TypeError(f"scheduler must be an address like 'tcp://host:8786' or a "
                            f"scheduler file, got {scheduler!r}")
        scheduler = os.fspath(scheduler)
        if scheduler.endswith(".json") and not os.path.isfile(scheduler):
            raise FileNotFoundError(f"scheduler file not found: {scheduler}")
    if n_workers is not None:
        check_number("n_workers", n_workers, low=1, integer=True)
        if client is not None or scheduler is not None:
            warnings.warn("n_workers only sizes the local cluster; ignored with an "
                          "existing client or scheduler", UserWarning, stacklevel=3)
    check_number("retries", retries, low=0, integer=True)
    check_number("connect_timeout", connect_timeout, low=0, low_open=True)
    return scheduler


# ------------------------------------------------------------------------------ sweep
def sweep(grid: Mapping[str, Sequence] | None = None, *,
          settings: Sequence[Mapping] | None = None, seeds: Sequence[int] = (0, 1, 2),
          base: Mapping | None = None, epochs: int | None = None,
          samples_per_epoch: int | None = None,
          results: str | os.PathLike = "sweep.jsonl", client=None,
          scheduler: str | None = None, n_workers: int | None = None,
          probe: bool = False, data=None, progress: bool = True, retries: int = 1,
          connect_timeout: float = 5.0) -> list[dict]:
    """Run every (setting, seed) not yet in ``results`` on Dask; return all records.

    Parameters
    ----------
    grid : dict name -> list of values, optional
        Swept parameters; their cartesian product gives the settings.
    settings : list of dict, optional
        Explicit settings instead of ``grid`` (each overrides ``base``).
    seeds : sequence of int, default (0, 1, 2)
        ``random_state`` of the runs of each setting.
    base : dict, optional
        Fixed model parameters and fit arguments of every run.
    epochs, samples_per_epoch : int, optional
        Fixed fit arguments (default 1 epoch of all training samples); they, and any
        other ``SparseDream.fit`` argument, may also be swept or put in ``base``.
    results : path, default "sweep.jsonl"
        JSON Lines file: every finished run is appended at once; runs already in it
        are skipped (resume). Created on the first record.
    client : distributed.Client, optional
        Run on this client (left open).
    scheduler : str, optional
        Address (``tcp://host:port``) or scheduler JSON file of a running cluster.
    n_workers : int, optional
        Worker processes of the default ``LocalCluster`` (default ``os.cpu_count()``).
    probe : bool, default False
        Also evaluate ``fastsd.probe.linear_probe``.
    data : None, path, Dataset, dict or tuple, optional
        ``(x_train, y_train, x_test, y_test)``; default MNIST (``load_mnist(data)`` for a
        path).
    progress : bool, default True
        Progress bar and a one-line plan on stderr.
    retries : int, default 1
        Dask reruns of a task that raised (tasks of a dead worker are rerun anyway).
    connect_timeout : float, default 5
        Seconds to wait for ``scheduler``.

    Returns
    -------
    list of dict
        The records of all runs of this sweep (earlier ones read from ``results``), in
        plan order (settings, then seeds).

    Raises
    ------
    ValueError, TypeError
        Bad settings, seeds or data: before any cluster is started or file written.
    ConnectionError
        ``scheduler`` not reachable within ``connect_timeout``.
    SweepError
        Some runs raised (other than diverging); all others are recorded.
    """
    specs = expand(grid, settings=settings, base=base, epochs=epochs,
                   samples_per_epoch=samples_per_epoch)
    seeds = _check_seeds(seeds)
    results = _check_results_path(results)
    scheduler = _check_execution(client, scheduler, n_workers, retries, connect_timeout)
    if not isinstance(probe, bool):
        raise TypeError(f"probe must be True or False, got {probe!r}")
    if probe:
        import fastsd.probe  # noqa: F401 - fail now, not on every worker
    arrays, info = _load_data(data)
    runs = _plan(specs, seeds, info["n_train"])

    done = {}
    for rec in read_results(results, missing_ok=True):
        done[_record_key(rec)] = rec
    clash = [r for r in runs if r.key in done
             and done[r.key].get("data", {}).get("hash") not in (None, info["hash"])]
    if clash:
        raise ValueError(f"{results} holds runs of this sweep made on different data "
                         f"({done[clash[0].key]['data']} vs now {info}); use another "
                         "results file")
    pending = [r for r in runs if r.key not in done]
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (
        lambda msg: None)
    say(f"sweep: {len(runs)} runs ({len(specs)} settings x {len(seeds)} seeds), "
        f"{len(runs) - len(pending)} already in {results}, {len(pending)} to run")
    failures = []
    if pending:
        failures = _execute(pending, arrays, info, results, done, client, scheduler,
                            n_workers, probe, progress, retries, connect_timeout, say)
    out = [done[r.key] for r in runs if r.key in done]
    if failures:
        spec, exc = failures[0]
        raise SweepError(f"{len(failures)} of {len(pending)} runs failed (not recorded; "
                         f"run the sweep again to retry them); first: "
                         f"{_describe(spec['setting'])} seed {spec['seed']}: "
                         f"{type(exc).__name__}: {exc}", out, failures)
    return out


def _execute(pending, arrays, info, results, done, client, scheduler, n_workers, probe,
             progress, retries, connect_timeout, say) -> list:
    """Submit ``pending`` runs, record each as it completes; returns the failures."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    failures = []
    with contextlib.ExitStack() as stack:
        c = _start_client(stack, client, scheduler, n_workers, connect_timeout)
        n = len(c.scheduler_info(n_workers=-1).get("workers", {}))
        link = (getattr(c, "dashboard_link", None)
                if importlib.util.find_spec("bokeh") else None)
        say(f"sweep: on {c.scheduler.address} with {n} worker(s)"
            + (f", dashboard {link}" if link and n else ""))
        if n == 0:
            warnings.warn("the scheduler has no workers yet; the sweep waits for them",
                          RuntimeWarning, stacklevel=3)
        data_futures = c.scatter(list(arrays), broadcast=True)
        by_key = {}
        futures = []
        for run in pending:
            key = f"fastsd-run-{run.run_id}-{info['hash'][:8]}"
            fut = c.submit(run_one, run.spec(), *data_futures, probe, key=key,
                           retries=retries, pure=False)
            by_key[fut.key] = run
            futures.append(fut)
        bar = stack.enter_context(tqdm(total=len(pending), unit="run", desc="sweep",
                                       disable=not progress, smoothing=0))
        try:
            for fut in as_completed(futures, loop=c.loop):
                run = by_key[fut.key]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported, others continue
                    failures.append((run.spec(), exc))
                    warnings.warn(f"run {_describe(run.setting)} seed {run.seed} failed: "
                                  f"{type(exc).__name__}: {exc}", RuntimeWarning,
                                  stacklevel=3)
                    continue
                finally:
                    fut.release()
                if run.key in done:  # exactly once, whatever Dask did
                    continue
                rec["run_id"] = run.run_id
                rec["data"] = info
                append_record(results, rec)
                done[run.key] = rec
                bar.update(1)
                acc = rec["accuracy"].get("cosine")
                bar.set_postfix_str("diverged" if acc is None else f"cosine {100 * acc:.1f}%")
        except BaseException:
            with contextlib.suppress(Exception):
                c.cancel(futures)
            raise
    return failures


# ------------------------------------------------------------------------- summaries
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


def summarize(records_or_path, *, by: str | Sequence[str] | None = None,
              metric: str = "cosine") -> list[dict]:
    """Mean, standard deviation (ddof=1) and count over seeds, best first.

    Parameters
    ----------
    records_or_path : list of dict or path
        Records (from :func:`sweep`) or a results file.
    by : str or list of str, optional
        Group by these parameters only (pooling all other settings); default: by the
        full setting (every parameter except the seed).
    metric : str, default "cosine"
        An accuracy (``"cosine"``, ``"response"``, ``"probe"``; higher is better) or
        ``"seconds"``/``"eval_seconds"`` (lower is better).

    Returns
    -------
    list of dict
        ``{"params": {...}, "metric", "mean", "sd", "n", "failed", "seeds"}`` per group;
        ``n`` counts runs with a value, ``failed`` those without (diverged); ``sd`` is
        None for ``n < 2``, ``mean`` None for ``n == 0`` (sorted last).
    """
    records = _records(records_or_path)
    if not records:
        raise ValueError("no records to summarize")
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
        vals = [float(v) for v in (_metric_value(r, metric) for r in recs) if v is not None]
        rows.append({
            "params": group, "metric": metric,
            "mean": statistics.fmean(vals) if vals else None,
            "sd": statistics.stdev(vals) if len(vals) > 1 else None,
            "n": len(vals), "failed": len(recs) - len(vals),
            "seeds": sorted(int(r["seed"]) for r in recs),
        })
    sign = 1.0 if metric in TIME_METRICS else -1.0
    rows.sort(key=lambda r: (r["mean"] is None, sign * (r["mean"] or 0.0), -r["n"]))
    return rows


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_summary(summary: Sequence[Mapping], *, max_rows: int | None = None) -> str:
    """A text table of :func:`summarize`'s rows: the parameters that vary, then stats.

    Accuracies are shown in percent.
    """
    rows = list(summary)
    if not rows:
        return "(no results)"
    metric = rows[0].get("metric", "cosine")
    names = list(dict.fromkeys(k for r in rows for k in r["params"]))
    if len(names) <= 3:  # grouped ``by`` a few parameters: show them all
        varying = names
    else:
        varying = [k for k in names
                   if len({_canonical(r["params"].get(k)) for r in rows}) > 1]
    scale, unit = (1.0, "s") if metric in TIME_METRICS else (100.0, "%")
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
    return "\n".join(text)


def plot_sweep(records_or_path, param: str, path=None, *, metric: str = "cosine",
               logx: bool = False, title: str | None = None, dpi: int = 150):
    """Mean ± sd over seeds of ``metric`` against ``param``, one curve per combination
    of the other parameters that vary. Returns the figure (written to ``path`` if
    given); see :func:`fastsd.plotting.plot_param_curve`."""
    from .plotting import plot_param_curve

    rows = summarize(records_or_path, metric=metric)
    if param not in rows[0]["params"]:
        raise ValueError(f"unknown parameter {param!r}; parameters: "
                         f"{', '.join(rows[0]['params'])}")
    for r in rows:
        v = r["params"][param]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"cannot plot against {param!r}: value {v!r} is not a number")
    names = list(rows[0]["params"])
    others = [k for k in names if k != param
              and len({_canonical(r["params"].get(k)) for r in rows}) > 1]
    xs = sorted({float(r["params"][param]) for r in rows})
    index = {x: i for i, x in enumerate(xs)}
    scale = 1.0 if metric in TIME_METRICS else 100.0
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
        ylabel = f"{metric} accuracy (%)"
    if len(means) == 1:
        (label, mu), = means.items()
        return plot_param_curve(xs, mu, sds[label], path, xlabel=param, ylabel=ylabel,
                                logx=logx, title=title, dpi=dpi)
    return plot_param_curve(xs, means, sds, path, xlabel=param, ylabel=ylabel, logx=logx,
                            title=title, dpi=dpi)


# ----------------------------------------------------------------------------- config
def load_config(path: str | os.PathLike) -> dict:
    """Read and validate a sweep config (TOML); returns keyword arguments of :func:`sweep`.

    Tables: ``[sweep]`` (seeds, results, scheduler, workers, probe, data, retries),
    ``[base]`` (fixed parameters), and either ``[grid]`` (name = list of values) or an
    array ``[[settings]]``. Relative paths are taken from the current directory.
    Everything is validated here (names, types, every setting's values), so a bad
    config fails before any cluster starts.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    unknown = [k for k in doc if k not in CONFIG_TABLES]
    if unknown:
        raise ValueError(f"{path}: unknown table or key {unknown[0]!r}; expected "
                         f"[sweep], [base], [grid] or [[settings]]")
    head = doc.get("sweep", {})
    if not isinstance(head, dict):
        raise TypeError(f"{path}: 'sweep' must be a table [sweep]")
    kwargs: dict[str, Any] = {}
    for key, value in head.items():
        if key not in CONFIG_SWEEP_KEYS:
            hint = (" (model parameters go in [base] or [grid])"
                    if key in sweepable_params() else "")
            raise ValueError(f"{path}: unknown key {key!r} in [sweep]{hint}; valid keys: "
                             f"{', '.join(CONFIG_SWEEP_KEYS)}")
        want = {"results": str, "scheduler": str, "data": str, "probe": bool,
                "seeds": list, "workers": int, "retries": int}[key]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise TypeError(f"{path}: [sweep] {key} must be {want.__name__}, got "
                            f"{value!r}")
        kwargs[CONFIG_SWEEP_KEYS[key]] = value
    base = doc.get("base", {})
    if not isinstance(base, dict):
        raise TypeError(f"{path}: 'base' must be a table [base]")
    kwargs["base"] = base
    if "grid" in doc:
        if not isinstance(doc["grid"], dict):
            raise TypeError(f"{path}: 'grid' must be a table [grid] of name = [values]")
        kwargs["grid"] = doc["grid"]
    if "settings" in doc:
        s = doc["settings"]
        if not isinstance(s, list) or not all(isinstance(t, dict) for t in s):
            raise TypeError(f"{path}: 'settings' must be an array of tables [[settings]]")
        kwargs["settings"] = s
    if "grid" not in kwargs and "settings" not in kwargs:
        raise ValueError(f"{path}: nothing to sweep: add a [grid] table or [[settings]]")
    try:
        expand(kwargs.get("grid"), settings=kwargs.get("settings"), base=base)
        if "seeds" in kwargs:
            _check_seeds(kwargs["seeds"])
        for key in ("n_workers", "retries"):
            if key in kwargs:
                check_number(f"[sweep] {key}", kwargs[key], low=1 if key == "n_workers"
                             else 0, integer=True)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return kwargs
