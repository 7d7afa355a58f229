"""Coefficient ramps: how kernels follow moving parameters without computing exp, tan or pow
at every sample.

Two shapes, both exact whenever the parameter rests:

* per segment (``ramp_step``): a gain or coefficient taken at a segment's first and last
  sample, linear between (delay and reverb mixes, drive gains, a filter's damping, the VCA's
  velocity factor);
* per chunk (``chunk_ramp``): a filter's coefficients, exact every ``COEFF_STEP`` samples and
  ramped linearly in between: one tan per 8 samples instead of one per sample, no division per
  sample. The recursive loop computes each sample's coefficients from the chunk's start and
  step (``start + step * (j + 1)``), both read-only there, and ``chunk_ramp`` moves the start
  on after the chunk: LLVM vectorizes that loop across voices. (Writing the whole ramp to
  state rows first and reading it back cost twice as much, 1.33 against 0.62 us per 64
  samples of 16 voices for the svf's three coefficients; advancing the ramp in the loop, with
  the coefficients stored every sample, 5 times as much.)

The oscillators' phase increment follows transpose and detune per segment too
(``pitch_increments``).
"""

import math

from numba import njit

from instrument.kernels.approx import semitone_ratio
from instrument.kernels.noalias import lane_loop
from instrument.layout import CTX_PITCH_STEADY, CTX_SAMPLE_RATE, ROW_PITCH

HALF_PI = 0.5 * math.pi
TWO_PI = 2.0 * math.pi
COEFF_STEP = 8  # samples between exact filter coefficients


@njit(cache=True, inline="always")
def ramp_step(x0, x1, n):
    """Per-sample step from x0 (first sample) to x1 (last sample) over n samples."""
    return (x1 - x0) / (n - 1) if n > 1 else 0.0


@njit(cache=True, inline="always")
def chunk_ramp(st, cur, step, width, n, nl):
    """After a chunk of ``n`` samples (n <= COEFF_STEP) whose sample j ran with the
    coefficients ``st[cur + w] + st[step + w] * (j + 1)``, move ``st[cur + w]`` to the
    chunk's last value (the next chunk's start), for ``width`` coefficients and every lane.
    The caller writes the steps, (exact value at the chunk's end - current) / n."""
    for w in range(width):
        for v in range(nl):
            st[cur + w, v] = st[cur + w, v] + st[step + w, v] * n


@njit(cache=True, inline="always")
def onepole_a(cutoff_hz, sample_rate):
    """Gain ``a`` of the one-pole low-pass ``y += a * (x - y)`` (impulse-invariant: the pole
    at exp(-2 pi fc / fs)); unity gain at DC."""
    fc = min(max(cutoff_hz, 1.0), 0.49 * sample_rate)
    return 1.0 - math.exp(-TWO_PI * fc / sample_rate)


@lane_loop
def pitch_increments(P, pr, st, row, ctx, s0, s1, nl, scale):
    """Phase increment per Hz of pitch at s0 (``st[row]``) and its change per sample
    (``st[row + 1]``) from transpose (``P[pr[0]]``) and detune (``P[pr[1]]``), times
    ``scale``: two ``semitone_ratio`` per voice per segment (no libm call, so the loop runs
    across lanes in SIMD: 135 -> 36 ns per segment at 16 lanes), exact when the parameters
    are steady."""
    inv_sr = scale / ctx[CTX_SAMPLE_RATE, 0]
    n = s1 - s0
    for v in range(nl):
        r0 = semitone_ratio(P[pr[0], s0, v] + 0.01 * P[pr[1], s0, v])
        r1 = semitone_ratio(P[pr[0], s1 - 1, v] + 0.01 * P[pr[1], s1 - 1, v])
        st[row, v] = r0 * inv_sr
        st[row + 1, v] = (r1 - r0) * inv_sr / n if n > 1 else 0.0


@njit(cache=True, inline="always")
def steady_pitch(io_pitch, ctx, st, row, nl):
    """Whether every lane's phase increment holds through the segment: the pitch input is the
    engine's pitch row, every lane's flagged steady (``CTX_PITCH_STEADY``), and transpose and
    detune hold (``pitch_increments`` left no slope in ``st[row + 1]``). An oscillator can
    then compute its phase as start + k x increment instead of summing it sample by sample."""
    if io_pitch != ROW_PITCH:
        return False
    for v in range(nl):
        if ctx[CTX_PITCH_STEADY, v] != 1.0 or st[row + 1, v] != 0.0:
            return False
    return True
