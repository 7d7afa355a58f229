"""Band-limited oscillators by minBLEP: the machinery, the saw and the hard-synced saw; voice
lanes. Pulse, sub and triangle: ``kernels.osc_pulse``; unison and 2-operator FM:
``kernels.osc_stack``. Contract: ``instrument.modules.layout``.

Band-limiting: every discontinuity of a naive waveform (a step in value, or a corner: a step in
slope) is replaced by the step (or ramp) response of one minimum-phase low-pass kernel, spread
over ``N_TAPS`` samples after it (Brandt, "Hard sync without aliasing", ICMC 2001). The kernel
is a Kaiser-windowed sinc (``N_TAPS`` samples, cutoff ``CUTOFF`` x sample rate, beta ``BETA``)
made minimum-phase through its real cepstrum, tabulated at ``OVERSAMPLE`` phases per sample and
interpolated linearly. Measured (tests/test_osc_shapes.py): the strongest alias of a saw or a
square between 1.5 and 2.5 kHz at 48 kHz is below -80 dB re the fundamental (the 2-point
PolyBLEP ``saw_fast``, measured the same way: about -30 dB); the kernel's response is -0.7 dB at
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
Cost now, kernels alone at the poly16 bench's pitches (65 Hz - 1 kHz): saw 105, pulse 135,
triangle 118, sync_saw 145, sub 112 (sine 63), unison of 5 in mono 512, fm2 145 (the PolyBLEP
``saw_fast``: 38). Through the engine add about 35 (parameter rows, summing).
"""

import math

import numpy as np
from numba import njit

from instrument.kernels.coefficients import pitch_increments
from instrument.modules.layout import ROW_ONE, ROW_SINK, ROW_ZERO

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
def push_event(st, ev, ne, v, k, d, height):
    """Note a discontinuity ``d`` samples before the segment's sample ``k`` (a NaN ``d``
    counts as 0) in event slot ``ne`` of voice v; returns the next free slot."""
    d = d if d > 0.0 else 0.0
    st[ev + 2 * ne, v] = k + min(d, _D_MAX)
    st[ev + 2 * ne + 1, v] = height
    return ne + 1


@njit(cache=True, error_model="numpy")
def flush_events(st, ev, ne, corr, v, table):
    """Add the residuals of the ``ne`` noted discontinuities of voice v into its correction
    buffer. Kept out of the scan: with the 24-tap loop inside it, the scan ran twice as slow
    (106 against 52 ns per voice per block for a saw at 440 Hz)."""
    for e in range(ne):
        x = st[ev + 2 * e, v]
        k = int(x)
        _add_residual(st, corr + k, v, st[ev + 2 * e + 1, v], x - k, table)


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
def phase_pass(pitch, out, last, inc, dinc, s0, s1, nl):
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
def wrapped_phase(u):
    """``u`` less its whole cycles, in [0, 1); a non-finite phase (a NaN or infinite pitch
    came in) starts again from 0."""
    return u - math.floor(u) if abs(u) < 1e15 else 0.0


@njit(cache=True, error_model="numpy")
def clear_rows(row, s0, s1, nl):
    for i in range(s0, s1):
        for v in range(nl):
            row[i, v] = 0.0


@njit(cache=True, error_model="numpy")
def shift_corrections(st, row, n, nl):
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
    """Pass A of the synced saw: like ``phase_pass`` at ``ratio`` times the pitch, and a
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
                        flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    k = i - s0
                    dt = min(max(pitch[i, v] * ratio[i, v] * (inc[v] + dinc[v] * k), MIN_INC),
                             MAX_INC)
                    d = 1.0 - min(s, 1.0)
                    q = tp + dt * (1.0 - d)
                    if q >= 1.0:  # wrapped on its own before the restart
                        ne = push_event(st, ev, ne, v, k, 1.0 - (1.0 - tp) / dt, -2.0)
                        q -= 1.0
                    ne = push_event(st, ev, ne, v, k, d, -2.0 * q)
                elif t < tp:
                    if ne > EVENT_SLOTS - 1:
                        flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    d = t / (t + 1.0 - tp)
                    ne = push_event(st, ev, ne, v, i - s0, d, -2.0)
                    if write_sync:
                        sync_out[i, v] = 1.0 - d
                tp = t
                sp = s
            flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
        last[v] = wrapped_phase(last[v])
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
    shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def saw_minblep_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
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
        clear_rows(sync_out, s0, s1, nl)
    phase_pass(pitch, out, st[_S_LAST], st[_S_INC], st[_S_DINC], s0, s1, nl)
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
    shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@njit(cache=True, error_model="numpy")
def sync_saw_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited saw at ``ratio`` times the pitch whose phase restarts on each rising edge
    of ``sync`` (hard sync); a ``sync`` value s in (0, 1] places the restart 1 - s samples
    before the sample (the sync output of ``saw`` and ``pulse``), so the restart is a
    band-limited step at its exact position, like every wrap."""
    pitch = bufs[io[0]]
    sync = bufs[io[1]]
    out = bufs[io[2]]
    ratio = P[pr[3]]
    pitch_increments(P, pr, st, _S_INC, ctx, s0, s1, nl, 1.0)
    _sync_phase_pass(pitch, ratio, sync, out, st, s0, s1, nl)
    _saw_pass_b(pitch, ratio, sync, out, False, out, st, s0, s1, nl)
    _scaled_pitch_pass_c(pitch, ratio, P[pr[2]], out, st, s0, s1, nl)
