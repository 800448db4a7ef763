"""What a sweep runs: parameter names, settings (grid or list), seeds.

Everything here is validated before any data is loaded or cluster started, so a bad
sweep fails at once with a message naming the problem.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import math
import numbers
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._validation import check_number
from ..base import PrototypeModel
from ..rules import DEFAULT_RULE, rule_class

#: Seeds of a sweep that names none.
DEFAULT_SEEDS = (0, 1, 2)

#: Most runs (settings x seeds) a sweep may have: more is refused before anything is
#: validated one by one, loaded or started (a grid's size is the product of its lists'
#: lengths, easily millions by mistake).
MAX_RUNS = 100_000

# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _prefixed(where: str) -> Iterator[None]:
    """Re-raise a ``TypeError`` or ``ValueError`` with ``"{where}: "`` before its message."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _is_list(value, types=(Sequence, np.ndarray)) -> bool:
    """Whether ``value`` is a list of values: one of ``types``, not a str or mapping."""
    return isinstance(value, types) and not isinstance(value, (str, bytes, Mapping))


def _canonical(obj) -> str:
    """Canonical (sorted, compact, strict) JSON of ``obj``: equal values, equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _describe(setting: Mapping) -> str:
    """``{name=value, ...}`` of a setting, for messages."""
    return "{" + ", ".join(f"{k}={v!r}" for k, v in setting.items()) + "}"


# --------------------------------------------------------------------------- parameters
#: Constructor parameters a sweep does not set as such: the seeds set ``random_state``,
#: ``epochs`` is swept as the fit argument, ``features`` only changes ``transform``.
NOT_MODEL_SWEPT = ("random_state", "epochs", "features", "feature_norm", "max_input")


def _model_param_names(rule=DEFAULT_RULE) -> list[str]:
    return [p for p in rule_class(rule)._param_names() if p not in NOT_MODEL_SWEPT]


#: A sweep's own defaults of ``fit`` arguments whose ``fit`` default is None (it
#: trains one epoch unless told otherwise; run keys hold the value).
SWEEP_FIT_DEFAULTS = {"epochs": 1}

#: ``fit`` keywords that a sweep never sets.
NOT_SWEPT = ("progress", "eval_set", "checkpoint")


@functools.cache
def _fit_defaults() -> Mapping[str, Any]:
    """Keyword-only arguments of ``fit`` (the same for every rule) and their defaults,
    except those that are not hyper-parameters (``progress``, ``checkpoint``; ``eval_set``,
    data).

    Read from the signature (once), so fit arguments added later become sweepable
    without changing this module.
    """
    sig = inspect.signature(PrototypeModel.fit)
    return types.MappingProxyType(
        {name: SWEEP_FIT_DEFAULTS.get(name, p.default) for name, p in sig.parameters.items()
         if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in NOT_SWEPT})


def sweepable_params(rule=DEFAULT_RULE) -> list[str]:
    """Names a grid, a setting or ``base`` may hold for ``rule`` (a registered rule
    name): its model parameters and the fit arguments."""
    return _model_param_names(rule) + list(_fit_defaults())


def _normalize(values: Mapping[str, Any], where: str,
               rule=DEFAULT_RULE) -> tuple[dict, dict]:
    """Validate one merged setting; return (all model params, fit args), normalised.

    Every parameter is checked by constructing the model and calling its
    ``_check_params()``; numbers come back as ``float``/``int`` and the dtype as its
    name, so equal settings have equal keys.
    """
    model_names = set(_model_param_names(rule))
    model_part = {k: v for k, v in values.items() if k in model_names}
    with _prefixed(where):
        model = rule_class(rule)(**model_part)
        checked = model._check_params()
    params = {name: value for name, value in model.get_params().items()
              if name not in NOT_MODEL_SWEPT}
    for name, value in checked.items():
        params[name] = value.name if isinstance(value, np.dtype) else value
    fit_args = {}
    for name, default in _fit_defaults().items():
        value = values.get(name, default)
        with _prefixed(where):
            if name == "epochs":
                value = check_number("epochs", value, low=1, integer=True)
            elif name == "samples_per_epoch" and value is not None:
                value = check_number("samples_per_epoch", value, low=1, integer=True)
            elif isinstance(value, np.generic):
                value = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"{where}: {name} must be a number, got {value!r}")
        fit_args[name] = value
    return params, fit_args


def _check_names(mapping: Mapping, where: str, rule=DEFAULT_RULE) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where} must be a table (dict) of parameter names, got "
                        f"{type(mapping).__name__}")
    valid = sweepable_params(rule)
    for name in mapping:
        if name == "random_state":
            raise ValueError(f"{where}: random_state is set by the sweep's seeds; list "
                             "them in seeds instead")
        if name in ("features", "feature_norm", "max_input"):
            raise ValueError(f"{where}: {name} is not swept: it changes what transform "
                             "returns or which inputs are accepted, not what is learned "
                             "(sweeps score the learned prototypes)")
        if name not in valid:
            raise ValueError(f"{where}: unknown parameter {name!r} for rule {rule!r}; "
                             f"valid parameters: {', '.join(valid)}")


# ----------------------------------------------------------------------------- settings
def expand(grid: Mapping[str, Sequence] | None = None, *,
           settings: Sequence[Mapping] | None = None, base: Mapping | None = None,
           epochs: int | None = None, samples_per_epoch: int | None = None,
           rule: str = DEFAULT_RULE) -> list[dict]:
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
    rule : str, default "sd"
        The registered rule (:mod:`fastsd.rules`) whose parameters are swept.

    Returns
    -------
    list of dict
        One dict per setting with keys ``rule``, ``setting`` (the swept values,
        normalised), ``params`` (all model parameters) and ``fit`` (fit arguments).

    Raises
    ------
    ValueError, TypeError
        Naming the problem: unknown parameter (with the valid ones), empty grid or
        value list, more than :data:`MAX_RUNS` settings, a value the model rejects,
        duplicate settings, grid and settings both given.
    """
    base, lists = _structure(grid, settings, base, epochs, samples_per_epoch, rule)
    _check_size(_n_settings(lists, settings))
    if lists is not None:
        swept = (dict(zip(lists, combo)) for combo in itertools.product(*lists.values()))
    else:
        swept = (dict(setting) for setting in settings)
    out, seen = [], {}
    for i, setting in enumerate(swept):
        where = (f"setting {_describe(setting)}" if grid is not None
                 else f"settings[{i}] {_describe(setting)}")
        params, fit = _normalize({**base, **setting}, where, rule)
        normal = {**params, **fit}
        entry = {"rule": rule, "setting": {k: normal[k] for k in setting},
                 "params": params, "fit": fit}
        ident = _canonical({"params": params, "fit": fit})
        if ident in seen:
            raise ValueError(f"{where} duplicates {seen[ident]} (same parameters after "
                             "normalisation)")
        seen[ident] = where
        out.append(entry)
    return out


def _structure(grid, settings, base, epochs, samples_per_epoch, rule
               ) -> tuple[dict, dict[str, list] | None]:
    """What :func:`expand` checks before any setting: the rule, the names, the shape
    of ``grid``/``settings``/``base``. Returns ``base`` (with ``epochs`` and
    ``samples_per_epoch`` put in) and the grid's value lists (None for settings)."""
    rule_class(rule)  # an unknown rule fails first, listing the registered ones
    base = {} if base is None else base
    _check_names(base, "base", rule)
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
    if grid is not None:
        return base, _grid_lists(grid, base, rule)
    if not _is_list(settings, Sequence):
        raise TypeError(f"settings must be a list of dicts, got {type(settings).__name__}")
    if len(settings) == 0:
        raise ValueError("the list of settings is empty")
    for i, setting in enumerate(settings):
        _check_names(setting, f"settings[{i}]", rule)
    return base, None


def _grid_lists(grid: Mapping[str, Sequence], base: Mapping, rule) -> dict[str, list]:
    """A grid's value lists, checked against ``base``; their product is the settings."""
    _check_names(grid, "grid", rule)
    if not grid:
        raise ValueError("the grid is empty: give at least one parameter with a list "
                         "of values")
    lists = {}
    for name, values in grid.items():
        if name in base:
            raise ValueError(f"{name!r} is both fixed (base) and swept (grid); "
                             "remove it from one of them")
        if not _is_list(values):
            raise TypeError(f"grid: the values of {name!r} must be a list, got "
                            f"{values!r} (put fixed values in base)")
        if len(values) == 0:
            raise ValueError(f"grid: the value list of {name!r} is empty")
        lists[name] = list(values)
    return lists


def _n_settings(lists: Mapping[str, list] | None, settings) -> int:
    """Settings of a checked grid (the product of its lists' lengths) or list."""
    return math.prod(map(len, lists.values())) if lists is not None else len(settings)


def _check_size(n_settings: int, n_seeds: int | None = None) -> None:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs (or settings), naming its size."""
    runs = n_settings * (n_seeds or 1)
    if runs <= MAX_RUNS:
        return
    size = (f"{n_settings} settings" if n_seeds is None
            else f"{n_settings} settings x {n_seeds} seeds = {runs} runs")
    raise ValueError(f"the sweep is too large: {size}, more than the {MAX_RUNS} a sweep "
                     "may have; sweep fewer values (or split it into several sweeps)")


def count_runs(grid=None, *, settings=None, base=None, seeds=DEFAULT_SEEDS, epochs=None,
               samples_per_epoch=None, rule: str = DEFAULT_RULE) -> tuple[int, int]:
    """``(settings, seeds)`` of a sweep, from its names and shape alone (fast: no
    setting is validated), refusing more than :data:`MAX_RUNS` runs.

    Parameters
    ----------
    grid, settings, base, epochs, samples_per_epoch, rule
        As for :func:`expand`.
    seeds : sequence of int
        As for :func:`~fastsd.sweep.sweep`.

    Returns
    -------
    n_settings, n_seeds : int
        The sweep has ``n_settings * n_seeds`` runs.

    Raises
    ------
    ValueError, TypeError
        What :func:`expand` raises before looking at any setting's values, bad seeds,
        or more than :data:`MAX_RUNS` runs.
    """
    base, lists = _structure(grid, settings, base, epochs, samples_per_epoch, rule)
    n_settings, n_seeds = _n_settings(lists, settings), len(_check_seeds(seeds))
    _check_size(n_settings, n_seeds)
    return n_settings, n_seeds


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not _is_list(seeds):
        raise TypeError(f"seeds must be a list of non-negative integers, got {seeds!r}")
    if len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed")
    out = [check_number("seed", s, low=0, integer=True) for s in seeds]
    if len(set(out)) != len(out):
        raise ValueError(f"seeds has duplicates: {out}")
    return out
