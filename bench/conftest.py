"""Benchmarks share MNIST (60k train) loaded once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mnist():
    from fastsd.datasets import load_mnist

    return load_mnist(download=False)
