"""Unison (up to 7 detuned minBLEP saws, stereo spread) and 2-operator FM kernels; the
minBLEP machinery is ``instrument.kernels.minblep``."""

import math

from numba import njit

from instrument.kernels.approx import exp_approx, semitone_ratio, sin_2pi
from instrument.kernels.coefficients import pitch_increments
from instrument.kernels.minblep import (
    EVENT_SLOTS, MAX_INC, MIN_INC, N_TAPS, STEP_DELAY, STEP_TABLE, flush_events, phase_pass,
    push_event, shift_corrections, wrapped_phase,
)
from instrument.kernels.noalias import lane_loop
from instrument.layout import CTX_SAMPLE_RATE

# ---- unison -------------------------------------------------------------------------------
MAX_UNISON = 7
# Per voice of the stack u (rows u * _U_STRIDE + ...): phase of the last sample (unwrapped in
# pass A) and before the segment, increment per Hz at s0 and its slope, left and right gain at
# s0 and their slopes. Then one correction buffer per side.
_U_LAST, _U_PREV, _U_INC, _U_DINC, _U_GL, _U_DGL, _U_GR, _U_DGR = range(8)
_U_STRIDE = 8
UNISON_EVENTS = MAX_UNISON * _U_STRIDE  # left heights, then right heights
UNISON_FIXED = UNISON_EVENTS + 4 * EVENT_SLOTS
_LN2 = 0.6931471805599453


def unison_reset(state, sample_rate):
    """Start phases spread by the golden ratio, so the stack does not start as one loud saw."""
    state[:] = 0.0
    for u in range(MAX_UNISON):
        phase = (u * 0.6180339887498949) % 1.0
        state[u * _U_STRIDE + _U_LAST] = phase
        state[u * _U_STRIDE + _U_PREV] = phase


@njit(cache=True, inline="always")
def _unison_gains(n, u, stereo):
    """Equal-power pan of stack voice u of n (spread over -stereo..+stereo), with 1/sqrt(n):
    at stereo 0 both sides are the plain sum / sqrt(n)."""
    pan = stereo * (2.0 * u / (n - 1) - 1.0) if n > 1 else 0.0
    g = math.sqrt(2.0 / n)
    a = 0.125 * (1.0 + pan)  # the pan angle, in turns: 0 .. 1/4
    return g * sin_2pi(0.25 - a), g * sin_2pi(a)


@njit(cache=True, error_model="numpy")
def _unison_setup(P, pr, st, ctx, s0, s1, nl, n):
    """Per stack voice: increments at both segment ends (transpose, detune, and offsets spread
    evenly over -spread..+spread cents) and pan gains."""
    inv_sr = 1.0 / ctx[CTX_SAMPLE_RATE, 0]
    seg = s1 - s0
    inv_seg = 1.0 / seg if seg > 1 else 0.0
    half = 0.5 * (n - 1)
    for v in range(nl):
        base0 = semitone_ratio(P[pr[0], s0, v] + 0.01 * P[pr[1], s0, v]) * inv_sr
        base1 = semitone_ratio(P[pr[0], s1 - 1, v] + 0.01 * P[pr[1], s1 - 1, v]) * inv_sr
        step0 = P[pr[4], s0, v] / 1200.0 / half if n > 1 else 0.0  # octaves between voices
        step1 = P[pr[4], s1 - 1, v] / 1200.0 / half if n > 1 else 0.0
        for u in range(n):
            r = u * _U_STRIDE
            off = u - half
            i0 = base0 * exp_approx(_LN2 * off * step0)
            i1 = base1 * exp_approx(_LN2 * off * step1)
            st[r + _U_INC, v] = i0
            st[r + _U_DINC, v] = (i1 - i0) * inv_seg
            gl0, gr0 = _unison_gains(n, u, P[pr[5], s0, v])
            gl1, gr1 = _unison_gains(n, u, P[pr[5], s1 - 1, v])
            st[r + _U_GL, v] = gl0
            st[r + _U_DGL, v] = (gl1 - gl0) * inv_seg
            st[r + _U_GR, v] = gr0
            st[r + _U_DGR, v] = (gr1 - gr0) * inv_seg


@njit(cache=True, error_model="numpy")
def _unison_naive(pitch, phase, corr_row, gain, dgain, inc, dinc, st, s0, s1, nl):
    """Add one stack voice's naive ramp (lowered by the kernel's delay) times its gain ramp
    into a correction buffer."""
    for i in range(s0, s1):
        k = i - s0
        corr = st[corr_row + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            corr[v] += (gain[v] + dgain[v] * k) * (2.0 * phase[i, v] - 1.0 - 2.0 * STEP_DELAY * dt)


@lane_loop
def unison_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """``voices`` band-limited saws (the minBLEP above) detuned evenly over +-``spread_cents``
    and panned evenly over +-``stereo``, each scaled by 1/sqrt(voices) (equal power: the RMS
    level does not depend on the count). Outputs ``left`` and ``right``, equal at ``stereo``
    0. The whole stack's steps go into one correction buffer per side."""
    if io[1] == io[2]:
        return
    pitch = bufs[io[0]]
    left = bufs[io[1]]
    right = bufs[io[2]]  # also the phase scratch row of each stack voice
    level = P[pr[2]]
    n = min(max(int(P[pr[3], s0, 0]), 1), MAX_UNISON)
    _unison_setup(P, pr, st, ctx, s0, s1, nl, n)
    cl = UNISON_FIXED
    cr = UNISON_FIXED + (st.shape[0] - UNISON_FIXED) // 2
    # At stereo 0 both sides are equal: run one (a third less work per stack voice).
    mono = True
    for v in range(nl):
        if P[pr[5], s0, v] != 0.0 or P[pr[5], s1 - 1, v] != 0.0:
            mono = False
    for u in range(n):
        r = u * _U_STRIDE
        last, prev, inc, dinc = st[r + _U_LAST], st[r + _U_PREV], st[r + _U_INC], st[r + _U_DINC]
        gl, dgl, gr, dgr = st[r + _U_GL], st[r + _U_DGL], st[r + _U_GR], st[r + _U_DGR]
        phase_pass(pitch, right, last, inc, dinc, s0, s1, nl, True)
        _unison_naive(pitch, right, cl, gl, dgl, inc, dinc, st, s0, s1, nl)
        if not mono:
            _unison_naive(pitch, right, cr, gr, dgr, inc, dinc, st, s0, s1, nl)
        ev_l = UNISON_EVENTS
        ev_r = UNISON_EVENTS + 2 * EVENT_SLOTS
        for v in range(nl):
            if last[v] >= 1.0:
                tp = prev[v]
                ne = 0
                for i in range(s0, s1):
                    t = right[i, v]
                    if t < tp:
                        if ne > EVENT_SLOTS - 1:
                            flush_events(st, ev_l, ne, cl, v, STEP_TABLE)
                            if not mono:
                                flush_events(st, ev_r, ne, cr, v, STEP_TABLE)
                            ne = 0
                        k = i - s0
                        d = t / (t + 1.0 - tp)
                        push_event(st, ev_r, ne, v, k, d, -2.0 * (gr[v] + dgr[v] * k))
                        ne = push_event(st, ev_l, ne, v, k, d, -2.0 * (gl[v] + dgl[v] * k))
                    tp = t
                flush_events(st, ev_l, ne, cl, v, STEP_TABLE)
                if not mono:
                    flush_events(st, ev_r, ne, cr, v, STEP_TABLE)
            last[v] = wrapped_phase(last[v])
            prev[v] = last[v]
    for i in range(s0, s1):
        k = i - s0
        corr_l = st[cl + k]
        for v in range(nl):
            left[i, v] = level[i, v] * corr_l[v]
    if mono:
        for i in range(s0, s1):
            for v in range(nl):
                right[i, v] = left[i, v]
        shift_corrections(st, cl, s1 - s0, nl)
        for j in range(N_TAPS):  # the right buffer carries the same tail, for a later stereo
            for v in range(nl):
                st[cr + j, v] = st[cl + j, v]
        return
    for i in range(s0, s1):
        k = i - s0
        corr_r = st[cr + k]
        for v in range(nl):
            right[i, v] = level[i, v] * corr_r[v]
    shift_corrections(st, cl, s1 - s0, nl)
    shift_corrections(st, cr, s1 - s0, nl)


# ---- 2-operator FM --------------------------------------------------------------------------
_F_CAR, _F_MOD, _F_M1, _F_M2, _F_INC, _F_DINC = range(6)
FM2_STATE = 6
_INV_2PI = 0.15915494309189535


@lane_loop
def fm2_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Two sine operators (phase modulation, as in the DX7): out = level * sin(2 pi c +
    index * m), m = sin(2 pi c' + feedback * (m[-1] + m[-2]) / 2), where c advances at the
    pitch and c' at ``ratio`` times it. ``index`` and ``feedback`` are in radians, read per
    sample, so an envelope patched into ``index`` modulates it at audio rate. With ``index``
    0 it is a pure sine at the pitch."""
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    level = P[pr[2]]
    ratio = P[pr[3]]
    index = P[pr[4]]
    feedback = P[pr[5]]
    pitch_increments(P, pr, st, _F_INC, ctx, s0, s1, nl, 1.0)
    car, mod, m1, m2, inc, dinc = (st[_F_CAR], st[_F_MOD], st[_F_M1], st[_F_M2], st[_F_INC],
                                   st[_F_DINC])
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            m = sin_2pi(mod[v] + feedback[i, v] * 0.5 * (m1[v] + m2[v]) * _INV_2PI)
            out[i, v] = level[i, v] * sin_2pi(car[v] + index[i, v] * m * _INV_2PI)
            m2[v] = m1[v]
            m1[v] = m
            c = car[v] + dt
            car[v] = c - (1.0 if c >= 1.0 else 0.0)
            md = mod[v] + dt * ratio[i, v]
            mod[v] = md - math.floor(md)
    for v in range(nl):  # a non-finite pitch or feedback state starts again from silence
        if not (abs(car[v]) < 2.0 and abs(mod[v]) < 2.0 and abs(m1[v]) < 2.0
                and abs(m2[v]) < 2.0):
            car[v] = mod[v] = m1[v] = m2[v] = 0.0
