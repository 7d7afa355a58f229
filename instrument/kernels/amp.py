"""Amplitude, mixing and endpoint kernels, voice lanes. Contract: ``instrument.layout``."""

from numba import njit

from instrument.kernels.approx import exp_approx
from instrument.kernels.coefficients import ramp_step
from instrument.kernels.noalias import WIDE_LANES, lane_loop
from instrument.kernels.steady import row_steady
from instrument.layout import (
    CTX_MOD_WHEEL, CTX_NOTE, CTX_PRESSURE, CTX_TIMBRE, CTX_VELOCITY, ROW_SINK,
)

_DB_TO_LN = 0.11512925464970229  # ln(10) / 20: 10**(x / 20) = exp(x * _DB_TO_LN)
VCA_F0, VCA_DF = 0, 1  # state: the dB velocity factor at s0 and its change per sample
VCA_STATE = 2


@njit(cache=True, inline="always")
def velocity_db_factor(range_db, velocity):
    """10**(-range_db * (1 - velocity) / 20): 1 at velocity 1, range_db lower at velocity 0;
    exactly 1.0 at range_db 0. exp_approx (relative error below 1e-10), no libm call."""
    return exp_approx(-range_db * (1.0 - velocity) * _DB_TO_LN)


@lane_loop
def vca_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out = in * cv * gain * (1 - a + a * vel) * 10**(-range_db * (1 - vel) / 20), with
    vel the note-on velocity (MIDI velocity / 127), a = velocity_amount, range_db =
    velocity_range_db. The first factor is linear in amplitude, the second linear in dB: at
    range_db R, velocity 127 passes the gain and each step down takes R / 127 dB off (velocity
    30 sits R * 90 / 127 dB below velocity 120). range_db 0 multiplies by exactly 1.0: the
    linear law alone, as before it existed. The dB factor is exact at both ends of a segment
    and linear between (range_db is smoothed; velocity holds within a segment)."""
    x = bufs[io[0]]
    cv = bufs[io[1]]
    out = bufs[io[2]]
    gain = P[pr[0]]
    vel_amount = P[pr[1]]
    range_db = P[pr[2]]
    vel = ctx[CTX_VELOCITY]
    n = s1 - s0
    for v in range(nl):
        f0 = velocity_db_factor(range_db[s0, v], vel[v])
        f1 = velocity_db_factor(range_db[s1 - 1, v], vel[v])
        st[VCA_F0, v] = f0
        st[VCA_DF, v] = ramp_step(f0, f1, n)
    if nl == 1:  # one voice: sample after sample (a loop across one lane per sample costs)
        vel0, f0, df = vel[0], st[VCA_F0, 0], st[VCA_DF, 0]
        for i in range(s0, s1):
            out[i, 0] = _vca_sample(x[i, 0], cv[i, 0], gain[i, 0], vel_amount[i, 0], vel0, f0,
                                    df, i - s0)
        return
    f0, df = st[VCA_F0], st[VCA_DF]
    if row_steady(ctx, pr[0]) and row_steady(ctx, pr[1]):  # settled: one value per lane
        g, a = gain[s0], vel_amount[s0]
        if nl == WIDE_LANES:  # a constant lane count: no loop left across lanes
            _vca_steady(x, cv, out, g, a, vel, f0, df, s0, s1, WIDE_LANES)
        else:
            _vca_steady(x, cv, out, g, a, vel, f0, df, s0, s1, nl)
    else:
        _vca_moving(x, cv, out, gain, vel_amount, vel, f0, df, s0, s1, nl)


@lane_loop
def _vca_steady(x, cv, out, g, a, vel, f0, df, s0, s1, nl):
    """The vca's lane loop with gain and velocity amount one value per lane."""
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = _vca_sample(x[i, v], cv[i, v], g[v], a[v], vel[v], f0[v], df[v], i - s0)


@lane_loop
def _vca_moving(x, cv, out, gain, vel_amount, vel, f0, df, s0, s1, nl):
    """The vca's lane loop with gain and velocity amount rows."""
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = _vca_sample(x[i, v], cv[i, v], gain[i, v], vel_amount[i, v], vel[v],
                                    f0[v], df[v], i - s0)


@njit(cache=True, inline="always")
def _vca_sample(x, cv, gain, vel_amount, vel, f0, df, k):
    """The vca's output at sample k of a segment: input times cv, gain, the linear velocity
    law and the dB factor ramping from f0 by df per sample."""
    return x * cv * gain * (1.0 - vel_amount + vel_amount * vel) * (f0 + df * k)


@lane_loop
def gain_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out = in * 10**(gain_db / 20); the factor is interpolated between segment ends
    (state rows: factor at s0, its change per sample)."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    gdb = P[pr[0]]
    n = s1 - s0
    for v in range(nl):
        a0 = 10.0 ** (gdb[s0, v] / 20.0)
        st[0, v] = a0
        st[1, v] = (10.0 ** (gdb[s1 - 1, v] / 20.0) - a0) / n if n > 1 else 0.0
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            out[i, v] = x[i, v] * (st[0, v] + st[1, v] * k)


@lane_loop
def mixer_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out = sum of four inputs, each times its linear level."""
    a, b, c, d = bufs[io[0]], bufs[io[1]], bufs[io[2]], bufs[io[3]]
    out = bufs[io[4]]
    la, lb, lc, ld = P[pr[0]], P[pr[1]], P[pr[2]], P[pr[3]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = (a[i, v] * la[i, v] + b[i, v] * lb[i, v] + c[i, v] * lc[i, v]
                         + d[i, v] * ld[i, v])


@lane_loop
def output_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out_left = in + left, out_right = in + right (the engine sums voices and meters them);
    out_right unwritten when bound to the sink (a mono voice: ``CFG_MONO_VOICE``)."""
    mono = bufs[io[0]]
    left = bufs[io[1]]
    right = bufs[io[2]]
    out_l = bufs[io[3]]
    out_r = bufs[io[4]]
    if nl == 1:  # one voice (a mono preset): sample after sample, 161 -> 37 ns per block
        for i in range(s0, s1):
            out_l[i, 0] = mono[i, 0] + left[i, 0]
        if io[4] != ROW_SINK:
            for i in range(s0, s1):
                out_r[i, 0] = mono[i, 0] + right[i, 0]
        return
    if io[4] == ROW_SINK:
        for i in range(s0, s1):
            for v in range(nl):
                out_l[i, v] = mono[i, v] + left[i, v]
        return
    for i in range(s0, s1):
        for v in range(nl):
            out_l[i, v] = mono[i, v] + left[i, v]
            out_r[i, v] = mono[i, v] + right[i, v]


@lane_loop
def nop_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Does nothing (source nodes whose outputs are bound to reserved rows)."""
    return


@lane_loop
def controls_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Per-voice controller values as signals: velocity, key (note / 127), mod wheel, pressure.
    Outputs nobody reads (bound to ROW_SINK) are not written."""
    for k in range(4):
        if io[k] == ROW_SINK:
            continue
        row = bufs[io[k]]
        slot = (CTX_VELOCITY, CTX_NOTE, CTX_MOD_WHEEL, CTX_PRESSURE)[k]
        scale = 1.0 / 127.0 if slot == CTX_NOTE else 1.0
        for i in range(s0, s1):
            for v in range(nl):
                row[i, v] = ctx[slot, v] * scale


@lane_loop
def expression_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """``expression``: the voice's timbre (CC74, 0..1) as a signal; not written when nobody
    reads it."""
    if io[0] == ROW_SINK:
        return
    row = bufs[io[0]]
    for i in range(s0, s1):
        for v in range(nl):
            row[i, v] = ctx[CTX_TIMBRE, v]
