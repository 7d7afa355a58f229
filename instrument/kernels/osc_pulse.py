"""Pulse with PWM, sub-oscillator and triangle kernels, band-limited by the minBLEP of
``instrument.kernels.minblep`` (its docstring: method, measured alias levels and costs)."""

import numpy as np
from numba import njit

from instrument.kernels.approx import sin_2pi
from instrument.kernels.coefficients import pitch_increments
from instrument.kernels.minblep import (
    EVENT_SLOTS, MAX_INC, MIN_INC, N_TAPS, RAMP_TABLE, STEP_DELAY, STEP_TABLE, clear_rows,
    flush_events, phase_pass, push_event, shift_corrections, wrapped_phase,
)
from instrument.kernels.noalias import lane_loop
from instrument.layout import ROW_ONE, ROW_SINK

# ---- pulse (and the sub-oscillator's square) ------------------------------------------------
# State rows: phase of the last sample (unwrapped during pass A), the phase and width before
# the segment, increment per Hz and its slope, the first and the last sample with a
# discontinuity this segment (pass B visits only those and the samples between).
_P_LAST, _P_PREV, _P_WPREV, _P_INC, _P_DINC, _P_FIRST, _P_FINAL = range(7)
PULSE_EVENTS = 7
PULSE_FIXED = PULSE_EVENTS + 2 * EVENT_SLOTS
_NONE = 1e9  # "no discontinuity yet" as a first sample
MIN_WIDTH = 0.05
MAX_WIDTH = 0.95


def pulse_reset(state, sample_rate):
    """Zero state, except the width before the first sample: above the phase (0), so the
    waveform starts high without a step."""
    state[:] = 0.0
    state[_P_WPREV] = 0.5


@njit(cache=True, error_model="numpy")
def _pulse_find(width, wscale, out, st, s0, s1, nl):
    """Pass A': per voice, the first and the last sample with a wrap or a change of the
    naive level (the phase crossing the width, or the width moving across the phase)."""
    prev, wprev, first, final = st[_P_PREV], st[_P_WPREV], st[_P_FIRST], st[_P_FINAL]
    for v in range(nl):
        w = min(max(width[s0, v] * wscale, MIN_WIDTH), MAX_WIDTH)
        t = out[s0, v]
        wrapped = 1.0 if t < prev[v] else 0.0
        high_before = 1.0 if prev[v] < wprev[v] else 0.0
        high = 1.0 if t < w else 0.0
        flag = min(wrapped + abs(high - high_before), 1.0)
        first[v] = s0 * flag + _NONE * (1.0 - flag)
        final[v] = s0 * flag + (flag - 1.0)
    for i in range(s0 + 1, s1):
        fi = float(i)
        for v in range(nl):
            wb = min(max(width[i - 1, v] * wscale, MIN_WIDTH), MAX_WIDTH)
            w = min(max(width[i, v] * wscale, MIN_WIDTH), MAX_WIDTH)
            tb = out[i - 1, v]
            t = out[i, v]
            wrapped = 1.0 if t < tb else 0.0
            high_before = 1.0 if tb < wb else 0.0
            high = 1.0 if t < w else 0.0
            flag = min(wrapped + abs(high - high_before), 1.0)
            # Arithmetic, not a select: written "i if flag else ..." LLVM stored
            # conditionally and this loop ran 4x slower.
            first[v] = min(first[v], fi * flag + _NONE * (1.0 - flag))
            final[v] = max(final[v], fi * flag + (flag - 1.0))


@njit(cache=True, inline="always")
def _cross(f0, f1):
    """Where in [0, 1] a linear function from f0 to f1 crosses zero."""
    span = f1 - f0
    x = -f0 / span if span != 0.0 else 1.0
    return min(max(x, 0.0), 1.0)


@njit(cache=True, error_model="numpy")
def _pulse_pass_b(width, wscale, sync_out, write_sync, out, st, row0, s0, s1, nl):
    """Pass B: a step of +2 at each wrap and of -2 / +2 where the phase and the width (linear
    over the sample) cross; the steps of one sample sum to the change of the naive level, so
    PWM at any rate adds no stray step."""
    last, prev, wprev, first, final = (st[_P_LAST], st[_P_PREV], st[_P_WPREV], st[_P_FIRST],
                                       st[_P_FINAL])
    ev = PULSE_EVENTS
    for v in range(nl):
        if final[v] >= 0.0:
            a = int(first[v])
            tp = out[a - 1, v] if a > s0 else prev[v]
            wp = min(max(width[a - 1, v] * wscale, MIN_WIDTH), MAX_WIDTH) if a > s0 else wprev[v]
            ne = 0
            for i in range(a, int(final[v]) + 1):
                t = out[i, v]
                w = min(max(width[i, v] * wscale, MIN_WIDTH), MAX_WIDTH)
                high_before = tp < wp
                high_now = t < w
                wrapped = t < tp
                if wrapped or high_before != high_now:
                    if ne > EVENT_SLOTS - 3:
                        flush_events(st, ev, ne, row0, v, STEP_TABLE)
                        ne = 0
                    k = i - s0
                    if wrapped:
                        xw = min((1.0 - tp) / (t + 1.0 - tp), 1.0)
                        if high_before:  # fell before the wrap
                            x = min(_cross(tp - wp, t + 1.0 - w), xw)
                            ne = push_event(st, ev, ne, v, k, 1.0 - x, -2.0)
                        ne = push_event(st, ev, ne, v, k, 1.0 - xw, 2.0)
                        if write_sync:
                            sync_out[i, v] = xw
                        if not high_now:  # fell after it
                            x = max(_cross(tp - 1.0 - wp, t - w), xw)
                            ne = push_event(st, ev, ne, v, k, 1.0 - x, -2.0)
                    else:
                        x = _cross(tp - wp, t - w)
                        ne = push_event(st, ev, ne, v, k, 1.0 - x, 2.0 if high_now else -2.0)
                tp = t
                wp = w
            flush_events(st, ev, ne, row0, v, STEP_TABLE)
        last[v] = wrapped_phase(last[v])
        prev[v] = last[v]
        wprev[v] = min(max(width[s1 - 1, v] * wscale, MIN_WIDTH), MAX_WIDTH)


@njit(cache=True, error_model="numpy")
def _pulse_pass_c(width, wscale, level, out, st, row0, s0, s1, nl):
    """Pass C: level * (naive +1/-1 level minus its mean 2 w - 1, plus corrections)."""
    for i in range(s0, s1):
        k = i - s0
        corr = st[row0 + k]
        for v in range(nl):
            w = min(max(width[i, v] * wscale, MIN_WIDTH), MAX_WIDTH)
            high = 1.0 if out[i, v] < w else 0.0
            out[i, v] = level[i, v] * (2.0 * high - 2.0 * w + corr[v])
    shift_corrections(st, row0, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def _pulse(pitch, width, wscale, level, out, sync_out, write_sync, st, s0, s1, nl):
    phase_pass(pitch, out, st[_P_LAST], st[_P_INC], st[_P_DINC], s0, s1, nl, True)
    _pulse_find(width, wscale, out, st, s0, s1, nl)
    _pulse_pass_b(width, wscale, sync_out, write_sync, out, st, PULSE_FIXED, s0, s1, nl)
    _pulse_pass_c(width, wscale, level, out, st, PULSE_FIXED, s0, s1, nl)


@lane_loop
def pulse_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited pulse, +1 for the first ``width`` of each cycle and -1 after it, minus its
    mean (so the output has no DC at any width and PWM does not move the baseline), times
    ``level``; a 50 % square peaks near 1.4 x ``level``, as the saw. ``width`` may move at
    audio rate: each crossing of phase and width is a band-limited step at its sub-sample
    position. Second output ``sync`` as in ``saw``."""
    if io[1] == io[2]:
        return
    out = bufs[io[1]]
    sync_out = bufs[io[2]]
    write_sync = io[2] != ROW_SINK
    pitch_increments(P, pr, st, _P_INC, ctx, s0, s1, nl, 1.0)
    if write_sync:  # literal flags: numba prunes the dead branch (a variable cost 50 ns)
        clear_rows(sync_out, s0, s1, nl)
        _pulse(bufs[io[0]], P[pr[3]], 1.0, P[pr[2]], out, sync_out, True, st, s0, s1, nl)
    else:
        _pulse(bufs[io[0]], P[pr[3]], 1.0, P[pr[2]], out, sync_out, False, st, s0, s1, nl)


# ---- sub-oscillator -------------------------------------------------------------------------

@lane_loop
def sub_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """One (``octave`` 0) or two (1) octaves below the pitch: a band-limited 50 % square
    (``shape`` 0, the pulse kernel's passes at width 0.5) or a sine (1). Its phase advances
    by exactly 1/2 or 1/4 of the increment an oscillator at the pitch gets (a power of two,
    so no rounding drift): it stays locked to an oscillator started with it."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    scale = 0.5 if P[pr[3], s0, 0] < 0.5 else 0.25
    pitch_increments(P, pr, st, _P_INC, ctx, s0, s1, nl, scale)
    if P[pr[4], s0, 0] < 0.5:
        _pulse(pitch, bufs[ROW_ONE], 0.5, level, out, out, False, st, s0, s1, nl)
        return
    last = st[_P_LAST]
    phase_pass(pitch, out, last, st[_P_INC], st[_P_DINC], s0, s1, nl, True)
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = level[i, v] * sin_2pi(out[i, v])
    for v in range(nl):  # a later switch to the square starts from clean corrections
        last[v] = wrapped_phase(last[v])
        st[_P_PREV, v] = last[v]
        st[_P_WPREV, v] = 0.5
    for j in range(N_TAPS):
        for v in range(nl):
            st[PULSE_FIXED + j, v] = 0.0


# ---- triangle -------------------------------------------------------------------------------
# State rows: phase of the last sample (unwrapped during pass A) and before the segment,
# increment per Hz and its slope, the first and the last sample with a corner this segment;
# then the correction buffer.
_T_LAST, _T_PREV, _T_INC, _T_DINC, _T_FIRST, _T_FINAL = range(6)
TRI_EVENTS = 6
TRI_FIXED = TRI_EVENTS + 2 * EVENT_SLOTS


@njit(cache=True, inline="always")
def _rising(t):
    """1.0 on the rising half of the sine-phase triangle (t < 1/4 or t >= 3/4), else 0.0."""
    return 1.0 if (t < 0.25) | (t >= 0.75) else 0.0


@lane_loop
def triangle_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited triangle in sine phase (0 at phase 0, +1 at 1/4, -1 at 3/4), peak
    ``level``: each corner (a slope change of -/+ 8 x increment per sample) is replaced by the
    minBLEP kernel's ramp response at its sub-sample position."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    last, prev, inc, dinc = st[_T_LAST], st[_T_PREV], st[_T_INC], st[_T_DINC]
    first, final = st[_T_FIRST], st[_T_FINAL]
    pitch_increments(P, pr, st, _T_INC, ctx, s0, s1, nl, 1.0)
    phase_pass(pitch, out, last, inc, dinc, s0, s1, nl, True)
    # A': the first and the last sample after a corner (a change between the halves).
    for v in range(nl):
        flag = abs(_rising(out[s0, v]) - _rising(prev[v]))
        first[v] = s0 * flag + _NONE * (1.0 - flag)
        final[v] = s0 * flag + (flag - 1.0)
    for i in range(s0 + 1, s1):
        fi = float(i)
        for v in range(nl):
            flag = abs(_rising(out[i, v]) - _rising(out[i - 1, v]))
            first[v] = min(first[v], fi * flag + _NONE * (1.0 - flag))
            final[v] = max(final[v], fi * flag + (flag - 1.0))
    # B: corners at phases 1/4 + m/2 (a peak for even m, a trough for odd m).
    for v in range(nl):
        if final[v] >= 0.0:
            a = int(first[v])
            tp = out[a - 1, v] if a > s0 else prev[v]
            ne = 0
            for i in range(a, int(final[v]) + 1):
                t = out[i, v]
                tu = t + 1.0 if t < tp else t
                m0 = np.floor(2.0 * tp - 0.5)
                m1 = np.floor(2.0 * tu - 0.5)
                if m1 > m0:
                    dt = tu - tp
                    m = m0 + 1.0
                    while m <= m1:
                        if ne > EVENT_SLOTS - 1:
                            flush_events(st, TRI_EVENTS, ne, TRI_FIXED, v, RAMP_TABLE)
                            ne = 0
                        x = min(max((0.25 + 0.5 * m - tp) / dt, 0.0), 1.0)
                        slope = -8.0 * dt if m % 2.0 == 0.0 else 8.0 * dt
                        ne = push_event(st, TRI_EVENTS, ne, v, i - s0, 1.0 - x, slope)
                        m += 1.0
                tp = t
            flush_events(st, TRI_EVENTS, ne, TRI_FIXED, v, RAMP_TABLE)
        last[v] = wrapped_phase(last[v])
        prev[v] = last[v]
    # C: naive triangle lowered by the kernel's delay times its slope, plus corrections.
    for i in range(s0, s1):
        k = i - s0
        corr = st[TRI_FIXED + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            u = out[i, v] + 0.25
            u -= 1.0 if u >= 1.0 else 0.0
            rising = 1.0 if u < 0.5 else -1.0
            tri = 1.0 - 4.0 * abs(u - 0.5)
            out[i, v] = level[i, v] * (tri - 4.0 * STEP_DELAY * dt * rising + corr[v])
    shift_corrections(st, TRI_FIXED, s1 - s0, nl)
