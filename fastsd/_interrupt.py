"""Ctrl-C around compiled code: recorded while a kernel runs, raised once it returns.

Python answers SIGINT by running its handler at the next check for signals, which
raises ``KeyboardInterrupt``. A Numba kernel (in particular a parallel one, whose
thread pool the interpreter checks for signals while it launches and joins the
threads) can hit such a check in the middle of a call: the exception is then set
while the kernel goes on and returns a result, and Python reports
``SystemError: CPUDispatcher(...) returned a result with an exception set`` instead
of a clean ``KeyboardInterrupt``.

:func:`deferred_interrupt` therefore swaps in a handler that only records the
signal while a kernel runs, restores the previous handler when the kernel returns,
and then raises the interrupt the usual way. :func:`map_rows` runs a row-wise kernel
in chunks of rows short enough (about
:data:`fastsd._tunables.EVAL_CHUNK_SECONDS` each) that Ctrl-C is
answered within about a second however large the evaluation.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable

import numpy as np

from ._tunables import EVAL_CHUNK_SECONDS, SAMPLES_PER_TASK

#: Rows of the first chunk of :func:`map_rows` (later chunks are sized by its time):
#: two parallel tasks of the evaluation kernels, so both cores of a laptop work.
FIRST_ROWS = 2 * SAMPLES_PER_TASK

__all__ = ["deferred_interrupt", "map_rows"]


@contextmanager
def deferred_interrupt():
    """Record SIGINT instead of raising while the body runs; raise it afterwards.

    On exit the previous handler is restored and, if SIGINT arrived, called as the
    signal would have called it (Python's default handler raises
    ``KeyboardInterrupt``; a handler of the caller's runs as usual). If the body
    raises as well, the interrupt is raised with that exception as its context.

    Only the main thread can handle signals: elsewhere, or when SIGINT is ignored or
    not handled by Python (``SIG_IGN``, ``SIG_DFL``), the body runs unchanged.
    Nested uses are fine: the inner one passes the signal on to the outer one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    frames = []

    def record(signum, frame):
        frames.append(frame)

    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if frames:
            previous(signal.SIGINT, frames[-1])


def map_rows(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray,
             rows: int | None = None) -> np.ndarray:
    """``fn(X)`` computed on chunks of rows of ``X``, each under
    :func:`deferred_interrupt`, so that Ctrl-C stops a long evaluation within about
    one chunk.

    Parameters
    ----------
    fn : callable
        Maps an ``(k, ...)`` array of rows to an ``(k, ...)`` array, row by row (the
        result of a row depends on that row only, so chunking changes nothing).
    X : ndarray (n, ...)
        At least one row.
    rows : int, optional
        Rows per chunk. Default: :data:`FIRST_ROWS`, then as many as take about
        :data:`fastsd._tunables.EVAL_CHUNK_SECONDS` by the time of the last chunk
        (whole parallel tasks of :data:`fastsd._tunables.SAMPLES_PER_TASK` rows, unless
        a single row takes longer than that).

    Returns
    -------
    ndarray (n, ...)
        The results of the chunks, in order, in the dtype of the first.
    """
    n = X.shape[0]
    if n == 0:
        with deferred_interrupt():
            return np.asarray(fn(X))
    step = FIRST_ROWS if rows is None else max(1, int(rows))
    out = None
    start = 0
    while start < n:
        stop = min(n, start + step)
        began = time.perf_counter()
        with deferred_interrupt():
            part = np.asarray(fn(X[start:stop]))
        seconds = time.perf_counter() - began
        if part.shape[:1] != (stop - start,):
            raise ValueError(f"a row-wise function returned shape {part.shape} for "
                             f"{stop - start} rows")
        if out is None:
            if stop == n:
                return part
            out = np.empty((n, *part.shape[1:]), dtype=part.dtype)
        out[start:stop] = part
        if rows is None:
            step = _next_step(step, seconds / (stop - start))
        start = stop
    return out


def _next_step(step: int, seconds_per_row: float) -> int:
    """Rows of the next chunk of :func:`map_rows`: about
    :data:`fastsd._tunables.EVAL_CHUNK_SECONDS` of work, at most four times ``step``,
    in whole tasks of :data:`fastsd._tunables.SAMPLES_PER_TASK` rows if one task fits."""
    want = 4 * step if seconds_per_row <= 0 else int(EVAL_CHUNK_SECONDS / seconds_per_row)
    want = max(1, min(4 * step, want))
    return want // SAMPLES_PER_TASK * SAMPLES_PER_TASK or want
