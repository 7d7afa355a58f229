"""``monotonic_ns()`` for native code: CLOCK_MONOTONIC, the clock of Python's
``time.monotonic`` (Linux), read with libc's ``clock_gettime``.

Why our own: numba has no clock, and the audio callback's one native call per block
(``live_block``) stamps the block itself instead of calling ``time`` from Python twice.
"""

from __future__ import annotations

import ctypes

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CLOCK_MONOTONIC = 1  # <linux/time.h>
# struct timespec is {time_t tv_sec; long tv_nsec;}: time_t is a long in glibc on 64-bit and
# on 32-bit Raspberry Pi OS bookworm alike (no 64-bit time_t there yet).
_LONG_BITS = ctypes.sizeof(ctypes.c_long) * 8


@intrinsic
def monotonic_ns(typingctx):
    """Nanoseconds of CLOCK_MONOTONIC, as int64 (the same count as ``time.monotonic_ns``)."""
    def codegen(context, builder, signature, args):
        long_t = ir.IntType(_LONG_BITS)
        i64 = ir.IntType(64)
        timespec = ir.LiteralStructType([long_t, long_t])
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), timespec.as_pointer()])
        clock_gettime = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        builder.call(clock_gettime, [ir.Constant(ir.IntType(32), CLOCK_MONOTONIC), ts])
        sec = _widen(builder, builder.load(cgutils.gep_inbounds(builder, ts, 0, 0)), i64)
        nsec = _widen(builder, builder.load(cgutils.gep_inbounds(builder, ts, 0, 1)), i64)
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)
    return types.int64(), codegen


def _widen(builder, value, i64):
    return value if _LONG_BITS == 64 else builder.sext(value, i64)
