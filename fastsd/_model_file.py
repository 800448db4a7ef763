"""What a fastsd model file holds, and the checks every one passes, on save and on load.

A model file is an ``.npz`` whose entries are listed in :data:`JSON_ENTRIES` (``meta``,
required, and ``history``, optional: JSON text in 0-d string arrays) plus, for a fitted
model, one array per state attribute of the model's class (``cls._state``). Nothing
else is accepted. The ``meta`` object's fields are listed in :data:`META_FIELDS`, each
with one function that checks it; adding a field means adding one function and one
row. :func:`decode` runs every check and builds the model: :func:`fastsd.load` runs
it on what it read, :func:`fastsd.persistence.save` on what it is about to write, so
that a file ``save`` writes is always one ``load`` reads.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from ._memory import check_memory
from ._validation import check_number
from .fit_progress import FitProgress, generator_from_state, restore_checkpoint
from .history import check_history
from .rules import rule_class

FORMAT = "fastsd-model"
FORMAT_VERSION = 1

#: Bounds on the JSON entries, in characters (checked on the declared ``.npy`` header,
#: before anything is decompressed). A history point takes about 60 characters.
MAX_JSON_CHARS = {"meta": 1 << 20, "history": 64 << 20}

#: JSON values a parameter may take (what the constructors accept, written as JSON).
_SCALARS = (str, int, float, bool, type(None))


class ModelFileError(ValueError):
    """A model file, or a model about to be saved, breaks the model file format."""


# -- meta fields: one check each, in the order they are checked -----------------------
def _check_format(value, checked):
    if value != FORMAT:
        raise ModelFileError(f"not a fastsd model file (format {value!r:.80})")
    return value


def _check_format_version(value, checked):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(f"format_version must be an integer, got {value!r:.80}")
    if value > FORMAT_VERSION:
        raise ModelFileError(f"written by a newer fastsd (format version {value}); "
                             "upgrade fastsd to read it")
    if value < 1:
        raise ModelFileError(f"format_version must be 1 to {FORMAT_VERSION}, got {value}")
    return value


def _check_model(value, checked):
    if not isinstance(value, str):
        raise ModelFileError(f"the model type must be a string, got {value!r:.80}")
    try:
        return rule_class(value)
    except ValueError:
        raise ModelFileError(f"unknown model type {value!r:.80} (not a registered "
                             "rule)") from None


def _check_fastsd_version(value, checked):
    if not isinstance(value, str) or len(value) > 100:
        raise ModelFileError(f"fastsd_version must be a short string, got {value!r:.80}")
    return value


def _check_params(value, checked):
    """The parameters, as the constructor takes them; validated by the class itself."""
    cls = checked["model"]
    if not isinstance(value, dict):
        raise ModelFileError(f"params must be a JSON object, got {value!r:.80}")
    unknown = set(value) - set(cls._param_names())
    if unknown:
        raise ModelFileError(f"unknown parameters for {cls.__name__}: "
                             f"{sorted(unknown)[:10]}")
    for name, param in value.items():
        if not isinstance(param, _SCALARS):
            raise ModelFileError(f"parameter {name} must be a number, string, boolean "
                                 f"or null, got {param!r:.80}")
    try:
        model = cls(**value)
        model._check_params()
        model._check_feature_params()
        model._max_input()
        if "random_state" in value and value["random_state"] is not None:
            check_number("random_state", value["random_state"], low=0, integer=True)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"invalid parameters for {cls.__name__}: {exc}") from exc
    return value


def _check_samples_seen(value, checked):
    try:
        return check_number("samples_seen", value, low=0, integer=True)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(str(exc)) from None


def _check_rng(value, checked):
    """The state of the model's random generator (for bit-identical continuation)."""
    try:
        return None if value is None else generator_from_state(value, "rng")
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None


def _check_fit_progress(value, checked):
    """Where a checkpointed fit stands (:class:`fastsd.fit_progress.FitProgress`)."""
    try:
        return None if value is None else FitProgress.from_dict(value)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None


def _check_dataset(value, checked):
    """The name of the data set the model was trained on (``dataset_``), or None."""
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= 200
                                  and value.isprintable()):
        raise ModelFileError(f"dataset must be a short printable name or null, got "
                             f"{value!r:.80}")
    return value


_REQUIRED = object()

#: The fields of ``meta``: name -> (check, default). A check takes the field's value
#: and the fields checked before it (by name, as their checks returned them) and
#: returns the value to use; ``_REQUIRED`` marks a field without default.
META_FIELDS: dict[str, tuple[Callable[[Any, dict], Any], Any]] = {
    "format": (_check_format, _REQUIRED),
    "format_version": (_check_format_version, FORMAT_VERSION),
    "model": (_check_model, _REQUIRED),
    "fastsd_version": (_check_fastsd_version, "unknown"),
    "params": (_check_params, {}),
    "samples_seen": (_check_samples_seen, 0),
    "rng": (_check_rng, None),
    "fit_progress": (_check_fit_progress, None),
    "dataset": (_check_dataset, None),
}


def check_meta(meta) -> dict:
    """Check every field of a decoded ``meta`` object (:data:`META_FIELDS`).

    Returns the checked fields by name (``"model"`` is the model class); raises
    :class:`ModelFileError` for a missing, unknown or invalid field.
    """
    if not isinstance(meta, dict) or "format" not in meta:
        raise ModelFileError(f"not a fastsd model file (its metadata is {meta!r:.80})")
    unknown = set(meta) - set(META_FIELDS)
    if unknown:
        raise ModelFileError(f"unknown metadata fields {sorted(unknown)[:10]}")
    checked: dict[str, Any] = {}
    for name, (check, default) in META_FIELDS.items():
        if name not in meta and default is _REQUIRED:
            raise ModelFileError(f"the metadata has no {name!r} field")
        checked[name] = check(meta.get(name, default), checked)
    return checked


# -- entries --------------------------------------------------------------------------
def parse_json(entries: dict, name: str):
    """The JSON value held by entry ``name`` (a 0-d string array) of ``entries``."""
    value = entries[name]
    if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind == "U"):
        raise ModelFileError(f"entry {name!r} must be a JSON string, got an array of "
                             f"shape {np.shape(value)} and dtype {np.asarray(value).dtype}")
    try:
        return json.loads(str(value))
    except RecursionError:
        raise ModelFileError(f"entry {name!r} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise ModelFileError(f"entry {name!r} is not valid JSON ({exc})") from None


def _check_history(entries: dict):
    try:
        return check_history(parse_json(entries, "history"))
    except ModelFileError:
        raise
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None


#: The entries besides the state arrays: name -> whether required.
JSON_ENTRIES = {"meta": True, "history": False}


def check_headers(headers: dict[str, tuple]) -> None:
    """Check the declared ``(shape, dtype)`` of every entry before any is read.

    The JSON entries must be 0-d strings under :data:`MAX_JSON_CHARS`; every other
    entry a numeric array of 1 or 2 dimensions, and all of them together must fit in
    the available memory (read, and converted to float64 at worst).
    """
    needed = {}
    for name, (shape, dtype) in headers.items():
        if name in JSON_ENTRIES:
            if shape != () or dtype.kind != "U":
                raise ModelFileError(f"entry {name!r} must be a JSON string, got shape "
                                     f"{shape} and dtype {dtype}")
            if dtype.itemsize // 4 > MAX_JSON_CHARS[name]:
                raise ModelFileError(f"entry {name!r} holds {dtype.itemsize // 4:,} "
                                     f"characters, more than the "
                                     f"{MAX_JSON_CHARS[name]:,} accepted")
            continue
        if dtype.kind not in "fiu" or len(shape) not in (1, 2):
            raise ModelFileError(f"entry {name!r} must be a numeric array of 1 or 2 "
                                 f"dimensions, got shape {shape} and dtype {dtype}")
        size = int(np.prod(shape, dtype=object))
        needed[name] = size * (dtype.itemsize + 8)
    try:
        check_memory(needed, model="loading this model file",
                     advice="load it on a machine with more memory")
    except MemoryError as exc:
        raise ModelFileError(str(exc)) from None


def _check_required(entries: dict) -> None:
    missing = [name for name, required in JSON_ENTRIES.items()
               if required and name not in entries]
    if missing:
        raise ModelFileError(f"not a fastsd model file: it has no {missing[0]!r} entry "
                             f"(entries: {', '.join(sorted(entries)[:10]) or 'none'})")


def _check_entries(entries: dict, cls: type) -> bool:
    """Refuse unknown entries and partial state; returns whether there is state."""
    unknown = set(entries) - set(JSON_ENTRIES) - set(cls._state)
    if unknown:
        raise ModelFileError(f"unexpected entries {sorted(unknown)[:10]} for a "
                             f"{cls.__name__} (expected {sorted(cls._state)})")
    present = [name for name in cls._state if name in entries]
    if present and len(present) < len(cls._state):
        raise ModelFileError(f"missing state "
                             f"{[name for name in cls._state if name not in entries]}")
    return bool(present)


def _check_state_shapes(entries: dict, model) -> None:
    """Shapes against the parameters, before anything is converted."""
    n_neurons = model._n_neurons()
    first = np.shape(entries[next(iter(model._state))])
    n_features = first[1] if len(first) == 2 else -1
    for name, shape_of in model._state.items():
        value = entries[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise ModelFileError(f"{name} must be a numeric array, got "
                                 f"{type(value).__name__} of dtype "
                                 f"{getattr(value, 'dtype', None)}")
        want = shape_of(n_neurons, n_features)
        if value.shape != want:
            raise ModelFileError(f"{name} has shape {value.shape}, expected {want} for "
                                 f"n_neurons={n_neurons}")


def decode(entries: dict[str, np.ndarray], expected: type | None = None):
    """Build the model that ``entries`` (a model file's arrays) describe, checking all.

    Parameters
    ----------
    entries : dict of str to ndarray
        The file's entries, as read (or as ``save`` is about to write them).
    expected : type, optional
        The class the model must be (or subclass).

    Returns
    -------
    PrototypeModel

    Raises
    ------
    ModelFileError
        With a message naming the problem (not the file: callers add it).
    """
    _check_required(entries)
    meta = check_meta(parse_json(entries, "meta"))
    cls = meta["model"]
    if expected is not None and not issubclass(cls, expected):
        raise ModelFileError(f"holds a {cls.__name__}, not a {expected.__name__}")
    has_state = _check_entries(entries, cls)
    model = cls(**meta["params"])
    if has_state:
        _check_state_shapes(entries, model)
        params = model._check_params()
        for name in cls._state:
            setattr(model, name, entries[name])
        try:
            state = model._checked_state(params["n_neurons"], params["dtype"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(str(exc)) from None
        for name, value in state.items():
            setattr(model, name, value)
        model.samples_seen_ = meta["samples_seen"]
        model.dataset_ = meta["dataset"]
    elif meta["samples_seen"] or meta["dataset"] is not None:
        raise ModelFileError(f"samples_seen is {meta['samples_seen']} and dataset "
                             f"{meta['dataset']!r} but the file holds no state")
    if "history" in entries:
        model.history_ = _check_history(entries)
    try:
        restore_checkpoint(model, meta["rng"], meta["fit_progress"])
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    return model
