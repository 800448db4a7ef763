"""Keeping BLAS to one thread around code that interleaves BLAS calls with Numba.

On a 2-core machine, OpenBLAS's threads spin while waiting for work; when its calls
alternate with Numba kernels (mini-batches) or are skinny products (the probe), the two
thread pools starve each other and a run becomes several times slower (measured: one
mini-batch epoch 5 s with default threads against 0.9 s with one BLAS thread). fastsd
depends on ``threadpoolctl`` (scikit-learn's tool for this) to limit BLAS at run time.
"""
from __future__ import annotations

from threadpoolctl import ThreadpoolController

_CONTROLLER = None


def one_blas_thread():
    """Context manager: BLAS libraries loaded by numpy/scipy use one thread inside."""
    global _CONTROLLER
    if _CONTROLLER is None:  # enumerating the loaded libraries takes a few ms: once
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
