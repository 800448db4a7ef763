"""The one-pass input check agrees with the plain numpy checks it replaces."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastsd._validation import _finite_nonnegative_max, check_inputs

SPECIAL = [0.0, -0.0, 1.0, 0.5, 1e-45, 5e-324, 2.0, 255.0, -1.0, -1e-30, np.inf, -np.inf,
           np.nan, -np.nan, 3.4e38]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fast_path_matches_numpy(dtype, data):
    values = st.one_of(st.sampled_from(SPECIAL),
                       st.floats(-2, 2, allow_nan=False, width=32 if dtype == np.float32
                                 else 64))
    with np.errstate(over="ignore"):
        x = data.draw(arrays(dtype, st.tuples(st.integers(1, 5), st.integers(1, 7)),
                             elements=values))
    high = _finite_nonnegative_max(np.ascontiguousarray(x))
    plain_ok = bool(np.isfinite(x).all() and not np.signbit(x).any())
    assert (high is not None) == plain_ok
    if plain_ok:
        assert high == float(x.max())
    # and the public check accepts exactly the finite, >= 0, <= 1 inputs
    accepted = bool(np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1)
    try:
        check_inputs(x, dtype=np.dtype(dtype))
    except ValueError:
        assert not accepted
    else:
        assert accepted
