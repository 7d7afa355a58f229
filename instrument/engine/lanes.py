"""Voice lanes: copies between them written as loops, a freed or fresh lane, and how many lanes run.

A slice assignment between arrays (``vstate[:, v] = vinit``) makes numba compile its
shape-mismatch error message (string formatting of the shapes) into every entry point that
reaches it: about 5 s of a cold compile, for a path that never runs (the shapes always match).
"""

from numba import njit

from instrument.kernels.lane_blocks import whole_blocks
from instrument.layout import (
    CTX_GATE_ROW, CTX_LAST_PEAK, CTX_PEAK, CTX_PITCH_ROW, CTX_RESET, CTX_WIDTH, LANE_MULTIPLE,
)


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
    for k in range(CTX_WIDTH):  # (the steady flags after it are per row, read in lane 0)
        vctx[k, to] = vctx[k, frm]
    vctx[CTX_GATE_ROW, to] = -1.0  # lane ``to``'s rows hold what they held: unknown here
    vctx[CTX_PITCH_ROW, to] = -1.0
    for k in range(vstate.shape[0]):
        vstate[k, to] = vstate[k, frm]


@njit(cache=True, inline="always")
def free_lane(voices, vctx, vstate, vinit, v, n):
    """Free voice ``v`` of the ``n`` active ones and return ``n - 1``, the active voices kept
    packed in the low lanes: the last active voice moves into lane ``v``, and the lane it
    leaves becomes a fresh silent voice (node state from ``vinit``, reset flagged, peaks 0),
    as do the idle lanes the renderer ran beside ``n`` voices and will not beside ``n - 1``
    (``padded_lanes``). So a lane that does not run is always fresh: it cannot carry a blown
    voice's state on, nor a free-running LFO's phase, which a new voice joins only from a
    running one (idle lanes run beside 5 voices kept it after every voice had ended)."""
    last = n - 1
    if v != last:
        move_lane(voices, vctx, vstate, v, last)
    for k in range(voices.shape[1]):
        voices[last, k] = 0.0
    fresh_lane(vctx, vstate, vinit, last)
    for lane in range(max(padded_lanes(last), n), min(padded_lanes(n), vstate.shape[1])):
        fresh_lane(vctx, vstate, vinit, lane)
    return last


@njit(cache=True, inline="always")
def fresh_lane(vctx, vstate, vinit, v):
    """Lane ``v`` as a voice that never sounded: node state from ``vinit``, the kernels'
    reset flag raised, its peaks 0."""
    set_column(vstate, v, vinit)
    vctx[CTX_RESET, v] = 1.0
    vctx[CTX_PEAK, v] = 0.0
    vctx[CTX_LAST_PEAK, v] = 0.0


@njit(cache=True, inline="always")
def padded_lanes(n):
    """``n`` lanes, rounded up to a whole number of LANE_BLOCKs above LANE_MULTIPLE: the lanes
    the voice kernels run (``render_template.kernel_lanes``); the voice arrays hold them
    (``instance.allocated_lanes``). Up to LANE_MULTIPLE run as they are (1 note of poly16 on
    4 lanes cost 7.5 us against 5.8 on its own lane, 4 notes on 8 lanes 8.7-9.5 against 7.5
    on 4). Rounding to multiples of 4 instead, 9-12 notes ran on 12 lanes: keys 30-33 us per
    block against 21-22 on 16, pad 28.5-29.7 against 23.6-25.8, poly16 the same."""
    if n <= LANE_MULTIPLE:
        return n
    return whole_blocks(n)
