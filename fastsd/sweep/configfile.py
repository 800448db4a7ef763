"""Sweep config files (TOML): read, checked, turned into :func:`fastsd.sweep.sweep`'s
arguments.

Everything is validated before any data is loaded or cluster started
(:mod:`fastsd.sweep.config` checks the settings themselves).
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .._npz import check_regular_file
from .._validation import check_number
from ..rules import DEFAULT_RULE
from .config import DEFAULT_SEEDS, _prefixed, count_runs, expand, sweepable_params
from .data import DEFAULT_VALIDATION, _check_split

#: Keys of a config file's ``[sweep]`` table and the ``sweep()`` argument each sets.
CONFIG_SWEEP_KEYS = {"rule": "rule", "seeds": "seeds", "results": "results", "scheduler": "scheduler",
                     "workers": "n_workers", "probe": "probe", "data": "data",
                     "retries": "retries", "evaluate": "evaluate",
                     "validation": "validation"}
CONFIG_TABLES = ("sweep", "base", "grid", "settings")

#: Largest sweep config file read (bytes).
MAX_CONFIG_BYTES = 1 << 20

#: Type(s) of each ``[sweep]`` key's value.
_CONFIG_SWEEP_TYPES = {"rule": str, "results": str, "scheduler": str, "data": str, "probe": bool,
                       "seeds": list, "workers": int, "retries": int, "evaluate": str,
                       "validation": (int, float)}



def load_config(path: str | os.PathLike, *, check_settings: bool = True) -> dict:
    """Read and validate a sweep config (TOML); returns keyword arguments of ``sweep``.

    Tables: ``[sweep]`` (rule, seeds, results, scheduler, workers, probe, data, retries,
    evaluate, validation),
    ``[base]`` (fixed parameters), and either ``[grid]`` (name = list of values) or an
    array ``[[settings]]``. Relative paths are taken from the current directory.
    Everything is validated here (names, types, the number of runs, every setting's
    values), so a bad config fails before any cluster starts.

    Parameters
    ----------
    path : path
        The TOML file.
    check_settings : bool, default True
        Also validate every setting's values (:func:`expand`); ``False`` leaves that to
        :func:`~fastsd.sweep.sweep`, which does it anyway before it starts (so a large
        sweep is not validated twice).

    Returns
    -------
    dict
        Keyword arguments of :func:`fastsd.sweep.sweep` (``base`` and ``grid`` or
        ``settings``, plus those the ``[sweep]`` table sets).

    Raises
    ------
    ValueError, TypeError
        Prefixed with ``path``: invalid TOML, an unknown table or key, a value of the
        wrong type, more than :data:`MAX_RUNS` runs, or anything :func:`expand`
        rejects.
    """
    path = Path(path)
    if check_regular_file(path, "sweep config") > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: a sweep config of more than {MAX_CONFIG_BYTES >> 20} MiB "
                         "is not one")
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}: not a sweep config (values nested too deeply)") from None
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
                    if key in sweepable_params(head.get("rule", DEFAULT_RULE)) else "")
            raise ValueError(f"{path}: unknown key {key!r} in [sweep]{hint}; valid keys: "
                             f"{', '.join(CONFIG_SWEEP_KEYS)}")
        want = _CONFIG_SWEEP_TYPES[key]
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple)
                                                      else (want,)))
            raise TypeError(f"{path}: [sweep] {key} must be {names}, got {value!r}")
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
    with _prefixed(str(path)):
        sweep_of = dict(settings=kwargs.get("settings"), base=base,
                        rule=kwargs.get("rule", DEFAULT_RULE))
        count_runs(kwargs.get("grid"), seeds=kwargs.get("seeds", DEFAULT_SEEDS), **sweep_of)
        if check_settings:
            expand(kwargs.get("grid"), **sweep_of)
        if "evaluate" in kwargs or "validation" in kwargs:
            _check_split(kwargs.get("evaluate", "validation"),
                         kwargs.get("validation", DEFAULT_VALIDATION))
        for key in ("n_workers", "retries"):
            if key in kwargs:
                check_number(f"[sweep] {key}", kwargs[key], low=1 if key == "n_workers"
                             else 0, integer=True)
    return kwargs
