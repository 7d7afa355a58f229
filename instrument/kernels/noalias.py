"""``lane_loop``: njit for module kernels and their lane loops, with LLVM told that their array
arguments do not overlap while the function runs (the ``noalias`` attribute on every pointer
argument).

Why: a loop across lanes that writes one array and reads others is guarded by run-time
overlap checks, one per pair of arrays, again at every sample (the loop across lanes is the
inner one); with 16 lanes its body runs twice per sample and the checks, and the registers
they take, cost more than the work. A kernel's ``bufs``, ``P``, ``st`` and ``ctx`` are
separate arrays: said so, LLVM drops the checks between them. Its rows are slices of one
buffer array, which the kernel's own helpers take as separate arguments (``_vca_steady``, the
svf's run, ...), said not to overlap either; and some of those are compiled for 16 lanes as a
constant count as well (``WIDE_LANES``), which leaves no loop across lanes at all. Measured
on an AMD EPYC (Zen 4, AVX-512), 16 voices, per 64-sample block: the vca's loop alone
490 -> 175-220 ns with the flag and the constant count (the flag alone 10 % off; the envelope's
recursion ran slower with the constant count, 620 -> 1040 ns, so it has none); every kernel
with the flag, poly16 on scsynth_compare's score 9.6-10.0 -> 7.8 us per block, pad and brass
20.2-20.8 -> 17.6-18.3. Numba has this flag (``Flags.noalias``, used by its parallel back
end) but no ``jit`` option for it; this module maps one.

The promise a ``lane_loop`` function makes: no array it writes shares memory with another of
its array arguments. The plan compiler guarantees it for buffer rows (an op's output rows are
taken before its input rows are given back: ``layout``, part 1, tested on every shipped
preset), parameter rows, node state and context are separate arrays; two outputs bound to the
sink row are never read. Without the flag (a numba that lacks it) the functions are plain
njit functions: the same results, the old speed.
"""

import numpy as np
from numba import carray, njit
from numba.core.compiler import Flags
from numba.core.cpu import CPUTargetOptions
from numba.core.options import TargetOptions

from instrument.engine.block_state import pointer

# The lane count some lane loops are compiled for as a constant as well (poly16 and every
# preset of 9-16 voices run 16 lanes: ``lanes.padded_lanes``).
WIDE_LANES = 16

NOALIAS = hasattr(Flags, "noalias")
if NOALIAS and not hasattr(CPUTargetOptions, "noalias"):
    CPUTargetOptions.noalias = TargetOptions.Mapping("noalias")


def lane_loop(fn):
    """``njit(cache=True, error_model="numpy", noalias=True)``, as a decorator."""
    if NOALIAS:
        return njit(cache=True, error_model="numpy", noalias=True)(fn)
    return njit(cache=True, error_model="numpy")(fn)


@njit(cache=True, inline="always")
def flat_rows(rows, s0, s1):
    """Samples [s0, s1) of ``rows`` (samples x lanes, C-contiguous) as one flat array of
    (s1 - s0) x lanes values, no copy: an element-wise op over every lane of the array runs
    as one loop (LLVM left the 16-lane sum of two rows scalar with the lane count a constant,
    and a loop across 16 lanes pays its set-up at every sample)."""
    return carray(pointer(rows.ctypes.data + s0 * rows.strides[0]),
                  ((s1 - s0) * rows.shape[1],), np.float64)
