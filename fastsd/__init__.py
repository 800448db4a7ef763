"""fastsd: fast, exact SparseDream and competing local-learning networks.

>>> import fastsd
>>> from fastsd.datasets import load_mnist
>>> data = load_mnist()
>>> model = fastsd.SparseDream(100, random_state=0).fit(data.x_train, epochs=1)
>>> fastsd.evaluate.wta(model, data.x_train, data.y_train, data.x_test, data.y_test)
"""
__version__ = "0.1.0"

from .base import NotFittedError, load  # noqa: E402
from .sparsedream import SparseDream, TrainingDiverged  # noqa: E402
from .krotov import KrotovHopfield  # noqa: E402
from .api import train  # noqa: E402
from . import evaluate  # noqa: E402
from . import sweep  # noqa: E402  (callable: fastsd.sweep(...) runs a sweep)

__all__ = ["SparseDream", "KrotovHopfield", "train", "sweep", "load", "evaluate",
           "NotFittedError", "TrainingDiverged", "__version__"]
