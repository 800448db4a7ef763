"""One training pass of any rule: the rule's :class:`Pass`, run in chunks by :func:`run_pass`.

A rule supplies a :class:`Pass` (its compiled kernel and the scratch arrays the kernel
needs); :func:`run_pass` cuts the pass into chunks, chooses one or two threads by
timing them (:class:`fastsd._threads.ThreadChooser`), updates the progress bar between
chunks (where Ctrl-C is seen: while a kernel runs it is only recorded,
:func:`fastsd._interrupt.deferred_interrupt`) and raises :class:`TrainingDiverged` when
the kernel reports a non-finite state. The estimator (:class:`fastsd.base.PrototypeModel`)
gives the pass working copies of the state and commits them only if it succeeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._interrupt import deferred_interrupt
from ._threads import ThreadChooser
from ._tunables import SAMPLES_PER_CALL

#: Chooses one or several threads for passes, by timing chunks (keys name the rule).
_CHOOSER = ThreadChooser()


class TrainingDiverged(FloatingPointError, ValueError):
    """The state became NaN or infinite during a pass (too large a rate)."""


@dataclass(frozen=True)
class Schedule:
    """Where a pass of ``fit`` lies in the whole fit, for rules that anneal a rate.

    ``done`` samples of the fit came before this pass; the fit has ``total``.
    """

    done: int
    total: int

    def at(self, position: int) -> float:
        """Fraction of the fit done at ``position`` of this pass, in [0, 1)."""
        return (self.done + position) / self.total


class Pass:
    """A rule's training pass over working copies of its state (subclass per rule).

    Attributes
    ----------
    chunk : int
        Samples per kernel call: calls end at multiples of it; bounds the time between
        progress updates. :func:`run_pass` rounds it up to whole batches (and stores
        the rounded value here) before the first call.
    max_threads : int
        Threads the kernel may use (1: never probe for more).
    probe_rounds : int or None
        None: choose the threads by timing whole chunks
        (:meth:`ThreadChooser.run_probing_chunks`); an int: by alternating that many
        times between a few batches on all threads and on one
        (:meth:`ThreadChooser.start`).
    batch_size : int
        Samples per batch (1 for a per-sample rule).
    """

    chunk: int = SAMPLES_PER_CALL
    max_threads: int = 1
    probe_rounds: int | None = None
    batch_size: int = 1

    def run(self, X: np.ndarray, order: np.ndarray, start: int, stop: int,
            threads: int) -> int:  # pragma: no cover - abstract
        """Train on ``X[order[k]]`` for ``start <= k < stop``, in place; return -1, or
        the first position after which the state was no longer finite."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        """The state arrays to commit, by attribute name."""
        raise NotImplementedError

    def diverged(self, position: int) -> str:
        """The message of the :class:`TrainingDiverged` raised at ``position``."""
        return (f"training diverged: the state became NaN or infinite by sample "
                f"{position} of this pass; lower the learning rate")

    def finish(self) -> None:
        """Called once after a successful pass (warnings about the result)."""


def run_pass(pass_: Pass, X: np.ndarray, order: np.ndarray, bar, key: tuple[Any, ...]
             ) -> None:
    """Run ``pass_`` over all positions of ``order`` in chunks of whole batches.

    ``key`` identifies the shapes for the thread choice (choices are reused for
    :data:`fastsd._threads.PROBE_EVERY` seconds). Raises :class:`TrainingDiverged`
    (the working state is then garbage; the caller drops it).
    """
    batch = pass_.batch_size
    if batch > order.size:
        raise ValueError(f"batch_size={batch} is larger than the {order.size} samples "
                         "of this pass; lower batch_size")
    chunk = pass_.chunk = -(-pass_.chunk // batch) * batch  # whole batches per chunk

    def run(start, stop, threads):
        # Calls end at chunk boundaries however the chooser splits the pass, so a rule
        # that changes a rate per chunk sees the same chunks either way.
        while start < stop:
            end = min(stop, (start // chunk + 1) * chunk)
            with deferred_interrupt():  # Ctrl-C inside a kernel: raised after it
                bad = pass_.run(X, order, start, end, threads)
            if bad >= 0:
                raise TrainingDiverged(pass_.diverged(bad))
            bar.update(end - start)
            start = end

    max_threads = max(1, pass_.max_threads)
    if pass_.probe_rounds is None:
        _CHOOSER.run_probing_chunks(key, run, order.size, chunk, max_threads)
    else:
        threads, position = _CHOOSER.start(key, run, order.size, batch, max_threads,
                                            rounds=pass_.probe_rounds)
        _CHOOSER.run_chunks(key, run, position, order.size, chunk, threads, max_threads)
    pass_.finish()


def check_order(order, n_samples: int) -> np.ndarray:
    """Validate a sample order: 1-D integers in ``[0, n_samples)``, at least one."""
    arr = np.asarray(order)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"order must be a non-empty 1-D array of row indices, got shape "
                         f"{arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"order must hold integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_samples:
        raise ValueError(f"order has indices outside [0, {n_samples}): min {arr.min()}, "
                         f"max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)
