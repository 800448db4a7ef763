"""First use of the compiled kernels: say so while it happens, and overlap the work.

Numba compiles a kernel the first time it is called with new argument types and keeps
the machine code in its on-disk cache, so only the first run on a machine pays (a few
seconds per kernel; ``docs/performance.md`` has the figures). Two things here:

- :func:`compiling` puts what is being prepared on the progress bar, so a fresh run
  does not sit at 0% without a word;
- :func:`warm_evaluator` compiles the WTA evaluator in a separate process (Numba
  compiles one function at a time per process) while the caller compiles its training
  pass: the first ``fastsd train`` on a machine then waits for the longer of the two,
  not their sum. Run as ``python -m fastsd._compile DTYPE`` it does that work itself.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np

#: Rows of the tiny data the background process evaluates (the types, not the sizes,
#: decide what is compiled).
_WARM_ROWS = 4


@contextlib.contextmanager
def compiling(bar, what: str):
    """Show ``what`` (e.g. "preparing the training kernels") on the tqdm ``bar`` inside
    the block, with a note that compiling happens on first use only; restore it after."""
    before = getattr(bar, "desc", "")
    bar.set_description_str(f"{what} (compiled on first use, then cached)", refresh=True)
    try:
        yield
    finally:
        bar.set_description_str(before, refresh=True)


def warm_evaluator(dtype) -> subprocess.Popen | None:
    """Start compiling the cosine WTA evaluator for inputs of ``dtype`` in a separate
    process, into Numba's cache; returns the process (or None if it cannot start).

    Harmless if the kernels are cached already (the process then only loads them) or if
    the cache is not writable (the caller compiles them itself when it needs them).
    """
    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", __name__, np.dtype(dtype).name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def stop(process: subprocess.Popen | None) -> None:
    """End a process from :func:`warm_evaluator` that is still running."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def _evaluate_tiny(dtype) -> None:
    """Run the cosine WTA evaluator on tiny data of ``dtype`` (compiles it)."""
    from .evaluate import wta

    x = np.eye(_WARM_ROWS, dtype=dtype)
    y = np.arange(_WARM_ROWS)
    wta(np.ones((2, _WARM_ROWS), dtype=dtype), x, y, x, y, score="cosine")


if __name__ == "__main__":  # pragma: no cover - run by warm_evaluator
    _evaluate_tiny(sys.argv[1])
