"""The output stage's limiter at rest: a block that stays below the ceiling is copied (the gain
stays exactly 1.0 through it), with the same samples and peaks the per-sample limiter gives;
a block past the ceiling, or one while the gain recovers, goes through the limiter."""

import math

import numpy as np

from instrument.engine.output_stage import (
    CEILING, LIM_ENGAGED, LIM_GAIN, LIM_PEAK_L, LIM_PEAK_R, finish_block, limiter_state,
)


def _reference(mix, lim):
    """The limiter sample by sample, as ``finish_block`` documents it (no crossfade)."""
    gain, rel = lim[LIM_GAIN], lim[1]
    out = np.zeros((mix.shape[1], 2), dtype=np.float32)
    peaks = [0.0, 0.0]
    for i in range(mix.shape[1]):
        l, r = mix[0, i], mix[1, i]
        m = max(abs(l), abs(r))
        gain = 1.0 - (1.0 - gain) * rel
        if m * gain > CEILING:
            gain = CEILING / m
        out[i] = (l * gain, r * gain)
        peaks = [max(peaks[0], abs(l * gain)), max(peaks[1], abs(r * gain))]
    return out, gain, peaks


def _check(mix, gain=1.0):
    lim = limiter_state(48000.0)
    lim[LIM_GAIN] = gain
    ref, ref_gain, ref_peaks = _reference(mix, lim.copy())
    out = np.zeros((mix.shape[1], 2), dtype=np.float32)
    assert finish_block(mix.copy(), mix.copy(), 0, 0, lim, out) == 0
    assert np.array_equal(out, ref)
    assert lim[LIM_GAIN] == ref_gain
    assert [lim[LIM_PEAK_L], lim[LIM_PEAK_R]] == ref_peaks
    return lim


def test_a_quiet_block_at_rest_is_copied_bit_for_bit():
    t = np.arange(64) / 48000.0
    mix = np.stack([0.7 * np.sin(2 * math.pi * 440 * t), -0.5 * np.cos(2 * math.pi * 220 * t)])
    mix[0, 3] = -0.0
    lim = _check(mix)
    assert lim[LIM_GAIN] == 1.0 and lim[LIM_ENGAGED] == 0.0


def test_a_loud_block_and_a_recovering_gain_go_through_the_limiter():
    t = np.arange(64) / 48000.0
    loud = np.stack([1.6 * np.sin(2 * math.pi * 440 * t), 0.2 * np.ones(64)])
    lim = _check(loud)
    assert lim[LIM_ENGAGED] > 0 and lim[LIM_GAIN] < 1.0
    _check(0.5 * loud, gain=0.8)  # below the ceiling, but the gain still recovers
