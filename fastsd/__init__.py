"""fastsd: fast, exact SparseDream and competing local-learning networks.

>>> import fastsd
>>> from fastsd.datasets import load_mnist
>>> data = load_mnist()
>>> model = fastsd.train(data.x_train, rule="sd", epochs=1, random_state=0)
>>> fastsd.evaluate.wta(model, data.x_train, data.y_train, data.x_test, data.y_test)

Every registered rule's class is an attribute (``fastsd.SparseDream``,
``fastsd.KrotovHopfield``, ...; see :mod:`fastsd.rules`).
"""
from ._version import __version__  # noqa: F401

import importlib as _importlib

#: Public names -> the module that defines them. They are imported on first use
#: (PEP 562), so ``import fastsd`` is quick, and the ``fastsd`` command, whose
#: entry point imports this package first, reaches its own Ctrl-C handling before
#: numba and scikit-learn load.
_LAZY = {"PrototypeModel": ".base", "NotFittedError": ".base",
         "TrainingDiverged": ".passes", "load": ".persistence", "RULES": ".rules",
         "rule_class": ".rules"}
#: Submodules that are public attributes (``fastsd.train(...)`` and
#: ``fastsd.sweep(...)`` are callable modules).
_SUBMODULES = ("train", "evaluate", "sweep")


def _rule_classes() -> dict[str, str]:
    """Class name -> short name of every registered rule (``SparseDream`` -> "sd")."""
    from .rules import RULES
    return {target.rpartition(":")[2]: name for name, target in RULES.items()}


def __getattr__(name):
    """The public names, imported on first use; the class of a registered rule by its
    class name (``fastsd.SparseDream``); ``__all__``, which lists the rules'."""
    if name == "__all__":
        return ["train", "sweep", "load", "evaluate", "rule_class", "PrototypeModel",
                "NotFittedError", "TrainingDiverged", "__version__", *_rule_classes()]
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name], __name__), name)
    classes = _rule_classes()
    if name in classes:
        return _importlib.import_module(".rules", __name__).rule_class(classes[name])
    raise AttributeError(f"module 'fastsd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES) | set(_rule_classes()))
