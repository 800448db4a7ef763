"""Run identity: run keys, the key of a record read back, and the plan of runs.

The results file itself (header, appending, reading, checking records) is
:mod:`fastsd.sweep.resultsfile`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..base import _check_batch
from ..rules import DEFAULT_RULE
from .config import (_canonical, _describe, _fit_defaults, _model_param_names, _normalize,
                     _prefixed)


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
    """The runs of ``settings`` (from :func:`~fastsd.sweep.expand`) times ``seeds``,
    refusing a setting that no run could train (``samples_per_epoch`` more than the
    images trained on, ``batch_size`` more than ``samples_per_epoch``).

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
        if "batch_size" in entry["params"]:  # what fit would refuse in every run
            with _prefixed(f"setting {_describe(entry['setting'])}"):
                _check_batch(entry["params"], fit["samples_per_epoch"], "samples per epoch")
        setting = dict(entry["setting"])
        if "samples_per_epoch" in setting:
            setting["samples_per_epoch"] = fit["samples_per_epoch"]
        for seed in seeds:
            runs.append(_Run(setting, entry["params"], fit, seed,
                             run_key(entry["params"], fit, seed, entry["rule"]),
                             entry["rule"]))
    return runs
