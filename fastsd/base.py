"""The estimator base shared by every fastsd model: parameters, state, save and load.

Models follow scikit-learn's conventions: the constructor only stores its arguments,
``get_params``/``set_params`` read and change them, and learned state lives in
attributes ending in ``_``. State may be assigned by the user to start training from a
chosen point; it is validated when next used.
"""
from __future__ import annotations

import inspect
import json
import os
import warnings
import zipfile
from typing import Any, ClassVar

import numpy as np

from . import __version__
from ._compile import compiling
from ._io import atomic_open
from ._memory import check_memory, warn_slow
from ._validation import check_dtype

FORMAT = "fastsd-model"
FORMAT_VERSION = 1

#: Model classes by name, filled by ``register``; ``load`` uses it to rebuild any model.
MODELS: dict[str, type["PrototypeModel"]] = {}


def register(cls):
    """Class decorator: make ``cls`` loadable by :func:`load`."""
    MODELS[cls.__name__] = cls
    return cls


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before it has any learned state."""


class PrototypeModel:
    """Base class: parameter handling, state checks and ``.npz`` persistence.

    Subclasses set ``_state`` to a mapping of state attribute name to a function of
    ``(n_neurons, n_features)`` giving its shape, and implement ``_check_params``.
    """

    _state: ClassVar[dict[str, Any]] = {}

    # -- parameters ---------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this model, as given to the constructor."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "PrototypeModel":
        """Set parameters by name; unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_neurons(self) -> int:
        return self._check_params()["n_neurons"]

    # -- state --------------------------------------------------------------------
    def _has_state(self) -> bool:
        return all(getattr(self, name, None) is not None for name in self._state)

    def _checked_state(self, n_neurons: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        """The current state as C-contiguous arrays of ``dtype``, validated.

        Raises a ``NotFittedError`` when there is none, ``ValueError`` for a wrong shape
        or non-finite values (for example after a user assigned them).
        """
        if not self._has_state():
            raise NotFittedError(f"this {type(self).__name__} has no learned state yet; "
                                 "call fit or partial_fit first")
        first = np.asarray(getattr(self, next(iter(self._state))))
        n_features = first.shape[1] if first.ndim == 2 else -1
        out = {}
        for name, shape_of in self._state.items():
            value = np.asarray(getattr(self, name))
            if not (np.issubdtype(value.dtype, np.floating)
                    or np.issubdtype(value.dtype, np.integer)):
                raise TypeError(f"{name} must be a float array, got dtype {value.dtype}")
            want = shape_of(n_neurons, n_features)
            if value.shape != want:
                raise ValueError(f"{name} has shape {value.shape}, expected {want} for "
                                 f"n_neurons={n_neurons}")
            arr = np.ascontiguousarray(value, dtype=dtype)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or infinite values")
            out[name] = arr
        return out

    # -- training skeleton ----------------------------------------------------------
    _progress_name: ClassVar[str] = "training"

    def fit(self, X, y=None, *, epochs=1, samples_per_epoch=None, eval_set=None,
            progress=False):
        """Initialise from ``random_state`` and train for ``epochs`` epochs.

        Each epoch draws a fresh permutation of all rows of ``X`` and runs its first
        ``samples_per_epoch`` samples (default: all), as in the research notebooks; the
        class docstring says how the rate changes over the epochs.

        Parameters
        ----------
        X : array-like (n_samples, n_features), values in [0, 1]
        y : array-like, optional
            Training labels: not used by the rule; with ``eval_set`` they let ``fit``
            record the cosine WTA test accuracy after every epoch in ``history_``.
        epochs : int, default 1
        samples_per_epoch : int or None
        eval_set : (x_test, y_test), optional
            Held-out data for the learning curve (see
            :class:`fastsd.history.TrainingHistory`).
        progress : bool
            Show a tqdm progress bar over samples.

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        from ._validation import check_inputs, check_number, check_random_state
        from .history import TrainingHistory, show_accuracy

        params = self._check_params()
        self._check_resources(params, X)  # before converting X
        X = check_inputs(X, dtype=params["dtype"])
        epochs = check_number("epochs", epochs, low=1, integer=True)
        per_epoch = X.shape[0] if samples_per_epoch is None else check_number(
            "samples_per_epoch", samples_per_epoch, low=1, high=X.shape[0], integer=True)
        self._check_fit(params, per_epoch)
        self._check_resources(params, X, per_epoch)
        history = TrainingHistory(X, y, eval_set)
        rng = check_random_state(self.random_state)
        with tqdm(total=epochs * per_epoch, unit="sample", disable=not progress,
                  desc=self._progress_name, smoothing=0.1) as bar:
            with compiling(bar, "preparing the training kernels"):
                self._prepare(X, per_epoch)
            self._init_state(X.shape[1], rng, params["dtype"])
            self._rng = rng
            history.start_clock()
            with compiling(bar, "preparing the evaluator"):
                history.record(self, 0)
            for epoch in range(epochs):
                order = rng.permutation(X.shape[0])[:per_epoch]
                self._fit_epoch(X, order, epoch, epochs, params, bar)
                show_accuracy(bar, history.record(self, (epoch + 1) * per_epoch))
        self.history_ = history.as_dict()
        return self

    def _check_resources(self, params: dict, X, n_samples: int | None = None) -> None:
        """Refuse a pass whose arrays cannot fit in memory, before allocating them, and
        with ``n_samples`` warn once if a pass over that many samples is expected to be
        slow (:mod:`fastsd._memory`). ``X``: anything with a 2-D ``shape`` (else no
        check: inputs are checked again once converted)."""
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) != 2:
            return
        n_features = int(shape[1])
        dtype = np.dtype(params["dtype"])
        label = (f"{type(self).__name__}(n_neurons={params['n_neurons']}, "
                 f"dtype={dtype.name!r}, {n_features} features)")
        advice = "use fewer neurons" + (" or dtype='float32'" if dtype.itemsize > 4 else "")
        check_memory(self._memory_needed(params, n_features), model=label, advice=advice)
        slow = None if n_samples is None else self._seconds_per_sample(params, n_features)
        if slow is not None:
            seconds, advice = slow
            warn_slow((label, params.get("batch_size")), seconds * n_samples,
                      f"{label}: a pass over {n_samples} samples will be slow; {advice}")

    def _memory_needed(self, params: dict, n_features: int) -> dict[str, int]:
        """Hook: bytes of every large array a pass allocates, by name (state, its
        working copy, scratch). Default: the state arrays twice (state and copy)."""
        n, item = params["n_neurons"], np.dtype(params["dtype"]).itemsize
        sizes = {}
        for name, shape_of in self._state.items():
            size = int(np.prod(shape_of(n, n_features), dtype=np.float64)) * item
            sizes[name] = sizes[name + " (pass copy)"] = size
        return sizes

    def _seconds_per_sample(self, params: dict, n_features: int
                            ) -> tuple[float, str] | None:
        """Hook: a rough estimate of the seconds per training sample (a lower bound
        will do: it only decides a warning) and advice for a faster setting, or None
        (never slow enough to warn)."""
        return None

    def _prepare(self, X: np.ndarray, per_epoch: int) -> None:
        """Compile (or load from Numba's cache) the kernels a pass of these parameters
        uses, by a throwaway pass of a tiny copy of the model over a few rows of ``X``.
        A fit calls this first, so its clock and progress bar show training only."""
        rows = min(X.shape[0], per_epoch, 2 * getattr(self, "batch_size", 1))
        tiny = type(self)(**{**self.get_params(), **self._tiny_params(), "random_state": 0})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiny.partial_fit(X[:rows], order=np.arange(rows))

    def _tiny_params(self) -> dict:
        """Hook: parameter changes that make a model tiny but keep its kernels' types."""
        return {"n_neurons": 4}

    def _check_fit(self, params: dict, per_epoch: int) -> None:
        """Hook: reject fit arguments that do not suit the parameters (default: none)."""

    def _fit_epoch(self, X, order, epoch, epochs, params, bar) -> None:  # pragma: no cover
        """Hook: train one epoch of ``fit`` on ``X[order]`` (epoch ``epoch`` of ``epochs``)."""
        raise NotImplementedError

    def _init_state(self, n_features, rng, dtype) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def n_features_in_(self) -> int:
        """Number of input features the state was learned for."""
        if not self._has_state():
            raise NotFittedError(f"this {type(self).__name__} is not fitted")
        return int(np.shape(getattr(self, next(iter(self._state))))[1])

    # -- persistence --------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write parameters and state to ``path`` as ``.npz`` (atomic, no pickle)."""
        params = self.get_params()
        check_dtype(params.get("dtype", "float64"))
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "model": type(self).__name__,
            "fastsd_version": __version__, "params": _jsonable(params),
            "samples_seen": int(getattr(self, "samples_seen_", 0)),
        }
        arrays = {"meta": np.array(json.dumps(meta))}
        if self._has_state():
            for name in self._state:
                arrays[name] = np.asarray(getattr(self, name))
        history = getattr(self, "history_", None)
        if history:
            arrays["history"] = np.array(json.dumps(_jsonable(history)))
        with atomic_open(path, "wb") as fh:
            np.savez(fh, **arrays)


def _jsonable(obj):
    """Convert numpy scalars/arrays inside dicts and lists to plain Python for JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.random.Generator):
        raise TypeError("cannot save a model whose random_state is a Generator; use an int")
    return obj


def load(path: str | os.PathLike, expected: type[PrototypeModel] | None = None):
    """Load any fastsd model written by ``save``.

    Raises ``ValueError`` naming the problem for a missing, unreadable, truncated or
    foreign file, or for state that does not fit the saved parameters.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable fastsd model file (.npz): {exc}") from exc
    if "meta" not in files:
        raise ValueError(f"{path} is not a fastsd model file: it has no 'meta' entry "
                         f"(entries: {', '.join(sorted(files)) or 'none'})")
    try:
        meta = json.loads(str(files.pop("meta")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{path}: the model metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastsd model file (format {meta!r:.80})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer fastsd (format version "
                         f"{meta['format_version']}); upgrade fastsd to read it")
    cls = MODELS.get(meta.get("model"))
    if cls is None:
        raise ValueError(f"{path}: unknown model type {meta.get('model')!r}")
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")
    params = meta.get("params", {})
    unknown = set(params) - set(cls._param_names())
    if unknown:
        raise ValueError(f"{path}: unknown parameters for {cls.__name__}: {sorted(unknown)}")
    model = cls(**params)
    model._check_params()
    history = files.pop("history", None)
    if files:
        missing = [name for name in cls._state if name not in files]
        if missing:
            raise ValueError(f"{path}: missing state {missing}")
        for name in cls._state:
            setattr(model, name, files[name])
        dtype = check_dtype(params.get("dtype", "float64"))
        model._checked_state(model._n_neurons(), dtype)  # shapes and finiteness
        for name in cls._state:
            setattr(model, name, np.ascontiguousarray(files[name], dtype=dtype))
        model.samples_seen_ = int(meta.get("samples_seen", 0))
    if history is not None:
        model.history_ = json.loads(str(history))
    return model
