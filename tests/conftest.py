"""Shared fixtures: small synthetic image-like data and (when available) real MNIST."""
from __future__ import annotations

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
    """The real MNIST data set, or skip if no source is available offline."""
    datasets = pytest.importorskip("fastsd.datasets")
    try:
        return datasets.load_mnist(download=False)
    except datasets.DataError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"MNIST not available: {exc}")
