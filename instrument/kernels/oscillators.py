"""Oscillator kernels. Contract: ``instrument.modules.layout``.

Phase is kept in [0, 1). Frequency ratios from detune are computed at the segment's first and
last sample and interpolated linearly: exact when the parameters are steady, and one exp2 per
segment instead of one per sample (a per-sample exp2 cost 4 ns x 1024 voice-samples per block).
"""

import math

from numba import njit

from instrument.modules.layout import CTX_SAMPLE_RATE


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


@njit(cache=True, inline="always")
def _pitch_ratio(P, row_transpose, row_detune, i):
    return 2.0 ** ((P[row_transpose, i] + 0.01 * P[row_detune, i]) / 12.0)


@njit(cache=True, error_model="numpy")
def saw_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """Band-limited (PolyBLEP) sawtooth, rising, amplitude ``level`` (peak), phase in st[0]."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    inv_sr = 1.0 / ctx[CTX_SAMPLE_RATE]
    n = s1 - s0
    r0 = _pitch_ratio(P, pr[0], pr[1], s0)
    dr = (_pitch_ratio(P, pr[0], pr[1], s1 - 1) - r0) / n if n > 1 else 0.0
    phase = st[0]
    for i in range(s0, s1):
        dt = pitch[i] * (r0 + dr * (i - s0)) * inv_sr
        if dt > 0.5:
            dt = 0.5
        elif dt < 1e-9:
            dt = 1e-9
        y = 2.0 * phase - 1.0 - poly_blep(phase, dt)
        out[i] = level[i] * y
        phase += dt
        if phase >= 1.0:
            phase -= 1.0
    st[0] = phase


@njit(cache=True, error_model="numpy")
def sine_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """Sine oscillator, amplitude ``level`` (peak), phase in st[0]."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    inv_sr = 1.0 / ctx[CTX_SAMPLE_RATE]
    n = s1 - s0
    r0 = _pitch_ratio(P, pr[0], pr[1], s0)
    dr = (_pitch_ratio(P, pr[0], pr[1], s1 - 1) - r0) / n if n > 1 else 0.0
    phase = st[0]
    two_pi = 2.0 * math.pi
    for i in range(s0, s1):
        out[i] = level[i] * math.sin(two_pi * phase)
        phase += pitch[i] * (r0 + dr * (i - s0)) * inv_sr
        phase -= math.floor(phase)
    st[0] = phase
