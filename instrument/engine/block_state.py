"""The block state: all arrays of one plan instance, named, behind one small directory array.

Why our own: a native call unboxes each array argument (type check, an NRT meminfo malloc'd
and freed around the call); the renderer's 23 arrays cost about 1 us per block that way, half
of the target fixed cost. The directory is one int64 (BS_COUNT, BS_WIDTH) array of addresses
and shapes (``instrument.layout.BLOCK_STATE_FIELDS``); native code turns a row back into a
C-contiguous array view with no allocation. The directory owns nothing: whoever builds it
(``PlanInstance``) keeps the arrays alive, and never rebinds them, for as long as it is used.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from instrument.layout import (
    BLOCK_STATE_FIELDS, BS_ADDRESS, BS_COUNT, BS_DIM0, BS_DIM1, BS_DIM2, BS_WIDTH,
)


class BlockStateError(ValueError):
    """An array does not fit its slot of the block state (a programming error)."""


def new_block_state(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The directory of these arrays, one per ``BLOCK_STATE_FIELDS`` name, each of the
    field's dtype and number of dimensions and C-contiguous."""
    state = np.zeros((BS_COUNT, BS_WIDTH), dtype=np.int64)
    for slot, (name, dtype, ndim) in enumerate(BLOCK_STATE_FIELDS):
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.ndim != ndim or not a.flags.c_contiguous:
            raise BlockStateError(f"block state field {name}: {a.dtype}[{a.ndim}d] "
                                  f"(contiguous {a.flags.c_contiguous}), wants {dtype}[{ndim}d]")
        state[slot, BS_ADDRESS] = a.ctypes.data
        state[slot, BS_DIM0:BS_DIM0 + ndim] = a.shape
    return state


@intrinsic
def pointer(typingctx, address):
    """The int64 ``address`` as a void pointer."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(types.int64), codegen


@njit(cache=True, inline="always")
def f64_1d(state, slot):
    return carray(pointer(state[slot, BS_ADDRESS]), (state[slot, BS_DIM0],), np.float64)


@njit(cache=True, inline="always")
def f64_2d(state, slot):
    return carray(pointer(state[slot, BS_ADDRESS]),
                  (state[slot, BS_DIM0], state[slot, BS_DIM1]), np.float64)


@njit(cache=True, inline="always")
def f64_3d(state, slot):
    return carray(pointer(state[slot, BS_ADDRESS]),
                  (state[slot, BS_DIM0], state[slot, BS_DIM1], state[slot, BS_DIM2]), np.float64)


@njit(cache=True, inline="always")
def i64_1d(state, slot):
    return carray(pointer(state[slot, BS_ADDRESS]), (state[slot, BS_DIM0],), np.int64)


@njit(cache=True, inline="always")
def i64_2d(state, slot):
    return carray(pointer(state[slot, BS_ADDRESS]),
                  (state[slot, BS_DIM0], state[slot, BS_DIM1]), np.int64)
