"""Thread counts for passes that mix compiled code with BLAS or parallel regions.

On a 2-core machine, threads that wait for each other many times per pass (OpenBLAS's
spinning workers between calls that alternate with Numba kernels, or a Numba parallel
region entered every batch) cost little when the cores are idle but can make a pass
several times slower than one thread when other processes keep the cores busy
(measured with an earlier, BLAS-based mini-batch pass: an epoch took 5 s instead of
0.9 s). So:

- :func:`one_blas_thread` limits BLAS to one thread inside a ``with`` block (through
  ``threadpoolctl``, scikit-learn's tool for this, a dependency of fastsd);
- :class:`ThreadChooser` times the start of a pass with all threads and with one, and
  keeps the faster setting for that kind of pass for a while; a pass that checks its
  chunks with :meth:`ThreadChooser.keep` drops to one thread as soon as a chunk on
  several took longer per sample than one thread did in the probe.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from threadpoolctl import ThreadpoolController

#: Batches run with all threads, then as many with one thread, at the start of a pass of
#: at least 4 × as many batches (a shorter pass with no recent choice uses one thread).
PROBE_BATCHES = 8
#: All threads are chosen only if they took less than this fraction of one thread's time.
PROBE_MARGIN = 0.8
#: A probe in rounds stops early, choosing one thread, when a turn on all threads took
#: this many times as long as the following turn on one (another process holds a core:
#: each such turn costs a scheduler time slice), or three times this in the first round
#: (whose turn on all threads may be slowed by cold caches).
PROBE_GIVE_UP = 3.0
#: Seconds a choice is reused for the same kind of pass before probing again.
PROBE_EVERY = 30.0

_CONTROLLER = None


def _controller() -> ThreadpoolController:
    global _CONTROLLER
    if _CONTROLLER is None:  # enumerating the loaded libraries takes a few ms: once
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def blas_threads(n: int):
    """Context manager: BLAS libraries loaded by numpy/scipy use ``n`` threads inside."""
    return _controller().limit(limits=n, user_api="blas")


def one_blas_thread():
    """Context manager: BLAS uses one thread inside."""
    return blas_threads(1)


def max_blas_threads() -> int:
    """Threads BLAS would use by default (at least 1)."""
    counts = [lib["num_threads"] for lib in _controller().info()
              if lib.get("user_api") == "blas"]
    return max(counts, default=os.cpu_count() or 1)


class ThreadChooser:
    """Choose between all threads and one for a pass, by timing its first batches.

    ``run(start, stop, threads)`` must process positions ``start <= k < stop`` of the
    pass with that many threads; results must not depend on the thread count.
    """

    def __init__(self):
        # key -> (threads, time of the probe, one thread's seconds per sample in it)
        self._choices: dict[tuple, tuple[int, float, float]] = {}

    def start(self, key: tuple, run: Callable[[int, int, int], object], n_samples: int,
              batch: int, max_threads: int, rounds: int = 1) -> tuple[int, int]:
        """Return ``(threads, position)``: the setting to use from ``position`` on (the
        samples before it were run by the probe, if one was needed).

        With ``rounds > 1`` the probe alternates ``rounds`` times between all threads
        and one, each turn ``PROBE_BATCHES // rounds`` batches, and compares the fastest
        turn of each: a one-off interruption, or the cold caches of the first turn, then
        cannot decide the choice. It stops, choosing one thread, after a round whose
        turn on all threads was much slower than one thread's (:data:`PROBE_GIVE_UP`)."""
        if max_threads <= 1:
            return 1, 0
        key = (max_threads, *key)
        choice = self._choices.get(key)
        if choice is not None and time.monotonic() - choice[1] < PROBE_EVERY:
            return choice[0], 0
        span = PROBE_BATCHES * batch
        if n_samples < 4 * span:
            return 1, 0
        turn = max(1, PROBE_BATCHES // rounds) * batch
        multi = single = float("inf")
        position, gave_up = 0, False
        for r in range(max(1, rounds)):
            clock = time.perf_counter()
            run(position, position + turn, max_threads)
            this_multi = time.perf_counter() - clock
            clock = time.perf_counter()
            run(position + turn, position + 2 * turn, 1)
            this_single = time.perf_counter() - clock
            multi, single = min(multi, this_multi), min(single, this_single)
            position += 2 * turn
            if this_multi > PROBE_GIVE_UP * (3 if r == 0 else 1) * this_single:
                gave_up = True
                break
        threads = max_threads if multi < PROBE_MARGIN * single and not gave_up else 1
        self._choices[key] = (threads, time.monotonic(), single / turn)
        return threads, position

    def keep(self, key: tuple, max_threads: int, threads: int, seconds: float,
             n_samples: int) -> int:
        """Threads for the rest of a pass, after ``n_samples`` took ``seconds`` on
        ``threads`` (``key`` and ``max_threads`` as given to :meth:`start`).

        One if several threads took longer per sample than one thread did in the probe
        (another process has taken a core since, or the probe was lucky); the recorded
        choice then becomes one thread too, until the next probe. Else ``threads``.
        """
        if threads <= 1:
            return threads
        key = (max_threads, *key)
        choice = self._choices.get(key)
        if choice is None or seconds <= choice[2] * n_samples:
            return threads
        self._choices[key] = (1, *choice[1:])
        return 1

    def run_probing_chunks(self, key: tuple, run: Callable[[int, int, int], object],
                           stop: int, chunk: int, max_threads: int) -> None:
        """``run`` positions ``0 <= k < stop`` in chunks, choosing the threads by timing
        whole chunks rather than a probe of a few batches.

        For passes whose first batches are unlike the rest (a fresh SparseDream model
        first fires all its neurons, which keeps one thread busy with serial work) and
        whose parallel regions are short (after a pause, the first region pays a
        scheduler time slice to wake the threads): chunk 1 runs on all threads
        (untimed), chunk 2 on one and chunk 3 on all, timed; the faster setting runs the
        rest (:meth:`run_chunks`, which drops to one thread if the machine gets busy).
        A pass shorter than three chunks uses a choice made in the last
        :data:`PROBE_EVERY` seconds for the same key, else one thread.
        """
        full_key = (max_threads, *key)
        choice = self._choices.get(full_key)
        recent = choice is not None and time.monotonic() - choice[1] < PROBE_EVERY
        if max_threads <= 1 or recent or stop < 3 * chunk:
            threads = choice[0] if recent and max_threads > 1 else 1
            self.run_chunks(key, run, 0, stop, chunk, threads, max_threads)
            return
        seconds = []
        for part, threads in enumerate((max_threads, 1, max_threads)):
            clock = time.perf_counter()
            run(part * chunk, (part + 1) * chunk, threads)
            seconds.append(time.perf_counter() - clock)
        threads = max_threads if seconds[2] < PROBE_MARGIN * seconds[1] else 1
        self._choices[full_key] = (threads, time.monotonic(), seconds[1] / chunk)
        self.run_chunks(key, run, 3 * chunk, stop, chunk, threads, max_threads)

    def run_chunks(self, key: tuple, run: Callable[[int, int, int], object], start: int,
                   stop: int, chunk: int, threads: int, max_threads: int) -> None:
        """``run`` positions ``start <= k < stop`` in calls that end at multiples of
        ``chunk``, on ``threads`` threads, timing each call for :meth:`keep`."""
        while start < stop:
            end = min(start - start % chunk + chunk, stop)
            clock = time.perf_counter()
            run(start, end, threads)
            threads = self.keep(key, max_threads, threads, time.perf_counter() - clock,
                                end - start)
            start = end
