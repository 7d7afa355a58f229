"""The minBLEP machinery of the band-limited oscillators, voice lanes: saw and hard-synced saw
(``kernels.osc_saw``), pulse, sub and triangle (``kernels.osc_pulse``), unison (and the
2-operator FM beside it, ``kernels.osc_stack``). Contract: ``instrument.layout``.

Band-limiting: every discontinuity of a naive waveform (a step in value, or a corner: a step in
slope) is replaced by the step (or ramp) response of one minimum-phase low-pass kernel, spread
over ``N_TAPS`` samples after it (Brandt, "Hard sync without aliasing", ICMC 2001). The kernel
is a Kaiser-windowed sinc (``N_TAPS`` samples, cutoff ``CUTOFF`` x sample rate, beta ``BETA``)
made minimum-phase through its real cepstrum, tabulated at ``OVERSAMPLE`` phases per sample and
interpolated linearly. Measured (tests/kernels/test_oscillators.py): the strongest alias of a saw
or a square between 1.5 and 2.5 kHz at 48 kHz is below -80 dB re the fundamental (the 2-point
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
segment, so ``floor(last)`` says whether it wrapped, and the free-running saw keeps it
unwrapped in its output row and finds each wrap by bisection); (B) per voice, only for
voices that had one and only over those samples: place each discontinuity at its sub-sample
position and add its residual into the voice's correction buffer (state rows from
``*_FIXED``, ``block + N_TAPS`` of them; what falls past the segment carries over to the
next); (C) across voices: output = level * (naive shape + correction), then the buffer
shifts. The residual loop runs a few times per block (at 2 kHz, 2.7 times per 64 samples);
the per-sample work stays SIMD.

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

from instrument.kernels.noalias import lane_loop

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


@lane_loop
def flush_events(st, ev, ne, corr, v, table):
    """Add the residuals of the ``ne`` noted discontinuities of voice v into its correction
    buffer. Kept out of the scan: with the 24-tap loop inside it, the scan ran twice as slow
    (106 against 52 ns per voice per block for a saw at 440 Hz)."""
    for e in range(ne):
        x = st[ev + 2 * e, v]
        k = int(x)
        _add_residual(st, corr + k, v, st[ev + 2 * e + 1, v], x - k, table)


@lane_loop
def phase_pass(pitch, out, last, inc, dinc, s0, s1, nl, wrapped):
    """Pass A: the phase of each sample into ``out``, in [0, 1) when ``wrapped`` (a literal
    at every call: numba compiles each case without the test), else unwrapped (rising
    through the segment, so a caller can find the wraps by bisection). ``last`` runs
    unwrapped through the segment (at most 1 + 64 x 0.5, so it keeps 47 bits of phase), its
    integer part counting the wraps."""
    for i in range(s0, s1):
        k = i - s0
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            u = last[v] + dt
            last[v] = u
            out[i, v] = u - np.floor(u) if wrapped else u


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
def shift_carried(st, row, n, nl):
    """``shift_corrections`` after a pass that cleared the ``n`` rows it read: only the
    carried part moves to the front, and the rows it leaves clear (24 + 24 rows per segment
    of 64 samples instead of 24 + 64)."""
    for j in range(N_TAPS):
        for v in range(nl):
            st[row + j, v] = st[row + n + j, v]
    for j in range(max(N_TAPS, n), N_TAPS + n):
        for v in range(nl):
            st[row + j, v] = 0.0


@njit(cache=True, error_model="numpy")
def shift_corrections(st, row, n, nl):
    """Drop the ``n`` rows just used; the carried part moves to the front, the rest clears."""
    for j in range(N_TAPS):
        for v in range(nl):
            st[row + j, v] = st[row + n + j, v]
    for j in range(N_TAPS, N_TAPS + n):
        for v in range(nl):
            st[row + j, v] = 0.0
