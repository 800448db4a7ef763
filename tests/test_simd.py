"""The vector intrinsics only move values: results equal numpy's exactly."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsd.kernels.simd import transpose_columns, transpose_into


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(100, 784), (16, 16), (8, 8), (17, 33), (3, 5), (1, 40),
                                   (128, 64)])
def test_transpose_into_equals_numpy(dtype, shape):
    W = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    W[0, 0] = np.nan  # moved, not computed with
    WT = np.full(shape[::-1], 7, dtype)
    transpose_into(W, WT)
    np.testing.assert_array_equal(WT, W.T)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 40), double=st.booleans())
def test_transpose_into_any_shape(n, m, double):
    """Every split of whole tiles and edges, both dtypes."""
    dtype = np.float64 if double else np.float32
    W = np.arange(n * m, dtype=dtype).reshape(n, m)
    WT = np.zeros((m, n), dtype)
    transpose_into(W, WT)
    np.testing.assert_array_equal(WT, W.T)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 60), data=st.data(), double=st.booleans())
def test_transpose_columns_touches_only_its_range(n, m, data, double):
    """``WT[start:stop] = W[:, start:stop].T``; the other rows of ``WT`` keep their values."""
    start = data.draw(st.integers(0, m))
    stop = data.draw(st.integers(start, m))
    dtype = np.float64 if double else np.float32
    W = np.arange(n * m, dtype=dtype).reshape(n, m)
    WT = np.full((m, n), -1, dtype)
    transpose_columns(W, WT, start, stop)
    want = np.full((m, n), -1, dtype)
    want[start:stop] = W[:, start:stop].T
    np.testing.assert_array_equal(WT, want)
