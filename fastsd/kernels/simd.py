"""Vector building blocks that LLVM does not find on its own from Numba loops.

Each is an ``@intrinsic`` that emits LLVM vector IR (``shufflevector``),
which LLVM lowers to AVX-512, AVX2 or SSE instructions as the CPU offers, so they stay
portable. They only move values: results are bit-identical to the plain loops they
replace (``tests/test_simd.py`` compares them).
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._tunables import CACHE_LINE, JIT


def _tile_masks(lanes: int):
    """The ``shufflevector`` masks of an in-register ``lanes``×``lanes`` transpose.

    Stage ``s`` swaps bit ``s`` of the row index with bit ``s`` of the column index:
    rows ``r`` and ``r | 2**s`` (bit ``s`` of ``r`` clear) trade the halves of their
    ``2**s``-blocks. After ``log2(lanes)`` stages every bit is swapped: the transpose.
    Returns ``[(bit, mask_low_row, mask_high_row), ...]``.
    """
    stages = []
    bit = 1
    while bit < lanes:
        low = [c if not c & bit else lanes + (c ^ bit) for c in range(lanes)]
        high = [c ^ bit if not c & bit else lanes + c for c in range(lanes)]
        stages.append((bit, low, high))
        bit <<= 1
    return stages


@intrinsic
def transpose_tile(typingctx, src, dst, i0, j0):
    """``dst[j0:j0+V, i0:i0+V] = src[i0:i0+V, j0:j0+V].T`` with ``V = 64 // itemsize``.

    ``src`` and ``dst`` are C-contiguous 2-D arrays of the same float dtype, and the tile
    must lie inside both (not checked). ``V`` row loads, ``V log2 V`` shuffles and ``V``
    stores, instead of ``V²`` scalar moves.
    """
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)
            and src.ndim == dst.ndim == 2 and src.layout == dst.layout == "C"
            and src.dtype == dst.dtype and isinstance(src.dtype, types.Float)
            and isinstance(i0, types.Integer) and isinstance(j0, types.Integer)):
        return None
    lanes = CACHE_LINE // (src.dtype.bitwidth // 8)
    stages = _tile_masks(lanes)

    def codegen(context, builder, signature, args):
        src_type, dst_type, i_type, j_type = signature.args
        source = context.make_array(src_type)(context, builder, args[0])
        target = context.make_array(dst_type)(context, builder, args[1])
        i_start = context.cast(builder, args[2], i_type, types.intp)
        j_start = context.cast(builder, args[3], j_type, types.intp)
        element = context.get_data_type(src_type.dtype)
        align = src_type.dtype.bitwidth // 8
        vector_ptr = ir.VectorType(element, lanes).as_pointer()
        intp = context.get_value_type(types.intp)

        def pointer(array_type, array, row, col):
            ptr = cgutils.get_item_pointer(context, builder, array_type, array,
                                           [row, col], wraparound=False)
            return builder.bitcast(ptr, vector_ptr)

        rows = []
        for r in range(lanes):
            row = builder.add(i_start, ir.Constant(intp, r))
            rows.append(builder.load(pointer(src_type, source, row, j_start), align=align))
        mask_type = ir.VectorType(ir.IntType(32), lanes)
        for bit, low, high in stages:
            new = list(rows)
            for r in range(lanes):
                if r & bit:
                    continue
                a, b = rows[r], rows[r | bit]
                new[r] = builder.shuffle_vector(a, b, ir.Constant(mask_type, low))
                new[r | bit] = builder.shuffle_vector(a, b, ir.Constant(mask_type, high))
            rows = new
        for c in range(lanes):
            col = builder.add(j_start, ir.Constant(intp, c))
            builder.store(rows[c], pointer(dst_type, target, col, i_start), align=align)
        return context.get_dummy_value()

    return types.void(src, dst, i0, j0), codegen


@njit(**JIT)
def transpose_into(W, WT):
    """``WT[...] = W.T`` for C-contiguous ``W`` (N, m) and ``WT`` (m, N): whole
    ``V``×``V`` tiles in registers (:func:`transpose_tile`), the edges element by element.
    For (100, 784), 2.7x (float32) and 1.8x (float64) faster than a tiled scalar copy."""
    transpose_columns(W, WT, 0, W.shape[1])


@njit(**JIT)
def transpose_columns(W, WT, start, stop):
    """``WT[start:stop, :] = W[:, start:stop].T``, as :func:`transpose_into` (which is
    the whole range)."""
    N = W.shape[0]
    lanes = CACHE_LINE // W.itemsize
    n_i = N // lanes * lanes
    n_j = start + (stop - start) // lanes * lanes
    for i0 in range(0, n_i, lanes):
        for j0 in range(start, n_j, lanes):
            transpose_tile(W, WT, i0, j0)
    for i in range(N):  # the edges
        for j in range(n_j if i < n_i else start, stop):
            WT[j, i] = W[i, j]
