"""fastsd: fast, exact SparseDream and competing local-learning networks.

>>> import fastsd
>>> from fastsd.datasets import load_mnist
>>> data = load_mnist()
>>> model = fastsd.train(data.x_train, rule="sd", epochs=1, random_state=0)
>>> fastsd.evaluate.wta(model, data.x_train, data.y_train, data.x_test, data.y_test)

Every registered rule's class is an attribute (``fastsd.SparseDream``,
``fastsd.KrotovHopfield``, ...; see :mod:`fastsd.rules`).
"""
from ._version import __version__  # noqa: E402,F401

from .base import NotFittedError, PrototypeModel  # noqa: E402
from .passes import TrainingDiverged  # noqa: E402
from .persistence import load  # noqa: E402
from .rules import RULES, rule_class  # noqa: E402
from . import train  # noqa: E402  (callable: fastsd.train(...) trains a model)
from . import evaluate  # noqa: E402
from . import sweep  # noqa: E402  (callable: fastsd.sweep(...) runs a sweep)

_RULE_CLASSES = {target.rpartition(":")[2]: name for name, target in RULES.items()}

__all__ = ["train", "sweep", "load", "evaluate", "rule_class", "PrototypeModel",
           "NotFittedError", "TrainingDiverged", "__version__", *_RULE_CLASSES]


def __getattr__(name):
    """The class of a registered rule by its class name (``fastsd.SparseDream``)."""
    if name in _RULE_CLASSES:
        return rule_class(_RULE_CLASSES[name])
    raise AttributeError(f"module 'fastsd' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_RULE_CLASSES))
