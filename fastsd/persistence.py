"""Saving and loading models: one ``.npz`` per model, JSON metadata, no pickle.

The file holds ``meta`` (JSON: format, version, model class, parameters, samples
seen), one array per state attribute and, if recorded, ``history`` (JSON). Writes are
atomic (:func:`fastsd._io.atomic_open`); :func:`load` validates everything it reads.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ._version import __version__
from ._io import atomic_open
from ._validation import check_dtype
from .fit_progress import checkpoint_meta, restore_checkpoint
from .rules import rule_class

FORMAT = "fastsd-model"
FORMAT_VERSION = 1


def save(model, path: str | os.PathLike) -> None:
    """Write ``model``'s parameters and state to ``path`` as ``.npz`` (atomic)."""
    params = model.get_params()
    check_dtype(params.get("dtype", "float64"))
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": type(model).__name__,
        "fastsd_version": __version__, "params": _jsonable(params),
        "samples_seen": int(getattr(model, "samples_seen_", 0)),
        **checkpoint_meta(model),
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    if model._has_state():
        for name in model._state:
            arrays[name] = np.asarray(getattr(model, name))
    history = getattr(model, "history_", None)
    if history:
        arrays["history"] = np.array(json.dumps(_jsonable(history)))
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _jsonable(obj):
    """Convert numpy scalars/arrays inside dicts and lists to plain Python for JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.random.Generator):
        raise TypeError("cannot save a model whose random_state is a Generator; use an int")
    return obj


def load(path: str | os.PathLike, expected: type | None = None):
    """Load any fastsd model written by ``save``.

    Raises ``ValueError`` naming the problem for a missing, unreadable, truncated or
    foreign file, or for state that does not fit the saved parameters.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable fastsd model file (.npz): {exc}") from exc
    if "meta" not in files:
        raise ValueError(f"{path} is not a fastsd model file: it has no 'meta' entry "
                         f"(entries: {', '.join(sorted(files)) or 'none'})")
    try:
        meta = json.loads(str(files.pop("meta")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: the model metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastsd model file (format {meta!r:.80})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer fastsd (format version "
                         f"{meta['format_version']}); upgrade fastsd to read it")
    try:
        cls = rule_class(str(meta.get("model")))
    except ValueError:
        raise ValueError(f"{path}: unknown model type {meta.get('model')!r} (not a "
                         "registered rule)") from None
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    params = meta.get("params", {})
    unknown = set(params) - set(cls._param_names())
    if unknown:
        raise ValueError(f"{path}: unknown parameters for {cls.__name__}: {sorted(unknown)}")
    model = cls(**params)
    model._check_params()
    history = files.pop("history", None)
    if files:
        missing = [name for name in cls._state if name not in files]
        if missing:
            raise ValueError(f"{path}: missing state {missing}")
        for name in cls._state:
            setattr(model, name, files[name])
        dtype = check_dtype(params.get("dtype", "float64"))
        model._checked_state(model._n_neurons(), dtype)  # shapes and finiteness
        for name in cls._state:
            setattr(model, name, np.ascontiguousarray(files[name], dtype=dtype))
        model.samples_seen_ = int(meta.get("samples_seen", 0))
    if history is not None:
        model.history_ = json.loads(str(history))
    restore_checkpoint(model, meta, path)
    return model
