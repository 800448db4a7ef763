"""Where a checkpointed ``fit`` stands: what a model file needs to continue it exactly.

A fit with ``checkpoint=`` records a :class:`FitProgress` after every epoch (epochs
planned and done, samples per epoch, and a SHA-256 digest of the training data) and
keeps the state of its random generator. Both are saved with the model; with them
:meth:`fastsd.base.PrototypeModel.resume_fit` continues the fit so that interrupted +
resumed is bit-identical to uninterrupted (``docs/reliability.md``).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .passes import Schedule

#: Largest count accepted in a fit progress record (fits in a Numba int64).
_MAX_COUNT = 2**62


@dataclass(frozen=True)
class FitProgress:
    """Progress of a fit over ``epochs`` epochs of ``samples_per_epoch`` samples each,
    drawn from ``n_samples`` rows whose data digest is ``data_sha256``."""

    epochs: int
    samples_per_epoch: int
    epochs_done: int
    n_samples: int
    data_sha256: str

    @property
    def finished(self) -> bool:
        """Whether every planned epoch is done."""
        return self.epochs_done >= self.epochs

    @property
    def samples_done(self) -> int:
        """Samples trained so far in this fit."""
        return self.epochs_done * self.samples_per_epoch

    def schedule(self, epoch: int) -> Schedule:
        """Where epoch ``epoch`` (0-based) lies in the fit, for annealed rates."""
        return Schedule(epoch * self.samples_per_epoch, self.epochs * self.samples_per_epoch)

    def after_epoch(self) -> "FitProgress":
        """This progress with one more epoch done."""
        return replace(self, epochs_done=self.epochs_done + 1)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (for the model file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Any, where: str = "fit_progress") -> "FitProgress":
        """Validate the stored form; ``ValueError`` naming ``where`` and the field."""
        if not isinstance(value, dict) or set(value) != set(cls.__dataclass_fields__):
            raise ValueError(f"{where} must be a record with the fields "
                             f"{', '.join(cls.__dataclass_fields__)}, got {value!r:.120}")
        for name in ("epochs", "samples_per_epoch", "epochs_done", "n_samples"):
            count = value[name]
            low = 0 if name == "epochs_done" else 1
            if (isinstance(count, bool) or not isinstance(count, int)
                    or not low <= count <= _MAX_COUNT):
                raise ValueError(f"{where}: {name} must be an integer in [{low}, 2**62], "
                                 f"got {count!r:.40}")
        progress = cls(**value)
        if progress.epochs_done > progress.epochs:
            raise ValueError(f"{where}: epochs_done={progress.epochs_done} is more than "
                             f"epochs={progress.epochs}")
        if progress.samples_per_epoch > progress.n_samples:
            raise ValueError(f"{where}: samples_per_epoch={progress.samples_per_epoch} "
                             f"is more than n_samples={progress.n_samples}")
        if not (isinstance(progress.data_sha256, str)
                and re.fullmatch(r"[0-9a-f]{64}", progress.data_sha256)):
            raise ValueError(f"{where}: data_sha256 must be 64 hexadecimal digits, got "
                             f"{progress.data_sha256!r:.80}")
        return progress


def data_digest(X: np.ndarray) -> str:
    """SHA-256 of a validated training matrix: dtype, shape and values."""
    digest = hashlib.sha256(f"{X.dtype.str}{X.shape}".encode())
    digest.update(memoryview(np.ascontiguousarray(X)).cast("B"))
    return digest.hexdigest()


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The JSON-able state of a numpy ``Generator`` (its bit generator's state)."""
    return _plain(rng.bit_generator.state)


def generator_from_state(state: Any, where: str = "rng") -> np.random.Generator:
    """A ``Generator`` in the stored ``state``; ``ValueError`` naming ``where`` if the
    state is not one numpy accepts for a bit generator numpy has."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"):
        raise ValueError(f"{where}: not the state of a numpy random generator "
                         f"(bit_generator {name!r:.40})")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"{where}: invalid {name} state ({exc})") from None
    if _plain(bit_generator.state) != state:
        raise ValueError(f"{where}: invalid {name} state (it does not round-trip)")
    return np.random.Generator(bit_generator)


def _plain(value):
    """numpy scalars and arrays in a nested state -> Python ints and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def checkpoint_meta(model) -> dict[str, Any]:
    """The model file's entries for continuing: ``rng`` (the generator's state, if the
    model has one) and ``fit_progress`` (if it is in a checkpointed fit)."""
    meta: dict[str, Any] = {}
    rng = getattr(model, "_rng", None)
    if rng is not None:
        meta["rng"] = generator_state(rng)
    fit_progress = getattr(model, "_fit_progress", None)
    if fit_progress is not None:
        meta["fit_progress"] = fit_progress.as_dict()
    return meta


def restore_checkpoint(model, rng: np.random.Generator | None,
                       progress: FitProgress | None) -> None:
    """Set ``model._rng`` and ``model._fit_progress`` from a model file's ``rng`` and
    ``fit_progress`` (each already validated, or None). A fit progress needs the
    generator, the state and a ``samples_seen`` equal to the samples of the epochs
    done; ``ValueError`` otherwise."""
    if progress is not None:
        if rng is None or not model._has_state():
            raise ValueError("a fit progress record needs the random generator state and "
                             "the model state, and this file lacks one")
        if getattr(model, "samples_seen_", None) != progress.samples_done:
            raise ValueError(f"samples_seen={getattr(model, 'samples_seen_', None)} does "
                             f"not match fit_progress ({progress.epochs_done} epochs of "
                             f"{progress.samples_per_epoch} samples)")
    model._rng = rng
    model._fit_progress = progress
