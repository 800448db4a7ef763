"""The estimator base of every fastsd rule: parameters, state, the training skeleton.

Models are scikit-learn estimators: the constructor only stores its arguments,
``get_params``/``set_params`` (scikit-learn's) read and change them, and learned state
lives in attributes ending in ``_``. State may be assigned by the user to start training from a
chosen point; it is validated when next used.
"""
from __future__ import annotations

import functools
import inspect
import os
import textwrap
import warnings
from typing import Any, ClassVar

import numpy as np

from .fit_progress import FitProgress, data_digest
from .fitting import (all_or_nothing, check_checkpoint_path, check_resumable, check_saveable,
                      prepare, run_fit)
from .history import TrainingHistory
from ._memory import ResourceChecks
from ._transformer import NotFittedError, Transformer
from ._validation import check_inputs, check_number, check_random_state
from .features import check_feature_norm, check_features
from .passes import Pass, Schedule, check_order, run_pass
from .scaling import EPOCHS, ScaledDefaults, is_auto


#: The numpydoc entries of the parameters every built-in rule takes alike; a rule's
#: docstring holds ``%(transform_parameters)s`` where they go.
TRANSFORM_PARAMETERS = textwrap.indent(textwrap.dedent('''\
    feature_norm : "zscore" or None, default "zscore"
        "zscore": :meth:`transform` standardises each sample's features across the
        neurons (less their mean, over their standard deviation), which removes what
        they share (e.g. a brighter image's larger drives) and lets a linear
        classifier use them without a scaler (``docs/sklearn.md``). None: as they are.
    max_input : float or None, default 1.0
        Largest input value accepted: the rules take pixel intensities in [0, 1] and
        refuse larger values (raw bytes) with a ``ValueError``. None accepts any
        finite non-negative input (the defaults were chosen on [0, 1] data).'''), "    ")


class PrototypeModel(ResourceChecks, Transformer):
    """Base class: parameter handling, state checks and ``.npz`` persistence.

    A scikit-learn transformer (:class:`fastsd._transformer.Transformer`). Every rule
    takes the constructor parameters ``epochs`` (``fit``'s number of epochs, an int
    or ``"auto"``) and ``features`` (what ``transform`` returns).

    A rule subclasses it and supplies (``docs/contributing.md`` walks through one):

    - ``_state``: state attribute name -> function of ``(n_neurons, n_features)``
      giving its shape (the prototypes ``weights_`` first);
    - ``__init__`` storing its parameters, and ``_check_params()`` returning them
      validated (with ``n_neurons``, ``dtype`` and ``batch_size``);
    - ``_init_state(n_features, rng, dtype)``, ``_make_pass(state, params, schedule)``
      returning a :class:`fastsd.passes.Pass`, and ``_respond(state, X)``, the
      response (:mod:`fastsd.features`);
    - optionally ``_winners(state, X)`` (the WTA score ``"response"``), ``_logits(state,
      X)`` (the probe's ``"logit"`` features), ``scaled_defaults`` (settings by N, used
      by ``"auto"`` parameters and default epochs) and ``presets``.

    The base owns everything else: fit and partial_fit, sample orders, chunking,
    threads, progress bar, divergence rollback, history, resources, save and load.
    """

    _state: ClassVar[dict[str, Any]] = {}
    #: Label of the progress bar.
    _progress_name: ClassVar[str] = "training"
    #: The rule's settings by number of neurons: what ``"auto"`` parameters become and
    #: how many epochs ``fastsd train`` and :func:`fastsd.train` run
    #: (:mod:`fastsd.scaling`). The base default: one epoch, no "auto" parameters.
    scaled_defaults: ClassVar[ScaledDefaults] = ScaledDefaults({100: {EPOCHS: 1}})
    #: What a fit replaces besides the state; a fit that fails puts them back.
    _FIT_ATTRIBUTES: ClassVar[tuple[str, ...]] = ("samples_seen_", "_rng", "history_",
                                                  "_fit_progress", "dataset_")
    #: The name of the data set the state was learned from, when known: set by
    #: :func:`fastsd.train` and ``fastsd train`` after fitting, saved with the model;
    #: ``fit`` and ``partial_fit`` set it to None (the caller knows the data, not the
    #: model).
    dataset_: str | None = None
    #: ``fit``'s epochs, ``transform``'s features and their normalisation, and the
    #: largest input value, for a rule whose constructor does not take them (every
    #: built-in rule does).
    epochs = 1
    features = "response"
    feature_norm = None
    max_input = 1.0
    #: Named settings (parameters and ``epochs``/``samples_per_epoch``), e.g. a paper's.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "%(transform_parameters)s" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("    %(transform_parameters)s",
                                              TRANSFORM_PARAMETERS)

    # -- parameters ---------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return list(_init_param_names(cls))

    def _check_params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _given_params(self) -> dict[str, Any]:
        """Parameters with every ``"auto"`` replaced by its setting at this
        ``n_neurons`` (validated first), for ``_check_params`` to validate."""
        n_neurons = check_number("n_neurons", self.n_neurons, low=1, integer=True)
        params = self.get_params()
        for name in self.scaled_defaults.names() & set(params):
            if isinstance(params[name], str) and not is_auto(params[name]):
                raise TypeError(f'{name} must be a number or "auto", got '
                                f"{params[name]!r}")
        # "auto" epochs are resolved by each fit, for its data (:meth:`_epochs`)
        epochs = {"epochs": params.pop("epochs")} if "epochs" in params else {}
        return {**self.scaled_defaults.resolve(params, n_neurons), **epochs}

    def _check_feature_params(self) -> dict[str, Any]:
        """``features`` and ``feature_norm``, checked (what ``transform`` returns;
        whether the model has enough neurons for them is checked by ``transform``)."""
        return {"features": check_features(self, self.features),
                "feature_norm": check_feature_norm(self.feature_norm)}

    def _max_input(self) -> float | None:
        """``max_input`` checked: None (no upper bound on inputs) or a number > 0."""
        if self.max_input is None:
            return None
        try:
            return check_number("max_input", self.max_input, low=0, low_open=True)
        except TypeError:
            raise TypeError(f"max_input must be a number > 0 or None, got "
                            f"{self.max_input!r:.80}") from None

    def _epochs(self, epochs, samples_per_epoch: int) -> int:
        """The epochs of a fit: ``fit``'s ``epochs`` if given, else the constructor's;
        ``"auto"`` is :meth:`default_epochs` of ``samples_per_epoch``."""
        epochs = self.epochs if epochs is None else epochs
        if is_auto(epochs):
            return self.default_epochs(samples_per_epoch)
        return check_number("epochs", epochs, low=1, high=2**40, integer=True)

    def default_epochs(self, samples_per_epoch: int) -> int:
        """Epochs ``fastsd.train`` and ``fastsd train`` run on ``samples_per_epoch``
        samples per epoch: the rule's searched number of samples per neuron times N
        over ``samples_per_epoch`` (``docs/scaling.md``)."""
        samples_per_epoch = check_number("samples_per_epoch", samples_per_epoch, low=1,
                                         integer=True)
        return self.scaled_defaults.epochs(self._n_neurons(), samples_per_epoch)

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
    def fit(self, X, y=None, *, epochs: int | str | None = None,
            samples_per_epoch: int | None = None, eval_set=None, progress: bool = False,
            checkpoint: str | os.PathLike | None = None) -> "PrototypeModel":
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
        epochs : int, "auto" or None, default None
            Overrides the constructor's ``epochs`` for this fit (None: use it).
            "auto": :meth:`default_epochs` of the samples per epoch.
        samples_per_epoch : int or None
        eval_set : (x_test, y_test), optional
            Held-out data for the learning curve (see
            :class:`fastsd.history.TrainingHistory`).
        progress : bool
            Show a tqdm progress bar over samples.
        checkpoint : path-like, optional
            Save the model there (atomically, :meth:`save`) after every epoch, with
            what :meth:`resume_fit` needs to finish the fit exactly as if it had not
            been interrupted.

        Returns
        -------
        self

        Notes
        -----
        A fit that fails or is interrupted (training diverges, Ctrl-C, an error in the
        evaluation of ``eval_set`` or in saving a checkpoint) leaves the model exactly
        as it was before the call: its state, ``samples_seen_``, ``history_`` and
        random generator (or no state, if it had none). The checkpoint file then
        holds the last complete epoch.
        """
        params = self._check_params()
        self._check_feature_params()
        max_input = self._max_input()
        self._epochs(epochs, 1)  # a bad value fails before X is converted
        self._check_resources(params, X)  # before converting X
        X = check_inputs(X, dtype=params["dtype"], max_value=max_input, model=self)
        per_epoch = X.shape[0] if samples_per_epoch is None else check_number(
            "samples_per_epoch", samples_per_epoch, low=1, high=X.shape[0], integer=True)
        epochs = self._epochs(epochs, per_epoch)
        _check_batch(params, per_epoch, "samples per epoch")
        self._check_resources(params, X, per_epoch)
        history = TrainingHistory(X, y, eval_set, max_input=max_input)
        checkpoint = check_checkpoint_path(checkpoint)
        if checkpoint is not None:
            check_saveable(self)
        rng = check_random_state(self.random_state)
        fit_progress = FitProgress(epochs, per_epoch, 0, X.shape[0],
                                   data_digest(X) if checkpoint is not None else "")
        with all_or_nothing(self, self._FIT_ATTRIBUTES + tuple(self._state)):
            with self._bar(epochs * per_epoch, progress) as bar:
                prepare(self, X, fit_progress, bar)
                self._init_state(X.shape[1], rng, params["dtype"])
                self.samples_seen_ = 0
                self._rng = rng
                self._fit_progress = None
                self.dataset_ = None
                run_fit(self, X, params, history, fit_progress, bar, checkpoint)
        return self

    def resume_fit(self, X, y=None, *, eval_set=None, progress=False, checkpoint=None):
        """Finish a fit saved by ``fit(..., checkpoint=path)`` and loaded with
        :meth:`load`: the remaining epochs, exactly as the uninterrupted fit would have
        run them (bit-identical state, same ``history_`` samples and accuracies).

        Parameters
        ----------
        X : array-like
            The same training data as the interrupted fit (checked by its SHA-256).
        y, eval_set, progress, checkpoint
            As in :meth:`fit`; ``checkpoint`` is usually the file resumed from.

        Returns
        -------
        self

        Notes
        -----
        The fit continues with the model's current parameters: parameters changed
        with :meth:`set_params` after loading change the result. A resume that fails
        or is interrupted leaves the model as it was.
        """
        params = self._check_params()
        self._check_resources(params, X)
        max_input = self._max_input()
        X = check_inputs(X, dtype=params["dtype"], n_features=self.n_features_in_,
                         max_value=max_input, model=self)
        fit_progress = check_resumable(self, X)
        history = TrainingHistory(X, y, eval_set, previous=getattr(self, "history_", None),
                                  max_input=max_input)
        checkpoint = check_checkpoint_path(checkpoint)
        if fit_progress.finished:
            return self
        remaining = (fit_progress.epochs - fit_progress.epochs_done) * \
            fit_progress.samples_per_epoch
        with all_or_nothing(self, self._FIT_ATTRIBUTES + tuple(self._state)):
            with self._bar(remaining, progress) as bar:
                prepare(self, X, fit_progress, bar)
                run_fit(self, X, params, history, fit_progress, bar, checkpoint)
        return self

    def partial_fit(self, X, y=None, *, order=None, progress=False):
        """One pass over ``X[order]`` from the current state, at the fixed rates.

        If there is no state yet it is initialised from ``random_state`` first.
        ``order`` defaults to a fresh random permutation of all rows.

        Returns
        -------
        self
        """
        return self._partial_fit(X, order, progress)

    def _partial_fit(self, X, order, progress, **options):
        """:meth:`partial_fit`, with ``options`` for the rule's ``_make_pass``."""
        params = self._check_params()
        self._check_resources(params, X, None if order is None else np.size(order))
        fresh = not self._has_state()
        X = check_inputs(X, dtype=params["dtype"],
                         n_features=None if fresh else self.n_features_in_,
                         max_value=self._max_input(), model=self)
        self._check_resources(params, X, X.shape[0] if order is None else np.size(order))
        if order is not None:
            order = check_order(order, X.shape[0])
        _check_batch(params, X.shape[0] if order is None else order.size,
                     "samples in X" if order is None else "samples in order")
        if getattr(self, "_rng", None) is None:
            self._rng = check_random_state(self.random_state)
        if fresh:
            self._init_state(X.shape[1], self._rng, params["dtype"])
            self.samples_seen_ = 0
        if order is None:
            order = self._rng.permutation(X.shape[0])
        with self._bar(order.size, progress) as bar:
            self._run_pass(X, order, params, bar, None, **options)
        self._fit_progress = None  # the state is no longer that of a fit's epoch
        self.dataset_ = None
        return self

    def _bar(self, total: int, progress: bool):
        from tqdm.auto import tqdm
        return tqdm(total=total, unit="sample", disable=not progress,
                    desc=self._progress_name, smoothing=0.1)

    def _run_pass(self, X, order, params, bar, schedule, **options) -> None:
        """One pass on working copies of the state; commit them only if it succeeds
        (a diverged or interrupted pass leaves the model as it was)."""
        state = {name: value.copy() for name, value in
                 self._checked_state(params["n_neurons"], params["dtype"]).items()}
        pass_ = self._make_pass(state, params, schedule, **options)
        key = (type(self).__name__, *state[next(iter(self._state))].shape,
               params["batch_size"], params["dtype"].name)
        run_pass(pass_, X, order, bar, key)
        for name, value in pass_.state().items():
            setattr(self, name, value)
        self.samples_seen_ = int(getattr(self, "samples_seen_", 0)) + int(order.size)

    def _prepare(self, X: np.ndarray, per_epoch: int) -> None:
        """Compile (or load from Numba's cache) the kernels a pass of these parameters
        uses, by a throwaway pass of a tiny copy of the model over a few rows of ``X``.
        A fit calls this first, so its clock and progress bar show training only."""
        given = self._given_params()  # "auto" resolved at this N, not the tiny one's
        rows = min(X.shape[0], per_epoch, 2 * given.get("batch_size", 1))
        tiny = type(self)(**{**given, **self._tiny_params(), "random_state": 0})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiny.partial_fit(X[:rows], order=np.arange(rows))

    def _tiny_params(self) -> dict:
        """Hook: parameter changes that make a model tiny but keep its kernels' types."""
        return {"n_neurons": 4}

    def _init_state(self, n_features: int, rng, dtype) -> None:  # pragma: no cover
        """Hook: set the state attributes for ``n_features`` inputs, drawn from ``rng``."""
        raise NotImplementedError

    def _make_pass(self, state: dict, params: dict, schedule: Schedule | None,
                   **options) -> Pass:  # pragma: no cover
        """Hook: the :class:`fastsd.passes.Pass` training ``state`` (working copies,
        in place). ``schedule``: where the pass lies in a fit (None: ``partial_fit``)."""
        raise NotImplementedError

    def _respond(self, state: dict, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Hook: the network's response to ``X`` (n_samples, n_neurons)."""
        raise NotImplementedError

    # -- persistence --------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write parameters and state to ``path`` as ``.npz`` (atomic, no pickle;
        :mod:`fastsd.persistence`)."""
        from .persistence import save
        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a model of this class written by :meth:`save` (``.npz``, no pickle)."""
        from .persistence import load
        return load(path, expected=cls)


@functools.cache
def _init_param_names(cls) -> tuple[str, ...]:
    """The parameters of ``cls.__init__`` but ``self`` (read once per class: reading a
    signature costs more than validating the parameters)."""
    return tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")


def _check_batch(params: dict, n: int, what: str) -> None:
    if params["batch_size"] > n:
        raise ValueError(f"batch_size={params['batch_size']} is larger than the {n} "
                         f"{what}; lower batch_size")
