"""The epoch loop of ``fit`` and ``resume_fit``: all or nothing, with checkpoints.

:func:`run_fit` runs the remaining epochs of a model's :class:`FitProgress`. If anything
goes wrong (divergence, Ctrl-C, an error while evaluating or saving) the model is put
back exactly as it was before the call; with a checkpoint path, the model file written
after each epoch holds the last complete epoch, from which
:meth:`fastsd.base.PrototypeModel.resume_fit` continues (``docs/reliability.md``).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np

from ._compile import compiling
from .fit_progress import FitProgress, data_digest
from .history import TrainingHistory, show_accuracy


def check_checkpoint_path(path) -> str | None:
    """Validate a checkpoint path before any training: a file path (not a directory)
    whose nearest existing folder is writable. None stays None."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not path:
        raise ValueError("checkpoint must be a file path, got an empty string")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path} is a directory; give a file path such as "
                         f"{os.path.join(path, 'model.npz')}")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write checkpoint {path}: {folder} is not a "
                              "writable folder")
    return path


def check_saveable(model) -> None:
    """Refuse, before training, a model whose checkpoints could not be saved."""
    if isinstance(model.random_state, np.random.Generator):
        raise TypeError("a fit with checkpoints needs random_state to be an int or None, "
                        "not a Generator (a model file stores parameters as JSON)")


def check_resumable(model, X: np.ndarray) -> FitProgress:
    """The fit progress of ``model`` if ``resume_fit`` can continue it on ``X`` (the
    validated training data); ``ValueError`` saying why not otherwise."""
    progress = getattr(model, "_fit_progress", None)
    if progress is None:
        raise ValueError(f"this {type(model).__name__} has no checkpointed fit to "
                         "resume (fit(..., checkpoint=path) records one)")
    if getattr(model, "_rng", None) is None:
        raise ValueError("cannot resume: the state of the fit's random generator is "
                         "missing")
    if X.shape[0] != progress.n_samples or data_digest(X) != progress.data_sha256:
        raise ValueError(f"X is not the data the fit started on ({X.shape[0]} rows of "
                         f"{X.dtype.name}, SHA-256 differs; the fit had "
                         f"{progress.n_samples} rows): resume with the same data and "
                         "dtype")
    if int(getattr(model, "samples_seen_", -1)) != progress.samples_done:
        raise ValueError(f"cannot resume: samples_seen_={model.samples_seen_} does not "
                         f"match the {progress.epochs_done} epochs of "
                         f"{progress.samples_per_epoch} samples done (was the model "
                         "trained further after the checkpoint?)")
    return progress


@contextlib.contextmanager
def all_or_nothing(model, names: tuple[str, ...]) -> Iterator[None]:
    """Put attributes ``names`` of ``model`` back as they were if the block raises
    (including ``KeyboardInterrupt``); an attribute that was absent is removed."""
    kept = {name: getattr(model, name) for name in names if hasattr(model, name)}
    try:
        yield
    except BaseException:
        for name in names:
            if name in kept:
                setattr(model, name, kept[name])
            elif hasattr(model, name):
                delattr(model, name)
        raise


def prepare(model, X: np.ndarray, progress: FitProgress, bar) -> None:
    """Compile (or load) the kernels the fit's passes use, before its clock starts."""
    with compiling(bar, "preparing the training kernels"):
        model._prepare(X, progress.samples_per_epoch)


def run_fit(model, X: np.ndarray, params: dict, history: TrainingHistory,
            progress: FitProgress, bar, checkpoint: str | None) -> None:
    """Train ``model`` (state, ``_rng`` and ``samples_seen_`` already set, kernels
    prepared by :func:`prepare`) through the epochs ``progress`` has not done yet,
    recording ``history`` after each; with ``checkpoint``, save the model there
    (atomically) after every epoch."""
    history.start_clock()
    if not history.samples:
        with compiling(bar, "preparing the evaluator"):
            history.record(model, 0)
    for epoch in range(progress.epochs_done, progress.epochs):
        order = model._rng.permutation(progress.n_samples)[:progress.samples_per_epoch]
        model._run_pass(X, order, params, bar, progress.schedule(epoch))
        progress = progress.after_epoch()
        show_accuracy(bar, history.record(model, progress.samples_done))
        model.history_ = history.as_dict()
        if checkpoint is not None:
            model._fit_progress = progress
            model.save(checkpoint)
