"""Run identity and the results file: run keys, the plan of runs, JSON Lines records.

Records are appended one whole line at a time (locked, fsynced), so a results file
holds every finished run exactly once even if the sweep was interrupted; readers
skip an incomplete last line (a write cut short by a crash) and later duplicates.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..rules import DEFAULT_RULE
from .config import _canonical, _describe, _fit_defaults, _model_param_names, _normalize

try:  # POSIX: an advisory lock keeps lines from two processes from interleaving
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


# ---------------------------------------------------------------------------- run keys
def run_key(params: Mapping, fit: Mapping, seed: int, rule: str = DEFAULT_RULE) -> str:
    """Canonical JSON identifying one run (rule, all model params, fit args, seed); the
    default rule is left out, so its keys are those of records that name no rule."""
    key = {"params": dict(params), "fit": dict(fit), "seed": int(seed)}
    if rule != DEFAULT_RULE:
        key["rule"] = rule
    return _canonical(key)


def _record_split(rec: Mapping) -> tuple[str, str]:
    """``(evaluated_on, split)`` of a record; records that name neither were scored on
    the test set."""
    data = rec.get("data")
    split = data.get("split", "test") if isinstance(data, Mapping) else "test"
    return str(rec.get("evaluated_on", "test")), str(split)


def _record_key(rec: Mapping) -> str:
    """The run key of a record read from a results file (missing names get defaults)."""
    params = dict(rec["params"])
    rule = rec.get("rule", DEFAULT_RULE)
    try:
        known = set(_model_param_names(rule))
    except ValueError:  # a rule no longer registered: keyed as written
        known = set()
    model = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    try:
        model, _ = _normalize(model, "record", rule)
    except (TypeError, ValueError):
        pass  # keyed as written
    fit = {name: rec.get(name, default) for name, default in _fit_defaults().items()}
    return run_key({**model, **extra}, fit, rec["seed"], rule)


@dataclass(frozen=True)
class _Run:
    setting: dict
    params: dict
    fit: dict
    seed: int
    key: str = field(repr=False)
    rule: str = DEFAULT_RULE

    @property
    def run_id(self) -> str:
        return hashlib.blake2b(self.key.encode(), digest_size=8).hexdigest()

    def spec(self) -> dict:
        return {"rule": self.rule, "setting": self.setting, "params": self.params,
                "fit": self.fit, "seed": self.seed}


def _plan(settings: list[dict], seeds: list[int], n_train: int,
          held_out: int = 0) -> list[_Run]:
    """The runs of ``settings`` (from :func:`~fastsd.sweep.expand`) times ``seeds``.

    ``samples_per_epoch=None`` is resolved to ``n_train`` (the images trained on), so it
    is part of the key; ``held_out`` (images held out for validation) only goes into the
    message when ``samples_per_epoch`` is more than ``n_train``.
    """
    runs = []
    for entry in settings:
        fit = dict(entry["fit"])
        spe = fit.get("samples_per_epoch")
        if spe is None:
            fit["samples_per_epoch"] = n_train
        elif spe > n_train:
            less = (f" (the training set less the last {held_out} images, held out "
                    "for validation)" if held_out else "")
            raise ValueError(f"setting {_describe(entry['setting'])}: samples_per_epoch="
                             f"{spe} is more than the {n_train} training samples{less}")
        setting = dict(entry["setting"])
        if "samples_per_epoch" in setting:
            setting["samples_per_epoch"] = fit["samples_per_epoch"]
        for seed in seeds:
            runs.append(_Run(setting, entry["params"], fit, seed,
                             run_key(entry["params"], fit, seed, entry["rule"]),
                             entry["rule"]))
    return runs


# ----------------------------------------------------------------------- results file
_WRITE_LOCK = threading.Lock()


def _check_not_directory(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"results path {path} is a directory, not a file")


def _check_results_path(results) -> Path:
    if not isinstance(results, (str, os.PathLike)) or not os.fspath(results):
        raise TypeError(f"results must be a file path, got {results!r}")
    path = Path(results)
    _check_not_directory(path)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise PermissionError(f"results file {path} is not readable and writable")
    return path


def append_record(path: str | os.PathLike, record: Mapping) -> None:
    """Append ``record`` as one JSON line: a single ``write``, flushed and fsynced.

    An advisory lock (``flock``) keeps concurrent writers' lines whole. If the file
    ends in an incomplete line (a write cut short by a crash), the new record starts
    on a line of its own; readers skip the incomplete one.

    Parameters
    ----------
    path : path
        The results file; it and its directory are created if missing.
    record : dict
        A JSON-able record (strict JSON: ``ValueError`` for NaN or infinity).
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

    Parameters
    ----------
    path : path
        The results file (JSON Lines).
    missing_ok : bool, default False
        Return ``[]`` for a missing file instead of raising ``FileNotFoundError``.

    Returns
    -------
    list of dict
        The records, the first of each run.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(f"results file not found: {path}")
    _check_not_directory(path)
    lines = path.read_bytes().split(b"\n")
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
