"""The memory-bandwidth floor of the exact per-sample SparseDream pass, and how close
fastsd gets to it.

The exact rule must touch all of ``W`` (N×m) per sample, and with inhibition all of
``L`` (N×N): the reconstruction ``r = Wᵀ o`` reads ``W``; the weight update (fused with
the next sample's drive ``W v``) reads and writes ``W``; the inhibition update (fused with
``L p``) reads and writes ``L``. So one sample cannot take less than::

    floor = |W| / read_bw + |W| / update_bw  (+ |L| / update_bw with inhibition)

where ``read_bw`` and ``update_bw`` are the bytes per second this machine streams
through a working set of the state's size (from L2, L3 or DRAM, whichever holds it),
reading, and reading-and-writing back. This script measures both on one and on two
threads, times fastsd's per-sample pass at the same sizes (the serial kernel on one
thread, the two-part kernel on two), and prints the ratio::

    python bench/bandwidth.py [--neurons 400 1600 6400] [--dtype float32]
                              [--samples 2000] [--beta 0 0.005]

The state is streamed as in the pass: sweeps over a buffer of the state's size, each
sweep a read (a sum) or an update (``a = a * c + d``), the best of several rounds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastsd.kernels.inputs import sample_scratch, sparsedream_rates  # noqa: E402
from fastsd.kernels import sparsedream as kernel  # noqa: E402
from fastsd.datasets import load_mnist  # noqa: E402

JIT = dict(cache=True, nogil=True, fastmath=True)
PARTS = 2


@njit(**JIT)
def _read(a):
    s = a.dtype.type(0)
    for i in range(a.shape[0]):
        s += a[i]
    return s


@njit(**JIT)
def _update(a, c, d):
    for i in range(a.shape[0]):
        a[i] = a[i] * c + d


@njit(**dict(JIT, parallel=True))
def _read_parts(a, out):
    n = a.shape[0]
    for part in prange(PARTS):
        out[part] = _read(a[part * n // PARTS:(part + 1) * n // PARTS])


@njit(**dict(JIT, parallel=True))
def _update_parts(a, c, d):
    n = a.shape[0]
    for part in prange(PARTS):
        _update(a[part * n // PARTS:(part + 1) * n // PARTS], c, d)


def _best_seconds(fn, rounds: int) -> float:
    fn()  # compile, and bring the buffer into the caches it fits in
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bandwidth(n_bytes: int, dtype, threads: int, rounds: int = 20) -> tuple[float, float]:
    """``(read_bw, update_bw)`` in bytes/s for sweeps over ``n_bytes`` of ``dtype``."""
    a = np.ones(max(n_bytes // np.dtype(dtype).itemsize, PARTS), dtype)
    c, d = a.dtype.type(1.0), a.dtype.type(0.0)
    out = np.zeros(PARTS, dtype)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, before))
    try:
        if threads == 1:
            read = _best_seconds(lambda: _read(a), rounds)
            update = _best_seconds(lambda: _update(a, c, d), rounds)
        else:
            read = _best_seconds(lambda: _read_parts(a, out), rounds)
            update = _best_seconds(lambda: _update_parts(a, c, d), rounds)
    finally:
        numba.set_num_threads(before)
    return a.nbytes / read, a.nbytes / update


def floor_per_sample(n: int, m: int, dtype, inhibition: bool, threads: int
                     ) -> tuple[float, float, float]:
    """``(seconds, read_bw, update_bw)``: the least time per sample of the exact pass
    (module docstring) and the two bandwidths it follows from."""
    item = np.dtype(dtype).itemsize
    w_bytes, l_bytes = n * m * item, n * n * item
    state = w_bytes + (l_bytes if inhibition else 0)
    read_bw, update_bw = bandwidth(state, dtype, threads)
    seconds = w_bytes / read_bw + (w_bytes + (l_bytes if inhibition else 0)) / update_bw
    return seconds, read_bw, update_bw


def pass_per_sample(X, n: int, dtype, beta: float, n_samples: int, threads: int) -> float:
    """Seconds per sample of fastsd's exact pass on ``threads`` threads (1: the serial
    kernel; 2: the two-part kernel), best of 3, from the state a first pass over the
    same samples left (past a fresh model's slow start)."""
    rng = np.random.default_rng(0)
    order = rng.permutation(X.shape[0])[:n_samples].astype(np.int64)
    m = X.shape[1]
    state = (rng.uniform(0.1, 1.0, (n, m)).astype(dtype), np.zeros(n, dtype),
             np.zeros((n, n), dtype))
    rates = sparsedream_rates(dict(xi=0.02, sp=1.0 / n, gamma=1.0, beta=beta, prec=1e-10),
                              dtype)
    scratch = sample_scratch(n, m, dtype)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, before))
    try:
        best = np.inf
        for rep in range(4):  # the first pass also compiles
            start = time.perf_counter()
            args = (X, order, 0, n_samples, *state, rates, 100, scratch)
            if threads == 1:
                kernel.sparsedream_pass(*args)
            else:
                kernel.sparsedream_pass_parts(*args)
            if rep:
                best = min(best, time.perf_counter() - start)
    finally:
        numba.set_num_threads(before)
    return best / n_samples


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[400, 1600, 6400])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--beta", type=float, nargs="+", default=[0.0, 0.005])
    args = parser.parse_args(argv)
    X = load_mnist(download=False).x_train.astype(args.dtype)
    m = X.shape[1]
    print(f"{cpu_model()}, {os.cpu_count()} cores; {args.dtype}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| N | beta | state MB | threads | read GB/s | update GB/s | floor µs/sample "
          "| pass µs/sample | pass / floor |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.neurons:
        for beta in args.beta:
            inhibition = beta > 0
            item = np.dtype(args.dtype).itemsize
            state_mb = (n * m + (n * n if inhibition else 0)) * item / 1e6
            samples = args.samples if n <= 1600 else max(args.samples // 10, 100)
            for threads in (1, PARTS):
                floor, read_bw, update_bw = floor_per_sample(n, m, args.dtype, inhibition,
                                                             threads)
                measured = pass_per_sample(X, n, args.dtype, beta, samples, threads)
                print(f"| {n} | {beta:g} | {state_mb:.1f} | {threads} | {read_bw / 1e9:.0f} "
                      f"| {update_bw / 1e9:.0f} | {1e6 * floor:.0f} | {1e6 * measured:.0f} "
                      f"| {measured / floor:.2f} |", flush=True)

if __name__ == "__main__":
    main()
