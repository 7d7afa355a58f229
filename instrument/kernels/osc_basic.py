"""The plain oscillator kernels, voice lanes: the PolyBLEP saw of ``saw_fast`` and the sine.
Contract: ``instrument.layout``. The band-limited shapes: ``kernels.minblep``.

Phase is kept in [0, 1). The frequency ratio from transpose and detune is computed at the
segment's first and last sample and interpolated linearly: exact when the parameters are
steady, and two exp2 per segment per voice instead of one per sample.
State rows: 0 phase, 1 increment per Hz at s0, 2 its change per sample.
"""

import math

from numba import njit

from instrument.kernels.approx import sin_2pi
from instrument.kernels.coefficients import pitch_increments, steady_pitch
from instrument.kernels.noalias import lane_loop
from instrument.layout import LANE_MULTIPLE

STATE_SIZE = 3


@njit(cache=True, inline="always")
def poly_blep(t, dt):
    """Two-sample polynomial band-limited step residual at phase ``t`` for increment ``dt``."""
    if t < dt:
        x = t / dt
        return x + x - x * x - 1.0
    if t > 1.0 - dt:
        x = (t - 1.0) / dt
        return x * x + x + x + 1.0
    return 0.0


@lane_loop
def saw_fast_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited (PolyBLEP) rising sawtooth; peak amplitude ``level``."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    pitch_increments(P, pr, st, 1, ctx, s0, s1, nl, 1.0)
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            dt = pitch[i, v] * (st[1, v] + st[2, v] * k)
            dt = min(max(dt, 1e-9), 0.5)
            t = st[0, v]
            out[i, v] = level[i, v] * (2.0 * t - 1.0 - poly_blep(t, dt))
            t += dt
            st[0, v] = t - 1.0 if t >= 1.0 else t


@lane_loop
def sine_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Sine; peak amplitude ``level``. At a steady pitch (``steady_pitch``) the phase of
    sample s0 + k is start + k x increment, with no sum carried from sample to sample."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    pitch_increments(P, pr, st, 1, ctx, s0, s1, nl, 1.0)
    if steady_pitch(io[0], ctx, st, 1, nl):
        grouped = nl - nl % LANE_MULTIPLE
        for i in range(s0, s1):
            k = float(i - s0)
            for v in range(grouped):  # sin_2pi takes any finite phase
                out[i, v] = level[i, v] * sin_2pi(st[0, v] + pitch[s0, v] * st[1, v] * k)
        # The lanes past the last whole multiple (a polyphony of 1, say) run sample after
        # sample in SIMD instead (a lane-across loop leaves them scalar): 1 lane 0.42 -> 0.12
        # us per block alone. The sine pass reads no other array (a read there stops SIMD).
        for v in range(grouped, nl):
            start = st[0, v]
            dt = pitch[s0, v] * st[1, v]
            for i in range(s0, s1):
                out[i, v] = sin_2pi(start + dt * float(i - s0))
        for i in range(s0, s1):
            for v in range(grouped, nl):
                out[i, v] *= level[i, v]
        for v in range(nl):
            t = st[0, v] + pitch[s0, v] * st[1, v] * (s1 - s0)
            st[0, v] = t - math.floor(t)
        return
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            t = st[0, v]
            out[i, v] = level[i, v] * sin_2pi(t)  # polynomial: libm sin stopped SIMD (630 ns)
            t += pitch[i, v] * (st[1, v] + st[2, v] * k)
            st[0, v] = t - math.floor(t)
