"""Saving and loading models: one ``.npz`` per model, JSON metadata, no pickle.

The file holds ``meta`` (JSON: format, version, model class, parameters, samples
seen and, to continue training exactly, the random generator's state and a
checkpointed fit's progress), one array per state attribute and, if recorded, ``history`` (JSON);
:mod:`fastsd._model_file` lists the entries and fields and checks them. :func:`save`
runs on what it is about to write the very checks :func:`load` runs on what it reads,
before the target is opened, so it never replaces a file with one ``load`` refuses.
Writes are atomic (:func:`fastsd._io.atomic_open`: the target is the old or the new
complete file, its mode is kept, a symlink is written through, a read-only file is
refused). :func:`load` reads through :func:`fastsd._npz.read_npz_arrays`: a regular
file, a zip archive, sizes checked before anything is decompressed, never unpickled.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np

from ._io import atomic_open
from ._model_file import FORMAT, FORMAT_VERSION, ModelFileError, check_headers, decode
from ._npz import NpzError, read_npz_arrays
from ._version import __version__
from .fit_progress import checkpoint_meta
from .history import check_history

if TYPE_CHECKING:
    from .base import PrototypeModel

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]


def save(model: PrototypeModel, path: str | os.PathLike) -> None:
    """Write ``model``'s parameters and state to ``path`` as ``.npz`` (atomic).

    Parameters
    ----------
    model : PrototypeModel
    path : path-like

    Raises
    ------
    ValueError
        The model could not be loaded back (an invalid parameter, state of the wrong
        shape or with NaN, a negative ``samples_seen_``, a malformed ``history_``...);
        ``path`` is not touched.
    PermissionError
        ``path`` is a read-only file.
    """
    try:
        entries = _entries(model)
        decode(entries, expected=type(model))
    except ModelFileError as exc:
        raise ModelFileError(f"cannot save the model to {os.fspath(path)}: {exc}") from exc
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **entries)


def _entries(model) -> dict[str, np.ndarray]:
    """The arrays a model file of ``model`` holds (checked by the caller)."""
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": type(model).__name__,
        "fastsd_version": __version__,
        "params": {name: _plain(name, value) for name, value in model.get_params().items()},
        "samples_seen": _plain("samples_seen_", getattr(model, "samples_seen_", 0)),
        **checkpoint_meta(model),
    }
    if getattr(model, "dataset_", None) is not None:
        meta["dataset"] = model.dataset_
    entries = {"meta": _json_entry(meta, "the metadata")}
    if model._has_state():
        for name in model._state:
            entries[name] = np.asarray(getattr(model, name))
    history = getattr(model, "history_", None)
    if history:
        try:
            history = check_history(history)
        except ValueError as exc:
            raise ModelFileError(f"history_: {exc}") from None
        entries["history"] = _json_entry(history, "history_")
    return entries


def _plain(name: str, value):
    """A parameter or counter as plain JSON (numpy scalars and dtypes converted)."""
    if isinstance(value, np.random.Generator):
        raise TypeError(f"cannot save a model whose {name} is a Generator; use an int")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type)
                                       and issubclass(value, np.generic)):
        return np.dtype(value).name
    return value


def _json_entry(obj, what: str) -> np.ndarray:
    try:
        return np.array(json.dumps(obj))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{what} cannot be written as JSON ({exc})") from None


def load(path: str | os.PathLike, expected: type | None = None) -> PrototypeModel:
    """Load any fastsd model written by :func:`save`.

    Parameters
    ----------
    path : path-like
    expected : type, optional
        The class the model must be (``SparseDream.load`` passes ``SparseDream``).

    Returns
    -------
    PrototypeModel

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Naming ``path`` and the problem: not a regular file, not an ``.npz``, corrupt,
        too large, not a fastsd model, an invalid or unknown field or entry, or state
        that does not fit the saved parameters.
    """
    path = os.fspath(path)
    try:
        entries = read_npz_arrays(path, what="model file", check_headers=check_headers)
    except ModelFileError as exc:
        raise ModelFileError(_naming(path, str(exc))) from None
    except NpzError as exc:
        raise ModelFileError(f"not a readable fastsd model file (.npz): {exc}") from None
    try:
        return decode(entries, expected)
    except ModelFileError as exc:
        raise ModelFileError(_naming(path, str(exc))) from None


def _naming(path: str, problem: str) -> str:
    """``problem`` as said of the file ``path``."""
    return f"{path} is {problem}" if problem.startswith("not a ") else f"{path}: {problem}"
