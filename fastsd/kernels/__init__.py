"""Numba kernels. Each module holds one rule; shared per-sample steps live in ``common``.

All kernels work in place on preallocated arrays of one floating dtype (float32 or
float64) and never allocate per sample.
"""
