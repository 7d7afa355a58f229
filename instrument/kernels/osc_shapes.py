"""Band-limited oscillator shapes (minBLEP), sub-oscillator, unison and 2-operator FM; voice
lanes. Contract: ``instrument.modules.layout``.

Band-limiting: every discontinuity of a naive waveform (a step in value, or a corner: a step in
slope) is replaced by the step (or ramp) response of one minimum-phase low-pass kernel, spread
over ``N_TAPS`` samples after it (Brandt, "Hard sync without aliasing", ICMC 2001). The kernel
is a Kaiser-windowed sinc (``N_TAPS`` samples, cutoff ``CUTOFF`` x sample rate, beta ``BETA``)
made minimum-phase through its real cepstrum, tabulated at ``OVERSAMPLE`` phases per sample and
interpolated linearly. Measured (tests/test_osc_shapes.py): the strongest alias of a saw or a
square between 1.5 and 2.5 kHz at 48 kHz is below -80 dB re the fundamental (the 2-point
PolyBLEP ``saw``, measured the same way: about -30 dB); the kernel's response is -0.7 dB at
0.375 x sample rate (18 kHz at 48 kHz) and -64 dB at Nyquist. Its step overshoots by 20 % of
the jump (a minimum-phase low-pass rings more than the linear-phase one, 9 %, which would need
12 samples of look-ahead and could not follow an external sync), so a saw or square of level
1 peaks near 1.4.

Chosen by sweeping taps, cutoff and beta (saw and square, fundamentals 1.5-2.5 kHz): 16 taps
reach -74 dB only with the passband pulled down to -3 dB at 18 kHz; 24 taps at cutoff 0.42 and
beta 6 give -82 dB and a flat band to 18 kHz. A larger beta widens the transition band and lets
the first harmonics above Nyquist through (beta 8: -63 dB). 64 phases are as good as 256 here.

A minimum-phase step lags the naive step by its centroid ``STEP_DELAY`` (samples); a linear
segment of slope ``s`` per sample filtered by the same kernel is the segment minus
``s * STEP_DELAY``, so the kernels subtract that from the naive ramp parts (otherwise a saw
would carry a DC offset of ``2 * STEP_DELAY * f0 / sr``). Every band-limited output below is
exactly the naive waveform filtered by that one kernel, up to the table interpolation.

How the kernels run, and why: in passes per segment. (A) across voices (SIMD): advance the
phase and write it into the output row; (A') across voices: note, per voice, the first and the
last sample with a discontinuity (the saws need not: their phase runs unwrapped through the
segment, so ``floor(last)`` says whether it wrapped); (B) per voice, only for voices that had
one and only over those samples: place each discontinuity at its sub-sample position and add
its residual into the voice's correction buffer (state rows from ``*_FIXED``, ``block +
N_TAPS`` of them; what falls past the segment carries over to the next); (C) across voices:
output = level * (naive shape + correction), then the buffer shifts. The residual loop runs a
few times per block (at 2 kHz, 2.7 times per 64 samples); the per-sample work stays SIMD.

Measured on the way (ns per voice per 64-sample block, 16 voices): LLVM vectorizes a lane loop
only while it stores to at most two arrays, since each store needs a run-time overlap check
against every other array: counting wraps inside pass A took it from 27 to 72 ns, a third store
in the unison's phase loop from 50 to 133 ns. A helper taking arrays, inlined with
``inline="always"`` into a lane loop, stopped its vectorization too (25 -> 128 ns), and so did
``x = i if flag else x`` (a conditional store): the loops below use min/max arithmetic.
Cost now, kernels alone at the poly16 bench's pitches (65 Hz - 1 kHz): saw_hq 105, pulse 135,
triangle 118, sync_saw 145, sub 112 (sine 63), unison of 5 in mono 512, fm2 145 (the PolyBLEP
``saw``: 38). Through the engine add about 35 (parameter rows, summing).
"""

import math

import numpy as np
from numba import njit

from instrument.kernels.approx import exp_approx
from instrument.modules.layout import CTX_SAMPLE_RATE, ROW_ONE, ROW_SINK, ROW_ZERO

N_TAPS = 24
OVERSAMPLE = 64
CUTOFF = 0.42
BETA = 6.0
MAX_INC = 0.5  # phase increment per sample at most (the fundamental at Nyquist)
MIN_INC = 1e-9


def minblep_tables(n_taps=N_TAPS, oversample=OVERSAMPLE, cutoff=CUTOFF, beta=BETA,
                   nfft=1 << 16):
    """(step residual table, ramp residual table, step delay) of the minimum-phase kernel.

    ``step[m, j]`` is r(j + m / oversample) = (band-limited unit step - unit step) at that
    time after the step, in samples, for m in 0..oversample (row ``oversample`` is the next
    tap's row 0; r(n_taps) = 0). ``ramp[m, j]`` is R(tau) = delay + integral of r from 0 to
    tau: the correction for a unit change of slope per sample, relative to the naive corner
    lowered by ``delay`` times the slope. Both end at exactly 0 after ``n_taps`` samples.
    """
    length = n_taps * oversample
    t = (np.arange(length + 1) - length / 2) / oversample
    proto = 2.0 * cutoff * np.sinc(2.0 * cutoff * t) * np.kaiser(length + 1, beta)
    # Minimum phase from the real cepstrum: fold the anti-causal part onto the causal one.
    cep = np.fft.ifft(np.log(np.maximum(np.abs(np.fft.fft(proto, nfft)), 1e-12))).real
    fold = np.zeros(nfft)
    fold[0] = 1.0
    fold[1:nfft // 2] = 2.0
    fold[nfft // 2] = 1.0
    h = np.fft.ifft(np.exp(np.fft.fft(cep * fold))).real[:length]
    step = np.concatenate(([0.0], np.cumsum(h)))
    step /= step[-1]
    r = step - 1.0  # r[m] at tau = m / oversample; r[0] = -1, r[length] = 0
    # R by the trapezoid rule on the grid, which is the exact integral of the linear
    # interpolation the kernels use.
    integral = np.concatenate(([0.0], np.cumsum(0.5 * (r[1:] + r[:-1])))) / oversample
    delay = -integral[-1]
    ramp = delay + integral

    def tabulate(x):
        tab = np.zeros((oversample + 1, n_taps))
        for m in range(oversample + 1):
            idx = m + oversample * np.arange(n_taps)
            tab[m] = x[np.minimum(idx, length)]
        tab[oversample, n_taps - 1] = 0.0
        return tab

    return tabulate(r), tabulate(ramp), float(delay)


STEP_TABLE, RAMP_TABLE, STEP_DELAY = minblep_tables()


def state_rows(fixed_rows: int, block_size: int, n_buffers: int = 1) -> int:
    """State size of a minBLEP kernel: its fixed rows, then ``n_buffers`` correction buffers
    of ``block_size + N_TAPS`` rows each."""
    return fixed_rows + n_buffers * (int(block_size) + N_TAPS)


# ---- shared pieces ------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _add_residual(st, row, v, height, d, table):
    """Add ``height`` times the residual of a discontinuity ``d`` samples (0 <= d <= 1) before
    sample ``row`` (a correction-buffer row) to the ``N_TAPS`` rows from there. A NaN ``d``
    (from a NaN pitch) counts as 0: the table index must stay in bounds whatever comes in."""
    x = d * OVERSAMPLE
    if not x > 0.0:
        x = 0.0
    if x > OVERSAMPLE:
        x = float(OVERSAMPLE)
    m = min(int(x), OVERSAMPLE - 1)
    f = x - m
    for j in range(N_TAPS):
        a = table[m, j]
        st[row + j, v] += height * (a + f * (table[m + 1, j] - a))


EVENT_SLOTS = 8  # discontinuities a voice collects before their residuals are added
_D_MAX = 1.0 - 1e-12  # an event's position k + d must decode back to k


@njit(cache=True, inline="always")
def _push(st, ev, ne, v, k, d, height):
    """Note a discontinuity ``d`` samples before the segment's sample ``k`` (a NaN ``d``
    counts as 0) in event slot ``ne`` of voice v; returns the next free slot."""
    d = d if d > 0.0 else 0.0
    st[ev + 2 * ne, v] = k + min(d, _D_MAX)
    st[ev + 2 * ne + 1, v] = height
    return ne + 1


@njit(cache=True, error_model="numpy")
def _flush(st, ev, ne, corr, v, table):
    """Add the residuals of the ``ne`` noted discontinuities of voice v into its correction
    buffer. Kept out of the scan: with the 24-tap loop inside it, the scan ran twice as slow
    (106 against 52 ns per voice per block for a saw at 440 Hz)."""
    for e in range(ne):
        x = st[ev + 2 * e, v]
        k = int(x)
        _add_residual(st, corr + k, v, st[ev + 2 * e + 1, v], x - k, table)


@njit(cache=True, error_model="numpy")
def pitch_increments(P, pr, st, row, ctx, s0, s1, nl, scale):
    """Phase increment per Hz of pitch at s0 (``st[row]``) and its change per sample
    (``st[row + 1]``) from transpose (``P[pr[0]]``) and detune (``P[pr[1]]``), times
    ``scale``: two exp2 per voice per segment, exact when the parameters are steady."""
    inv_sr = scale / ctx[CTX_SAMPLE_RATE, 0]
    n = s1 - s0
    for v in range(nl):
        r0 = 2.0 ** ((P[pr[0], s0, v] + 0.01 * P[pr[1], s0, v]) / 12.0)
        r1 = 2.0 ** ((P[pr[0], s1 - 1, v] + 0.01 * P[pr[1], s1 - 1, v]) / 12.0)
        st[row, v] = r0 * inv_sr
        st[row + 1, v] = (r1 - r0) * inv_sr / n if n > 1 else 0.0


@njit(cache=True, inline="always")
def sin_2pi(x):
    """sin(2 pi x) for any finite x without libm: the phase folded into a triangle z in
    [-1, 1] (sin(2 pi x) = sin(pi/2 z) exactly), then a degree-15 odd Taylor polynomial;
    absolute error below 1e-11."""
    u = x + 0.25
    u = u - math.floor(u)
    z = 1.0 - 4.0 * abs(u - 0.5)
    a = 1.5707963267948966 * z
    a2 = a * a
    return a * (1.0 + a2 * (-1.0 / 6 + a2 * (1.0 / 120 + a2 * (-1.0 / 5040 + a2 * (
        1.0 / 362880 + a2 * (-1.0 / 39916800 + a2 * (1.0 / 6227020800 + a2 * (
            -1.0 / 1307674368000))))))))


@njit(cache=True, error_model="numpy")
def _phase_pass(pitch, out, last, inc, dinc, s0, s1, nl):
    """Pass A: the phase of each sample into ``out``. ``last`` runs unwrapped through the
    segment (at most 1 + 64 x 0.5, so it keeps 47 bits of phase), its integer part counting
    the wraps."""
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            u = last[v] + dt
            last[v] = u
            out[i, v] = u - math.floor(u)


@njit(cache=True, inline="always")
def _wrapped_phase(u):
    """``u`` less its whole cycles, in [0, 1); a non-finite phase (a NaN or infinite pitch
    came in) starts again from 0."""
    return u - math.floor(u) if abs(u) < 1e15 else 0.0


@njit(cache=True, error_model="numpy")
def _clear(row, s0, s1, nl):
    for i in range(s0, s1):
        for v in range(nl):
            row[i, v] = 0.0


@njit(cache=True, error_model="numpy")
def _shift_corrections(st, row, n, nl):
    """Drop the ``n`` rows just used; the carried part moves to the front, the rest clears."""
    for j in range(N_TAPS):
        for v in range(nl):
            st[row + j, v] = st[row + n + j, v]
    for j in range(N_TAPS, N_TAPS + n):
        for v in range(nl):
            st[row + j, v] = 0.0


# ---- saw and hard-synced saw ---------------------------------------------------------------
# State rows: phase of the last sample (unwrapped during pass A), the phase before the segment
# (pass B), increment per Hz at s0 and its slope, the sync input before the segment; then the
# correction buffer.
_S_LAST, _S_PREV, _S_INC, _S_DINC, _S_SYNC_PREV = range(5)
SAW_EVENTS = 5  # EVENT_SLOTS x (position, height)
SAW_FIXED = SAW_EVENTS + 2 * EVENT_SLOTS


@njit(cache=True, error_model="numpy")
def _sync_phase_pass(pitch, ratio, sync, out, st, s0, s1, nl):
    """Pass A of the synced saw: like ``_phase_pass`` at ``ratio`` times the pitch, and a
    rising edge of ``sync`` (above 0 after at most 0) restarts the phase where it is d = 1 -
    min(sync, 1) samples after the restart, adding 1 to the wrap count."""
    last, inc, dinc, sprev = st[_S_LAST], st[_S_INC], st[_S_DINC], st[_S_SYNC_PREV]
    for i in range(s0, s1):
        for v in range(nl):  # the effective pitch first: fewer arrays in the next loop
            out[i, v] = pitch[i, v] * ratio[i, v]
    for i in range(s0, s1):
        k = i - s0
        before = sync[i - 1] if i > s0 else sprev
        for v in range(nl):
            dt = min(max(out[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            s = sync[i, v]
            u = last[v] + dt
            restart = math.floor(last[v]) + 1.0 + dt * (1.0 - min(s, 1.0))
            u = restart if (s > 0.0) & (before[v] <= 0.0) else u
            last[v] = u
            out[i, v] = u - math.floor(u)


@njit(cache=True, error_model="numpy")
def _saw_pass_b(pitch, ratio, sync, sync_out, write_sync, out, st, s0, s1, nl):
    """Pass B: residuals of the wraps (a step of -2, d = t / dt samples before the sample) and
    of the restarts (a step of -2 q from the phase q a restart interrupted), per voice."""
    last, prev, inc, dinc = st[_S_LAST], st[_S_PREV], st[_S_INC], st[_S_DINC]
    sprev = st[_S_SYNC_PREV]
    ev = SAW_EVENTS
    for v in range(nl):
        if last[v] >= 1.0:
            tp = prev[v]
            sp = sprev[v]
            ne = 0
            for i in range(s0, s1):
                t = out[i, v]
                s = sync[i, v]
                if s > 0.0 and sp <= 0.0:
                    if ne > EVENT_SLOTS - 2:
                        _flush(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    k = i - s0
                    dt = min(max(pitch[i, v] * ratio[i, v] * (inc[v] + dinc[v] * k), MIN_INC),
                             MAX_INC)
                    d = 1.0 - min(s, 1.0)
                    q = tp + dt * (1.0 - d)
                    if q >= 1.0:  # wrapped on its own before the restart
                        ne = _push(st, ev, ne, v, k, 1.0 - (1.0 - tp) / dt, -2.0)
                        q -= 1.0
                    ne = _push(st, ev, ne, v, k, d, -2.0 * q)
                elif t < tp:
                    if ne > EVENT_SLOTS - 1:
                        _flush(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    d = t / (t + 1.0 - tp)
                    ne = _push(st, ev, ne, v, i - s0, d, -2.0)
                    if write_sync:
                        sync_out[i, v] = 1.0 - d
                tp = t
                sp = s
            _flush(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
        last[v] = _wrapped_phase(last[v])
        prev[v] = last[v]
        sprev[v] = sync[s1 - 1, v]


@njit(cache=True, error_model="numpy")
def _saw_pass_c(pitch, level, out, st, s0, s1, nl):
    """Pass C: level * (naive ramp lowered by the kernel's delay + corrections). ``pitch``
    times the increment rows is the phase increment (the caller's effective pitch)."""
    inc, dinc = st[_S_INC], st[_S_DINC]
    for i in range(s0, s1):
        k = i - s0
        corr = st[SAW_FIXED + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            out[i, v] = level[i, v] * (2.0 * out[i, v] - 1.0 - 2.0 * STEP_DELAY * dt + corr[v])
    _shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def saw_hq_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Rising sawtooth from -level to +level, band-limited by the minBLEP above; its peaks
    reach about 1.4 x ``level`` below 1 kHz (the minimum-phase step overshoots by 20 % of the
    jump of 2). Second output ``sync``: 1 - d on a sample whose phase wrapped d samples
    (0 <= d < 1) before it, else 0 (to hard-sync ``sync_saw``)."""
    if io[1] == io[2]:  # both outputs unread (the sink row): nothing to do
        return
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    sync_out = bufs[io[2]]
    write_sync = io[2] != ROW_SINK
    pitch_increments(P, pr, st, _S_INC, ctx, s0, s1, nl, 1.0)
    if write_sync:
        _clear(sync_out, s0, s1, nl)
    _phase_pass(pitch, out, st[_S_LAST], st[_S_INC], st[_S_DINC], s0, s1, nl)
    if write_sync:  # literal flags: numba prunes the dead branch (a variable cost 50 ns)
        _saw_pass_b(pitch, bufs[ROW_ONE], bufs[ROW_ZERO], sync_out, True, out, st, s0, s1, nl)
    else:
        _saw_pass_b(pitch, bufs[ROW_ONE], bufs[ROW_ZERO], sync_out, False, out, st, s0, s1, nl)
    _saw_pass_c(pitch, P[pr[2]], out, st, s0, s1, nl)


@njit(cache=True, error_model="numpy")
def _scaled_pitch_pass_c(pitch, ratio, level, out, st, s0, s1, nl):
    """Pass C of the synced saw (``_saw_pass_c`` at ``ratio`` times the pitch)."""
    inc, dinc = st[_S_INC], st[_S_DINC]
    for i in range(s0, s1):
        k = i - s0
        corr = st[SAW_FIXED + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * ratio[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            out[i, v] = level[i, v] * (2.0 * out[i, v] - 1.0 - 2.0 * STEP_DELAY * dt + corr[v])
    _shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def sync_saw_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited saw at ``ratio`` times the pitch whose phase restarts on each rising edge
    of ``sync`` (hard sync); a ``sync`` value s in (0, 1] places the restart 1 - s samples
    before the sample (the sync output of ``saw_hq`` and ``pulse``), so the restart is a
    band-limited step at its exact position, like every wrap."""
    pitch = bufs[io[0]]
    sync = bufs[io[1]]
    out = bufs[io[2]]
    ratio = P[pr[3]]
    pitch_increments(P, pr, st, _S_INC, ctx, s0, s1, nl, 1.0)
    _sync_phase_pass(pitch, ratio, sync, out, st, s0, s1, nl)
    _saw_pass_b(pitch, ratio, sync, out, False, out, st, s0, s1, nl)
    _scaled_pitch_pass_c(pitch, ratio, P[pr[2]], out, st, s0, s1, nl)


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
                        _flush(st, ev, ne, row0, v, STEP_TABLE)
                        ne = 0
                    k = i - s0
                    if wrapped:
                        xw = min((1.0 - tp) / (t + 1.0 - tp), 1.0)
                        if high_before:  # fell before the wrap
                            x = min(_cross(tp - wp, t + 1.0 - w), xw)
                            ne = _push(st, ev, ne, v, k, 1.0 - x, -2.0)
                        ne = _push(st, ev, ne, v, k, 1.0 - xw, 2.0)
                        if write_sync:
                            sync_out[i, v] = xw
                        if not high_now:  # fell after it
                            x = max(_cross(tp - 1.0 - wp, t - w), xw)
                            ne = _push(st, ev, ne, v, k, 1.0 - x, -2.0)
                    else:
                        x = _cross(tp - wp, t - w)
                        ne = _push(st, ev, ne, v, k, 1.0 - x, 2.0 if high_now else -2.0)
                tp = t
                wp = w
            _flush(st, ev, ne, row0, v, STEP_TABLE)
        last[v] = _wrapped_phase(last[v])
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
    _shift_corrections(st, row0, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def _pulse(pitch, width, wscale, level, out, sync_out, write_sync, st, s0, s1, nl):
    _phase_pass(pitch, out, st[_P_LAST], st[_P_INC], st[_P_DINC], s0, s1, nl)
    _pulse_find(width, wscale, out, st, s0, s1, nl)
    _pulse_pass_b(width, wscale, sync_out, write_sync, out, st, PULSE_FIXED, s0, s1, nl)
    _pulse_pass_c(width, wscale, level, out, st, PULSE_FIXED, s0, s1, nl)


@njit(cache=True, error_model="numpy")
def pulse_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited pulse, +1 for the first ``width`` of each cycle and -1 after it, minus its
    mean (so the output has no DC at any width and PWM does not move the baseline), times
    ``level``; a 50 % square peaks near 1.4 x ``level``, as the saw. ``width`` may move at
    audio rate: each crossing of phase and width is a band-limited step at its sub-sample
    position. Second output ``sync`` as in ``saw_hq``."""
    if io[1] == io[2]:
        return
    out = bufs[io[1]]
    sync_out = bufs[io[2]]
    write_sync = io[2] != ROW_SINK
    pitch_increments(P, pr, st, _P_INC, ctx, s0, s1, nl, 1.0)
    if write_sync:  # literal flags: numba prunes the dead branch (a variable cost 50 ns)
        _clear(sync_out, s0, s1, nl)
        _pulse(bufs[io[0]], P[pr[3]], 1.0, P[pr[2]], out, sync_out, True, st, s0, s1, nl)
    else:
        _pulse(bufs[io[0]], P[pr[3]], 1.0, P[pr[2]], out, sync_out, False, st, s0, s1, nl)


# ---- sub-oscillator -------------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
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
    _phase_pass(pitch, out, last, st[_P_INC], st[_P_DINC], s0, s1, nl)
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = level[i, v] * sin_2pi(out[i, v])
    for v in range(nl):  # a later switch to the square starts from clean corrections
        last[v] = _wrapped_phase(last[v])
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


@njit(cache=True, error_model="numpy")
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
    _phase_pass(pitch, out, last, inc, dinc, s0, s1, nl)
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
                m0 = math.floor(2.0 * tp - 0.5)
                m1 = math.floor(2.0 * tu - 0.5)
                if m1 > m0:
                    dt = tu - tp
                    m = m0 + 1.0
                    while m <= m1:
                        if ne > EVENT_SLOTS - 1:
                            _flush(st, TRI_EVENTS, ne, TRI_FIXED, v, RAMP_TABLE)
                            ne = 0
                        x = min(max((0.25 + 0.5 * m - tp) / dt, 0.0), 1.0)
                        slope = -8.0 * dt if m % 2.0 == 0.0 else 8.0 * dt
                        ne = _push(st, TRI_EVENTS, ne, v, i - s0, 1.0 - x, slope)
                        m += 1.0
                tp = t
            _flush(st, TRI_EVENTS, ne, TRI_FIXED, v, RAMP_TABLE)
        last[v] = _wrapped_phase(last[v])
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
    _shift_corrections(st, TRI_FIXED, s1 - s0, nl)


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
        base0 = 2.0 ** ((P[pr[0], s0, v] + 0.01 * P[pr[1], s0, v]) / 12.0) * inv_sr
        base1 = 2.0 ** ((P[pr[0], s1 - 1, v] + 0.01 * P[pr[1], s1 - 1, v]) / 12.0) * inv_sr
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


@njit(cache=True, error_model="numpy")
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
        _phase_pass(pitch, right, last, inc, dinc, s0, s1, nl)
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
                            _flush(st, ev_l, ne, cl, v, STEP_TABLE)
                            if not mono:
                                _flush(st, ev_r, ne, cr, v, STEP_TABLE)
                            ne = 0
                        k = i - s0
                        d = t / (t + 1.0 - tp)
                        _push(st, ev_r, ne, v, k, d, -2.0 * (gr[v] + dgr[v] * k))
                        ne = _push(st, ev_l, ne, v, k, d, -2.0 * (gl[v] + dgl[v] * k))
                    tp = t
                _flush(st, ev_l, ne, cl, v, STEP_TABLE)
                if not mono:
                    _flush(st, ev_r, ne, cr, v, STEP_TABLE)
            last[v] = _wrapped_phase(last[v])
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
        _shift_corrections(st, cl, s1 - s0, nl)
        for j in range(N_TAPS):  # the right buffer carries the same tail, for a later stereo
            for v in range(nl):
                st[cr + j, v] = st[cl + j, v]
        return
    for i in range(s0, s1):
        k = i - s0
        corr_r = st[cr + k]
        for v in range(nl):
            right[i, v] = level[i, v] * corr_r[v]
    _shift_corrections(st, cl, s1 - s0, nl)
    _shift_corrections(st, cr, s1 - s0, nl)


# ---- 2-operator FM --------------------------------------------------------------------------
_F_CAR, _F_MOD, _F_M1, _F_M2, _F_INC, _F_DINC = range(6)
FM2_STATE = 6
_INV_2PI = 0.15915494309189535


@njit(cache=True, error_model="numpy")
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
