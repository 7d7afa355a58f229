"""Lane blocks: a recursive filter's lanes run LANE_BLOCK at a time, the block's state on the
stack, so that LLVM keeps it in registers from sample to sample.

Why our own: a loop across lanes that reads and writes many state rows of one array needs
run-time alias checks (the row stride is not known when compiling), and LLVM only takes the
SIMD path from a trip count that pays for them: 16 lanes for the ladder here, below which
every lane ran on its own, each sample's state stored and loaded again. In a block, the loops
across its LANE_BLOCK lanes have a constant trip count and touch a stack array that aliases
nothing, so LLVM unrolls them and keeps the state in registers. Measured on the AMD EPYC
(Zen 4) of these figures, the ladder kernel alone per 64-sample block: 4 lanes 3.5-4.1 ->
2.5-2.9 us, 8 lanes 6.6-8.7 -> 2.5-2.9, 12 lanes 9.7-12.8 -> 4.9-5.4; at 16 the same, at 24
worse (5.4 -> 6.7), so from BLOCKS_BELOW lanes on the plain loop runs. Where the plain loop
is cheap below 16 lanes too, blocks do not pay: the svf's 2 state rows ran 0.53 -> 0.70 us
at 4 lanes, 0.78 -> 0.70 at 8, so the svf has none.

A blocked kernel may run idle lanes past ``nl`` up to the end of the block, when the arrays
hold them (``instance.allocated_lanes`` sizes them so from LANE_MULTIPLE voices on): fresh
silent voices, as ``render_template.kernel_lanes`` already runs, which nothing hears.
"""

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from instrument.layout import LANE_BLOCK, LANE_MULTIPLE

BLOCKS_BELOW = 16  # lanes from which LLVM's own SIMD path ran the ladder as fast as blocks


@intrinsic
def stack_f64(typingctx, size):
    """A pointer to ``size`` float64 values on the stack of the calling kernel; ``size`` a
    literal or a module constant (``carray(stack_f64(N), (rows, LANE_BLOCK))`` with
    N = rows * LANE_BLOCK is a block's scratch array, which aliases nothing)."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    n = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float64), size=n)

    return types.CPointer(types.float64)(size), codegen


@njit(cache=True, inline="always")
def whole_blocks(n):
    """``n`` lanes rounded up to a whole number of LANE_BLOCKs."""
    return -(-n // LANE_BLOCK) * LANE_BLOCK


@njit(cache=True, inline="always")
def block_lanes(nl, lanes):
    """How many lanes a blocked kernel runs in whole LANE_BLOCKs for ``nl`` lanes, or 0 for
    its plain loop across ``nl`` lanes: from LANE_MULTIPLE to BLOCKS_BELOW lanes, ``nl``
    rounded up to a whole block when the arrays hold ``lanes`` that many (the lanes past
    ``nl`` are idle; ``instance.allocated_lanes`` sizes the voice arrays so)."""
    if nl < LANE_MULTIPLE or nl >= BLOCKS_BELOW:
        return 0
    up = whole_blocks(nl)
    return up if up <= lanes else 0
