"""Copies between voice lanes, written as loops.

A slice assignment between arrays (``vstate[:, v] = vinit``) makes numba compile its
shape-mismatch error message (string formatting of the shapes) into every entry point that
reaches it: about 5 s of a cold compile, for a path that never runs (the shapes always match).
"""

from numba import njit


@njit(cache=True, inline="always")
def set_column(dst, col, src):
    """``dst[:, col] = src``."""
    for i in range(dst.shape[0]):
        dst[i, col] = src[i]


@njit(cache=True, inline="always")
def move_lane(voices, vctx, vstate, to, frm):
    """Voice ``frm`` (its voice row, context and node-state columns) into lane ``to``."""
    for k in range(voices.shape[1]):
        voices[to, k] = voices[frm, k]
    for k in range(vctx.shape[0]):
        vctx[k, to] = vctx[k, frm]
    for k in range(vstate.shape[0]):
        vstate[k, to] = vstate[k, frm]
