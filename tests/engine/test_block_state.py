"""The block state directory (engine.block_state): every field round-trips to the same memory,
native writes land in the owner's arrays, and a misfit array is refused at build time."""

import numpy as np
import pytest
from numba import njit

from instrument.engine.block_state import (
    BlockStateError, f64_1d, f64_2d, f64_3d, i64_1d, i64_2d, new_block_state,
)
from instrument.layout import BLOCK_STATE_FIELDS, BS_ENG, BS_OPS, BS_VBUFS

SHAPE = (3, 5, 7)


def _arrays():
    out = {}
    for slot, (name, dtype, ndim) in enumerate(BLOCK_STATE_FIELDS):
        shape = SHAPE[:ndim]
        out[name] = (np.arange(np.prod(shape)).reshape(shape) + 1000 * slot).astype(dtype)
    return out


@njit
def _touch(state):
    vbufs = f64_3d(state, BS_VBUFS)
    vbufs[2, 4, 6] = -1.0
    ops = i64_2d(state, BS_OPS)
    return ops[2, 4] + f64_1d(state, BS_ENG)[2] + vbufs.shape[0] * 100


@njit
def _sum_of(state, slot, kind):
    if kind == 0:
        return f64_1d(state, slot).sum()
    if kind == 1:
        return f64_2d(state, slot).sum()
    if kind == 2:
        return f64_3d(state, slot).sum()
    if kind == 3:
        return float(i64_1d(state, slot).sum())
    return float(i64_2d(state, slot).sum())


def test_every_field_reads_back_the_owner_array():
    arrays = _arrays()
    state = new_block_state(arrays)
    kinds = {("float64", 1): 0, ("float64", 2): 1, ("float64", 3): 2, ("int64", 1): 3,
             ("int64", 2): 4}
    for slot, (name, dtype, ndim) in enumerate(BLOCK_STATE_FIELDS):
        assert _sum_of(state, slot, kinds[dtype, ndim]) == float(arrays[name].sum()), name


def test_native_writes_land_in_the_owner_array_with_shapes_kept():
    arrays = _arrays()
    state = new_block_state(arrays)
    got = _touch(state)
    assert arrays["vbufs"][2, 4, 6] == -1.0
    assert got == arrays["ops"][2, 4] + arrays["eng"][2] + 300


@pytest.mark.parametrize("bad", ["dtype", "ndim", "strided"])
def test_an_array_that_does_not_fit_its_field_is_refused(bad):
    arrays = _arrays()
    if bad == "dtype":
        arrays["vbufs"] = arrays["vbufs"].astype(np.float32)
    elif bad == "ndim":
        arrays["vbufs"] = arrays["vbufs"][0]
    else:
        arrays["vbufs"] = np.zeros((3, 10, 7))[:, ::2]
    with pytest.raises(BlockStateError, match="vbufs"):
        new_block_state(arrays)
