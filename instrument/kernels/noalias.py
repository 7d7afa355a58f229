"""``lane_loop``: njit for the lane loops of kernels, with LLVM told that their array arguments
do not overlap while the function runs (the ``noalias`` attribute on every pointer argument).

Why: a kernel's rows are slices of one buffer array, so LLVM cannot prove that the row it
writes is not a row it reads, and guards every vectorized lane loop with run-time overlap
checks, one per pair of arrays, again at every sample (the loop across lanes is the inner
one). With 16 lanes the loop body runs twice per sample and the checks, and the registers
they take, cost more than the work: the vca's loop alone at 16 voices 490 -> 175-220 ns per
block (AMD EPYC, AVX-512). Numba has this flag (``Flags.noalias``, used by its parallel
back end) but no ``jit`` option for it; this module maps one.

The promise a ``lane_loop`` function makes: no array it writes shares memory with another of
its array arguments. The plan compiler guarantees it for buffer rows (an op's output rows are
taken before its input rows are given back, parameter rows and node state are separate
arrays); two outputs bound to the sink row are never read. Without the flag (a numba that
lacks it) the functions are plain njit functions: the same results, the old speed.
"""

from numba import njit
from numba.core.compiler import Flags
from numba.core.cpu import CPUTargetOptions
from numba.core.options import TargetOptions

# The lane count some lane loops are compiled for as a constant as well (poly16 and every
# preset of 9-16 voices run 16 lanes: ``lanes.padded_lanes``).
WIDE_LANES = 16

NOALIAS = hasattr(Flags, "noalias")
if NOALIAS and not hasattr(CPUTargetOptions, "noalias"):
    CPUTargetOptions.noalias = TargetOptions.Mapping("noalias")


def lane_loop(fn=None, **options):
    """``njit(cache=True, error_model="numpy", noalias=True)``, as a decorator."""
    options = {"cache": True, "error_model": "numpy", **options}
    if NOALIAS:
        options["noalias"] = True
    if fn is None:
        return lambda f: njit(**options)(f)
    return njit(**options)(fn)
