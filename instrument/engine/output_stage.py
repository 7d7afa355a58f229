"""The end of the chain: plan-swap crossfade, non-finite guard and safety limiter.

The limiter has an instant attack and no look-ahead: the gain never lets a sample past the
ceiling (-0.3 dBFS), and recovers with a one-pole release. It is a safety net, not a mastering
tool; presets are meant to stay below it.
"""

import math

from numba import njit

CEILING = 10.0 ** (-0.3 / 20.0)
# A mix sample beyond +60 dBFS is a blown-up graph, not music (16 loud voices sum to ~+18 dBFS):
# reset it like a NaN instead of letting the limiter hold a runaway at full scale.
RUNAWAY = 1000.0
LIM_GAIN, LIM_RELEASE, LIM_PEAK_L, LIM_PEAK_R, LIM_ENGAGED = range(5)
LIM_WIDTH = 8
RELEASE_MS = 100.0


def limiter_state(sample_rate: float):
    import numpy as np

    state = np.zeros(LIM_WIDTH)
    state[LIM_GAIN] = 1.0
    state[LIM_RELEASE] = math.exp(-1.0 / (RELEASE_MS * 0.001 * sample_rate))
    return state


@njit(cache=True)
def _finite_block(mix):
    for c in range(mix.shape[0]):
        for i in range(mix.shape[1]):
            if not (abs(mix[c, i]) <= RUNAWAY):  # also catches NaN and inf
                return False
    return True


@njit(cache=True, inline="always")
def _copy_if_below(mix, lim, out):
    """The limiter at rest (gain exactly 1.0, no crossfade, stereo out): when neither side of
    the block goes past the ceiling, the gain stays exactly 1.0 through it, so the block is a
    copy and its peaks; returns whether it was. The same samples and peaks as the per-sample
    loop, which the limiter needs only when it acts: poly16 on the scsynth score, 276-380 ->
    174-192 ns per block (benchmarks/op_time.py)."""
    frames = out.shape[0]
    peak_l = 0.0
    peak_r = 0.0
    for i in range(frames):
        a = abs(mix[0, i])
        b = abs(mix[1, i])
        if a > peak_l:
            peak_l = a
        if b > peak_r:
            peak_r = b
    if peak_l > CEILING or peak_r > CEILING:
        return False
    for i in range(frames):
        out[i, 0] = mix[0, i]
        out[i, 1] = mix[1, i]
    lim[LIM_PEAK_L] = peak_l
    lim[LIM_PEAK_R] = peak_r
    return True


@njit(cache=True)
def finish_block(mix_new, mix_old, fade_pos, fade_len, lim, out):
    """Write ``out`` (frames, channels) float32 from the new plan's mix, crossfaded with the
    old plan's while ``fade_pos < fade_len`` (equal-power: cos/sin gains), limited.

    Returns a bit mask: 1 if the new mix held a non-finite (or runaway, beyond RUNAWAY)
    sample, 2 if the old one did; such a mix is replaced by silence for this block (the caller
    resets that plan instance and the limiter).
    """
    bad = 0
    if not _finite_block(mix_new):
        mix_new[:, :] = 0.0
        bad |= 1
    fading = fade_pos < fade_len
    if fading and not _finite_block(mix_old):
        mix_old[:, :] = 0.0
        bad |= 2
    frames = out.shape[0]
    channels = out.shape[1]
    gain = lim[LIM_GAIN]
    if gain == 1.0 and not fading and channels == 2 and _copy_if_below(mix_new, lim, out):
        return bad
    rel = lim[LIM_RELEASE]
    peak_l = 0.0
    peak_r = 0.0
    for i in range(frames):
        l = mix_new[0, i]
        r = mix_new[1, i]
        if fading:
            t = (fade_pos + i) / fade_len
            if t > 1.0:
                t = 1.0
            g_new = math.sin(0.5 * math.pi * t)
            g_old = math.cos(0.5 * math.pi * t)
            l = g_new * l + g_old * mix_old[0, i]
            r = g_new * r + g_old * mix_old[1, i]
        m = abs(l) if abs(l) > abs(r) else abs(r)
        gain = 1.0 - (1.0 - gain) * rel
        if m * gain > CEILING:
            gain = CEILING / m
            lim[LIM_ENGAGED] += 1.0
        l *= gain
        r *= gain
        if abs(l) > peak_l:
            peak_l = abs(l)
        if abs(r) > peak_r:
            peak_r = abs(r)
        if channels == 1:
            out[i, 0] = 0.5 * (l + r)
        else:
            out[i, 0] = l
            out[i, 1] = r
            for c in range(2, channels):
                out[i, c] = 0.0
    lim[LIM_GAIN] = gain
    lim[LIM_PEAK_L] = peak_l
    lim[LIM_PEAK_R] = peak_r
    return bad
