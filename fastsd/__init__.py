"""fastsd: fast, exact SparseDream and competing local-learning networks.

>>> import fastsd
>>> model = fastsd.train(epochs=1)              # SparseDream on MNIST
>>> fastsd.evaluate.cosine_wta(model.weights_, ...)
"""
__version__ = "0.1.0"

from .base import NotFittedError, load  # noqa: E402
from .sparsedream import SparseDream, TrainingDiverged  # noqa: E402
from .api import train  # noqa: E402
from . import evaluate  # noqa: E402

__all__ = ["SparseDream", "train", "load", "evaluate", "NotFittedError",
           "TrainingDiverged", "__version__"]
