"""Filter kernels. Contract: ``instrument.modules.layout``.

The state-variable filter is the trapezoidal (TPT) SVF of Zavalishin / Simper: its magnitude
response matches the analog prototype with the bilinear frequency warp, and it stays stable
under audio-rate cutoff modulation.
"""

import math

from numba import njit

from instrument.modules.layout import CTX_SAMPLE_RATE

# Coefficients are recomputed every COEFF_STEP samples and ramped linearly in between: one tan
# per 8 samples instead of one per sample, and exact whenever the cutoff is steady.
COEFF_STEP = 8
DENORMAL_FLOOR = 1e-30


@njit(cache=True, inline="always")
def svf_g(cutoff_hz, sample_rate):
    nyq_safe = 0.49 * sample_rate
    fc = cutoff_hz if cutoff_hz < nyq_safe else nyq_safe
    if fc < 1.0:
        fc = 1.0
    return math.tan(math.pi * fc / sample_rate)


@njit(cache=True, inline="always")
def svf_k(resonance):
    """Damping k = 1/Q with Q = 0.5 * 100**resonance (0.5 at 0, 5 at 0.5, 50 at 1)."""
    r = resonance if resonance > 0.0 else 0.0
    if r > 1.0:
        r = 1.0
    return 2.0 * 100.0 ** (-r)


@njit(cache=True, inline="always")
def svf_coeffs(cutoff_hz, resonance, sample_rate):
    """(a1, a2, a3) of the TPT SVF for this cutoff and resonance."""
    g = svf_g(cutoff_hz, sample_rate)
    k = svf_k(resonance)
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


@njit(cache=True, error_model="numpy")
def svf_lowpass_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """12 dB/oct state-variable low-pass. State: ic1eq, ic2eq, a1, a2, a3 (a1 < 0: unset).

    The coefficients are exact every COEFF_STEP samples and interpolated linearly in between,
    so the per-sample work has no division (it was 6 ns/sample with one).
    """
    x = bufs[io[0]]
    out = bufs[io[1]]
    cutoff = P[pr[0]]
    res = P[pr[1]]
    sr = ctx[CTX_SAMPLE_RATE]
    ic1, ic2, a1, a2, a3 = st[0], st[1], st[2], st[3], st[4]
    if a1 < 0.0:
        a1, a2, a3 = svf_coeffs(cutoff[s0], res[s0], sr)
    i = s0
    while i < s1:
        end = i + COEFF_STEP
        if end > s1:
            end = s1
        b1, b2, b3 = svf_coeffs(cutoff[end - 1], res[end - 1], sr)
        if b1 == a1 and b2 == a2:
            for j in range(i, end):
                v3 = x[j] - ic2
                v1 = a1 * ic1 + a2 * v3
                v2 = ic2 + a2 * ic1 + a3 * v3
                ic1 = 2.0 * v1 - ic1
                ic2 = 2.0 * v2 - ic2
                out[j] = v2
        else:
            inv = 1.0 / (end - i)
            d1, d2, d3 = (b1 - a1) * inv, (b2 - a2) * inv, (b3 - a3) * inv
            for j in range(i, end):
                a1 += d1
                a2 += d2
                a3 += d3
                v3 = x[j] - ic2
                v1 = a1 * ic1 + a2 * v3
                v2 = ic2 + a2 * ic1 + a3 * v3
                ic1 = 2.0 * v1 - ic1
                ic2 = 2.0 * v2 - ic2
                out[j] = v2
        a1, a2, a3 = b1, b2, b3
        i = end
    if abs(ic1) < DENORMAL_FLOOR:
        ic1 = 0.0
    if abs(ic2) < DENORMAL_FLOOR:
        ic2 = 0.0
    st[0], st[1], st[2], st[3], st[4] = ic1, ic2, a1, a2, a3
