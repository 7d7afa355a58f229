"""Modulation and stereo kernels: LFO, slew limiter, equal-power pan, mid/side width. Contract:
``instrument.layout``; references in ``tests/naive_modulation.py``. The AR and curved ADSR
envelopes are in ``kernels.envelopes``.
"""

import math

import numpy as np
from numba import njit

from instrument.kernels.envelopes import NO_KEY
from instrument.kernels.noalias import lane_loop
from instrument.kernels.tempo import context_tempo_bpm, sync_beats
from instrument.layout import CTX_NOTE, CTX_SAMPLE_RATE, CTX_SONG_BEATS, CTX_TRANSPORT, MOD_STEP

# ---- approximations for the inner loops (no libm there, so the loops across voices vectorize)

# Odd polynomial in y for sin(2 pi y) on [-1/4, 1/4], least squares reweighted to near-minimax
# (fitted with numpy; 6 terms reach the error of the 8-term Taylor series in x = 2 pi y).
_S1, _S3, _S5 = 6.283185306487519, -41.341701929776434, 81.60520943137054
_S7, _S9, _S11 = -76.70366783679502, 41.999989947696974, -14.337025231428798


@njit(cache=True, inline="always")
def sin_turns(t):
    """sin(2 pi t) for t in [-0.5, 1) (t in turns): reduced to [-1/4, 1/4] by symmetry, then an
    odd polynomial of degree 11; absolute error below 2e-11 (tests measure it against numpy),
    sin_turns(0) = 0 and sin_turns(0.5) = 0 exactly."""
    y = t - (t >= 0.5) * 1.0
    y = min(y, 0.5 - y)
    y = max(y, -0.5 - y)
    y2 = y * y
    return y * (_S1 + y2 * (_S3 + y2 * (_S5 + y2 * (_S7 + y2 * (_S9 + y2 * _S11)))))


# ---- LFO ------------------------------------------------------------------------------------

SINE, TRIANGLE, SAW, SQUARE, SAMPLE_HOLD = 0, 1, 2, 3, 4
FREE, RETRIGGER = 0, 1
L_PHASE, L_STARTED, L_HELD, L_RNG, L_TPREV, L_TRANSPORT = 0, 1, 2, 3, 4, 5
L_POINTS = 6  # 1.0 when the output is read only at the modulation points (lfo_read_at_points)
LFO_STATE = 7
_MASK32 = 0xFFFFFFFF


def lfo_read_at_points(state) -> None:
    """Mark a fresh LFO state (one lane's column) as read only at the modulation points."""
    state[L_POINTS] = 1.0


@njit(cache=True, inline="always")
def xorshift32(x):
    """Marsaglia's xorshift32 (13, 17, 5) on a state in [1, 2**32)."""
    x ^= (x << 13) & _MASK32
    x ^= x >> 17
    x ^= (x << 5) & _MASK32
    return x


@njit(cache=True)
def lfo_seed(lane, note, mix):
    """A nonzero 32-bit seed from the lane, the note and another lane's generator state."""
    h = ((lane + 1) * 0x9E3779B1 + int(note) * 0x85EBCA77 + int(mix)) & _MASK32
    h ^= h >> 16
    h = (h * 0x045D9F3B) & _MASK32
    h ^= h >> 16
    return h if h != 0 else 0x2545F491


@njit(cache=True)
def _lfo_start_lanes(st, ctx, free, nl):
    """Initialise lanes that start from a fresh state. Free-running: a new voice joins the phase
    (and sample-and-hold value) of a voice already running, so every voice follows one LFO; with
    none running, or retriggered, it starts at phase 0 with its own generator seed."""
    for v in range(nl):
        if st[L_STARTED, v] != 0.0:
            continue
        src = -1
        for u in range(nl):
            if st[L_STARTED, u] != 0.0:
                src = u
                break
        if free and src >= 0:
            st[L_PHASE, v] = st[L_PHASE, src]
            st[L_HELD, v] = st[L_HELD, src]
            st[L_RNG, v] = st[L_RNG, src]
            st[L_TPREV, v] = st[L_TPREV, src]
        else:
            st[L_PHASE, v] = 0.0
            st[L_RNG, v] = float(lfo_seed(v, ctx[CTX_NOTE, v], st[L_RNG, src] if src >= 0 else 0.0))
            st[L_TPREV, v] = 2.0  # forces a sample-and-hold draw on the first sample
        st[L_TRANSPORT, v] = ctx[CTX_TRANSPORT, v]  # a downbeat before it started is not news
        st[L_STARTED, v] = 1.0


@njit(cache=True)
def _lfo_sync(st, ctx, beats, nl):
    """(rate multiplier, added rate in Hz) for the sample loops: (1, 0) free, (0, tempo / 60 /
    beats) synced. A synced lane that sees a new MIDI start/continue downbeat
    (``CTX_TRANSPORT``) takes its phase from the song position: a 1/1 LFO restarts with the bar."""
    for v in range(nl):
        seen = ctx[CTX_TRANSPORT, v]
        if st[L_TRANSPORT, v] != seen:
            st[L_TRANSPORT, v] = seen
            if beats > 0.0:
                pos = ctx[CTX_SONG_BEATS, v] / beats
                st[L_PHASE, v] = pos - math.floor(pos)
                st[L_TPREV, v] = 2.0
    if beats <= 0.0:
        return 1.0, 0.0
    return 0.0, context_tempo_bpm(ctx, 0) / (60.0 * beats)


@njit(cache=True, inline="always")
def _lfo_phase(p, trig, retrig, phase_deg, rate, inv_sr):
    """(phase t in turns at this sample, running phase for the next): a trigger in retrigger
    mode restarts the running phase at 0; t adds the phase offset."""
    p *= 1.0 - retrig * ((trig > 0.5) * 1.0)
    t = p + phase_deg * (1.0 / 360.0)
    t -= (t >= 1.0) * 1.0
    p += rate * inv_sr
    return t, p - (p >= 1.0) * 1.0


@njit(cache=True, inline="always")
def triangle_turns(t):
    """The triangle at t turns, t in [0, 1): rises through 0 at t = 0, peaks at 1/4."""
    u = t + 0.25
    return 1.0 - 4.0 * abs(u - (u >= 1.0) * 1.0 - 0.5)


@njit(cache=True, inline="always")
def saw_turns(t):
    """The saw at t turns: rises through 0 at t = 0, jumps from +1 to -1 at 1/2."""
    w = t + 0.5
    return 2.0 * (w - (w >= 1.0) * 1.0) - 1.0


@njit(cache=True, inline="always")
def square_turns(t):
    """The square at t turns: +1 for the first half, -1 for the second."""
    return 1.0 - 2.0 * ((t >= 0.5) * 1.0)


@njit(cache=True, inline="always")
def _scaled(depth, y, bi, uni):
    """An LFO's output for shape value y: -depth..depth (bi 1), or 0..depth (uni 1)."""
    return depth * (bi * y + uni * 0.5 * (y + 1.0))


@lane_loop
def lfo_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Low-frequency oscillator, -depth..depth (unipolar: 0..depth), at ``rate_hz``.

    Phase ``t`` in turns is the running phase plus ``phase_deg / 360``; shapes at ``t``: sine
    sin(2 pi t); triangle and saw rise through 0 at t = 0 like the sine (triangle peaks at 1/4,
    the saw jumps from +1 to -1 at 1/2); square +1 for the first half, -1 for the second;
    sample-and-hold a new uniform value in [-1, 1) (xorshift32 per lane) each time ``t`` wraps
    and on retrigger. Retrigger mode resets the running phase on a ``trigger`` sample above 0.5.
    The frequency is exact to the double-precision phase increment (tests: < 0.001% by FFT).
    ``sync`` other than Off replaces ``rate_hz``: one cycle per note value at the context's
    tempo (``kernels.tempo``: 1/4 at 120 BPM is 2 Hz), and a MIDI start restarts the cycle.
    Params: shape, rate_hz, depth, mode, phase_deg, unipolar, sync. State rows: L_*.
    """
    trig = bufs[io[0]]
    out = bufs[io[1]]
    shape = int(P[pr[0], s0, 0])
    rate = P[pr[1]]
    depth = P[pr[2]]
    retrig = 1.0 if int(P[pr[3], s0, 0]) == RETRIGGER else 0.0
    phase = P[pr[4]]
    uni = 1.0 if P[pr[5], s0, 0] >= 0.5 else 0.0
    inv_sr = 1.0 / ctx[CTX_SAMPLE_RATE, 0]
    _lfo_start_lanes(st, ctx, int(P[pr[3], s0, 0]) == FREE, nl)
    rmul, radd = _lfo_sync(st, ctx, sync_beats(P[pr[6], s0, 0]), nl)
    bi = 1.0 - uni
    if shape == SAMPLE_HOLD:
        # Branch-free: the generator steps every sample and the step is kept only on a draw
        # (a wrap of t, or a retrigger); 60 ns per voice per block against 170 ns for the
        # one-lane-at-a-time loop with a branch.
        for i in range(s0, s1):
            for v in range(nl):
                r = retrig * ((trig[i, v] > 0.5) * 1.0)
                t, st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig, phase[i, v],
                                               rate[i, v] * rmul + radd, inv_sr)
                draw = max(r, (t < st[L_TPREV, v] - 0.5) * 1.0)
                st[L_TPREV, v] = t
                x = np.int64(st[L_RNG, v])
                x += np.int64(draw) * (xorshift32(x) - x)
                st[L_RNG, v] = x
                held = st[L_HELD, v] + draw * (x * (2.0 / 4294967296.0) - 1.0 - st[L_HELD, v])
                st[L_HELD, v] = held
                out[i, v] = _scaled(depth[i, v], held, bi, uni)
        return
    if st[L_POINTS, 0] != 0.0:
        _lfo_points(trig, out, depth, rate, phase, st, shape, retrig, rmul, radd, bi, uni,
                    inv_sr, s0, s1, nl)
        return
    # One loop per shape: computing every shape and masking cost twice the time.
    if shape == SINE:
        for i in range(s0, s1):
            for v in range(nl):
                t, st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig, phase[i, v],
                                               rate[i, v] * rmul + radd, inv_sr)
                out[i, v] = _scaled(depth[i, v], sin_turns(t), bi, uni)
    elif shape == TRIANGLE:
        for i in range(s0, s1):
            for v in range(nl):
                t, st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig, phase[i, v],
                                               rate[i, v] * rmul + radd, inv_sr)
                out[i, v] = _scaled(depth[i, v], triangle_turns(t), bi, uni)
    elif shape == SAW:
        for i in range(s0, s1):
            for v in range(nl):
                t, st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig, phase[i, v],
                                               rate[i, v] * rmul + radd, inv_sr)
                out[i, v] = _scaled(depth[i, v], saw_turns(t), bi, uni)
    else:
        for i in range(s0, s1):
            for v in range(nl):
                t, st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig, phase[i, v],
                                               rate[i, v] * rmul + radd, inv_sr)
                out[i, v] = _scaled(depth[i, v], square_turns(t), bi, uni)


@njit(cache=True, error_model="numpy")
def _lfo_points(trig, out, depth, rate, phase, st, shape, retrig, rmul, radd, bi, uni, inv_sr,
                s0, s1, nl):
    """``lfo_kernel`` for an output read only at the modulation points (``layout.MOD_STEP``;
    not sample-and-hold, whose draws need every sample): the phase runs on every sample as
    there (its turns parked in ``out``), the shape only at the points, so those are the very
    numbers of the kernel's every-sample loops."""
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v], st[L_PHASE, v] = _lfo_phase(st[L_PHASE, v], trig[i, v], retrig,
                                                   phase[i, v], rate[i, v] * rmul + radd, inv_sr)
    i = s0
    while True:
        for v in range(nl):
            t = out[i, v]
            if shape == SINE:
                y = sin_turns(t)
            elif shape == TRIANGLE:
                y = triangle_turns(t)
            elif shape == SAW:
                y = saw_turns(t)
            else:
                y = square_turns(t)
            out[i, v] = _scaled(depth[i, v], y, bi, uni)
        if i >= s1 - 1:
            break
        i = min(i + MOD_STEP, s1 - 1)


# ---- slew limiter ---------------------------------------------------------------------------

LINEAR, EXPONENTIAL = 0, 1
S_Y, S_STARTED, S_COEFF, S_KEY_TIME, S_KEY_MODE = 0, 1, 2, 3, 4
SLEW_STATE = 5


def slew_reset(state):
    """Fresh slew state: not started (the first sample jumps to the input), no coefficient."""
    state[:] = 0.0
    state[S_KEY_TIME] = NO_KEY


@lane_loop
def slew_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Slew limiter. Linear: the output moves toward the input by at most 1/``time_ms`` units
    per ms (a full-scale step of 1.0 takes exactly time_ms). Exponential: a one-pole lag with
    time constant ``time_ms`` (a step reaches 63.2% after time_ms). 0 ms passes the input.
    A voice starting from a fresh state starts at its input (no slew from 0).
    Params: time_ms, mode (read at each segment start). State rows: S_*."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    mode = 1.0 if int(P[pr[1], s0, 0]) == EXPONENTIAL else 0.0
    for v in range(nl):
        if st[S_STARTED, v] == 0.0:
            st[S_Y, v] = x[s0, v]
            st[S_STARTED, v] = 1.0
        t = P[pr[0], s0, v]
        if t != st[S_KEY_TIME, v] or mode != st[S_KEY_MODE, v]:
            n = t * 0.001 * sr
            if mode == 0.0:
                st[S_COEFF, v] = 1.0 / n if n > 0.0 else math.inf
            else:
                st[S_COEFF, v] = -math.expm1(-1.0 / n) if n > 0.0 else 1.0
            st[S_KEY_TIME, v] = t
            st[S_KEY_MODE, v] = mode
    if mode == 0.0:
        for i in range(s0, s1):
            for v in range(nl):
                step = st[S_COEFF, v]
                y = st[S_Y, v]
                y += min(max(x[i, v] - y, -step), step)
                st[S_Y, v] = y
                out[i, v] = y
    else:
        for i in range(s0, s1):
            for v in range(nl):
                y = st[S_Y, v]
                y += (x[i, v] - y) * st[S_COEFF, v]
                st[S_Y, v] = y
                out[i, v] = y
    for v in range(nl):
        if abs(st[S_Y, v]) < 1e-30:
            st[S_Y, v] = 0.0


# ---- stereo ---------------------------------------------------------------------------------

@lane_loop
def pan_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Equal-power pan of ``in``: with p = clamp(pan + mod, -1, 1) and theta = (p + 1) pi / 4,
    left = in cos(theta), right = in sin(theta); left**2 + right**2 = in**2 on every sample,
    -3.01 dB each side at the centre. Per sample, so audio-rate modulation is exact."""
    x = bufs[io[0]]
    mod = bufs[io[1]]
    left = bufs[io[2]]
    right = bufs[io[3]]
    pan = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            p = min(max(pan[i, v] + mod[i, v], -1.0), 1.0)
            t = (p + 1.0) * 0.125  # theta in turns, 0..1/4
            left[i, v] = x[i, v] * sin_turns(t + 0.25)
            right[i, v] = x[i, v] * sin_turns(t)


@lane_loop
def width_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Mid/side width: mid = (l + r) / 2 kept, side = (l - r) / 2 times ``width`` (0 mono,
    1 unchanged, 2 doubled side); left = mid + side, right = mid - side."""
    left_in = bufs[io[0]]
    right_in = bufs[io[1]]
    left = bufs[io[2]]
    right = bufs[io[3]]
    width = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            a = left_in[i, v]
            b = right_in[i, v]
            mid = 0.5 * (a + b)
            side = 0.5 * (a - b) * width[i, v]
            left[i, v] = mid + side
            right[i, v] = mid - side
