"""One-call training: ``fastsd.train(...)`` (also ``import fastsd.train``).

Trains any registered rule (:mod:`fastsd.rules`) with its class defaults (some of
them functions of the number of neurons, ``docs/scaling.md``), its default number of
epochs and, if asked, one of its named ``presets``. The module itself is
callable, so ``fastsd.train(...)`` and ``fastsd.train.train(...)`` are the same call.
"""
from __future__ import annotations

import sys
import types

from .rules import DEFAULT_RULE, rule_class
from .scaling import is_auto

#: ``fit`` arguments that ``train`` and presets may set.
FIT_KEYS = ("epochs", "samples_per_epoch")


def settings(rule=DEFAULT_RULE, preset=None, **params) -> tuple[type, dict, dict]:
    """``(model class, model parameters, fit arguments)`` of a training run.

    Parameters and fit arguments are, from lowest to highest priority: the class
    defaults; the named ``preset`` of the rule; ``params``. Unknown names raise
    ``ValueError`` listing the valid ones. ``epochs`` is None unless the preset or
    ``params`` set it: :func:`fit_arguments` then takes the rule's default.
    """
    cls = rule_class(rule)
    merged = {"epochs": None, "samples_per_epoch": None}
    if preset is not None:
        if not isinstance(preset, str) or preset not in cls.presets:
            raise ValueError(f"unknown preset {preset!r} for {cls.__name__}; presets: "
                             f"{', '.join(cls.presets) or 'none'}")
        merged.update(cls.presets[preset])
    merged.update(params)
    fit = {key: merged.pop(key) for key in FIT_KEYS}
    valid = cls._param_names()
    unknown = [name for name in merged if name not in valid]
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {cls.__name__}; valid: "
                         f"{', '.join(valid + list(FIT_KEYS))}")
    return cls, merged, fit


def fit_arguments(model, fit: dict, n_samples: int) -> dict:
    """``fit`` with ``epochs`` None or ``"auto"`` replaced by the model's default for
    ``n_samples`` training samples
    (:meth:`~fastsd.base.PrototypeModel.default_epochs`). When every epoch is a full
    pass (no smaller ``samples_per_epoch``), the model's ``epochs`` parameter is set
    to the same number, so that its saved parameters (and ``clone(model).fit(X)``)
    say what was run."""
    fit = dict(fit)
    per_epoch = min(fit.get("samples_per_epoch") or n_samples, n_samples)
    if fit.get("epochs") is None or is_auto(fit["epochs"]):
        fit["epochs"] = model.default_epochs(per_epoch)
    if "epochs" in model.get_params() and per_epoch == n_samples:
        model.set_params(epochs=fit["epochs"])
    return fit


def train(X=None, y=None, *, rule=DEFAULT_RULE, preset=None, dataset="mnist",
          data_path=None, eval_set=None, progress=False, checkpoint=None, **params):
    """Train a model of any registered rule in one call.

    Parameters
    ----------
    X : array-like (n_samples, n_features), optional
        Training inputs in [0, 1]. If omitted, the training split of ``dataset`` is
        loaded.
    y : array-like, optional
        Labels of ``X`` (not used by the unsupervised rules; with ``eval_set`` they
        give the learning curve in ``history_``).
    rule : str, default "sd"
        A registered rule (``fastsd.rules.rule_names()``): "sd" SparseDream, "kh"
        Krotov–Hopfield, ...
    preset : str, optional
        A named setting of the rule (its class's ``presets``, e.g. "notebook").
    dataset : str, path-like, or (x_train, y_train, x_test, y_test), default "mnist"
        Data set to load when ``X`` is None: a name (``"mnist"``, ``"fashion-mnist"``,
        ``"kmnist"``, ``"emnist-balanced"``, ...), an IDX directory or ``.npz``, or
        arrays (see :func:`fastsd.datasets.load`); its training split is used, with
        its labels unless ``y`` is given.
    data_path : path-like, optional
        Where the named data set's files are (``path`` of :func:`fastsd.datasets.load`).
    eval_set : (x_test, y_test), optional
        Held-out data for the learning curve.
    progress : bool
        Show a progress bar.
    checkpoint : path-like, optional
        Save the model there after every epoch; an interrupted run continues with
        ``fastsd.load(checkpoint).resume_fit(X, ...)`` (``docs/reliability.md``).
    **params
        Model parameters and ``epochs``, ``samples_per_epoch``; the rest take the
        preset's values, then the class defaults (``epochs``: the rule's
        ``default_epochs`` for the number of samples per epoch).

    Returns
    -------
    PrototypeModel
        The fitted model; its ``dataset_`` is the name of the loaded data set (None
        when ``X`` was given).
    """
    cls, model_params, fit = settings(rule, preset, **params)
    model = cls(**model_params)
    model._check_params()  # bad parameters fail before data is loaded
    model._check_feature_params()
    model._max_input()
    name = None
    if X is None:
        from .datasets import load
        data = load(dataset, data_path)
        X, y, name = data.x_train, data.y_train if y is None else y, data.name
    fit = fit_arguments(model, fit, len(X))
    model.fit(X, y, eval_set=eval_set, progress=progress, checkpoint=checkpoint, **fit)
    if name is not None:
        model.dataset_ = name
        if checkpoint is not None:
            model.save(checkpoint)  # the finished model, with the data set's name
    return model


class _CallableModule(types.ModuleType):
    """Lets ``fastsd.train(...)`` call :func:`train` while ``fastsd.train`` is a module."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
