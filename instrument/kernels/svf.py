"""State-variable filter kernels, voice lanes: the multimode ``svf`` and the low-pass
``svf_lowpass``. Contract: ``instrument.modules.layout``; what the filters share (TPT design,
coefficient ramps, key tracking, denormals, measured costs): ``instrument.kernels.filters``.
"""

from numba import njit

from instrument.kernels.approx import tan_pi
from instrument.kernels.coefficients import COEFF_STEP
from instrument.kernels.denormals import DENORMAL_FLOOR
from instrument.kernels.filters import chunk_prewarp, key_cutoff, prewarp
from instrument.modules.layout import CTX_SAMPLE_RATE


SVF_LOWPASS, SVF_HIGHPASS, SVF_BANDPASS, SVF_NOTCH = range(4)
_SVF_MIXED = 4  # lanes in different modes (a modulated mode): the general mix


@njit(cache=True, inline="always")
def svf_damping(resonance):
    """k = 1/Q with Q = 0.5 * 100**resonance (0.5 at 0, 5 at 0.5, 50 at 1); as svf_lowpass."""
    return 2.0 * 100.0 ** (-min(max(resonance, 0.0), 1.0))


@njit(cache=True, inline="always")
def svf_coeffs(g, k):
    """(a1, a2, a3) of the TPT SVF."""
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


@njit(cache=True, inline="always")
def svf_mix(mode):
    """Output = cx * in + cb * (k * band) + cl * low for the mode's index: low-pass, high-pass
    (in - k band - low), band-pass with 0 dB peak (k band), notch (in - k band)."""
    m = int(mode + 0.5)
    if m == SVF_HIGHPASS:
        return 1.0, -1.0, -1.0
    if m == SVF_BANDPASS:
        return 0.0, 1.0, 0.0
    if m == SVF_NOTCH:
        return 1.0, -1.0, 0.0
    return 0.0, 0.0, 1.0


# State rows of the SVF.
(_IC1, _IC2, _A1, _A2, _A3, _D1, _D2, _D3, _RES, _K0, _DK, _KEND, _CX, _CB, _CL, _SVF_GT,
 _SVF_RAMP) = range(17)
SVF_STATE = _SVF_RAMP + 3 * COEFF_STEP
SVF_UNSET = _A1  # reset_state writes -1.0 here: coefficients come from the first sample
SVF_RECURSIVE = (_IC1, _IC2)  # the filter's memory (flushed to 0 below DENORMAL_FLOOR)


@njit(cache=True, inline="always")
def _svf_run(x, out, st, i, end, s0, nl, m):
    """Samples [i, end) of every lane with the coefficient ramp in state; ``m`` is a constant
    at each call site, so the mode tests fold away."""
    for j in range(i, end):
        c = _SVF_RAMP + 3 * (j - i)
        t = j - s0
        for v in range(nl):
            a1 = st[c, v]
            a2 = st[c + 1, v]
            a3 = st[c + 2, v]
            ic1 = st[_IC1, v]
            ic2 = st[_IC2, v]
            xi = x[j, v]
            v3 = xi - ic2
            v1 = a1 * ic1 + a2 * v3
            v2 = ic2 + a2 * ic1 + a3 * v3
            st[_IC1, v] = 2.0 * v1 - ic1
            st[_IC2, v] = 2.0 * v2 - ic2
            if m == SVF_LOWPASS:
                out[j, v] = v2
            else:
                kv1 = (st[_K0, v] + st[_DK, v] * t) * v1
                if m == SVF_HIGHPASS:
                    out[j, v] = xi - kv1 - v2
                elif m == SVF_BANDPASS:
                    out[j, v] = kv1
                elif m == SVF_NOTCH:
                    out[j, v] = xi - kv1
                else:
                    out[j, v] = st[_CX, v] * xi + st[_CB, v] * kv1 + st[_CL, v] * v2


@njit(cache=True, error_model="numpy")
def svf_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Multimode 12 dB/oct TPT state-variable filter (params: mode, cutoff_hz, resonance,
    key_track; inputs: in, key; output: out).

    Small-signal response = the bilinear transform (cutoff prewarped) of
    low 1/D, high s^2/D, band k s/D, notch (s^2 + 1)/D with D = s^2 + k s + 1 and
    k = 1/Q = 2 * 100**-resonance: -3 dB exactly at the cutoff for the low-pass at Q = 0.707
    (resonance 0.0753), band-pass peak 0 dB at the cutoff, notch zero at the cutoff. Measured
    within 0.5 dB of that below 0.4 x the sample rate (in practice within 1e-9 dB). The damping
    follows the resonance linearly across each segment, between exact values at its ends.
    """
    x = bufs[io[0]]
    key = bufs[io[1]]
    out = bufs[io[2]]
    mode = P[pr[0]]
    cutoff = P[pr[1]]
    res = P[pr[2]]
    kt = P[pr[3]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    n = s1 - s0
    shared = _SVF_MIXED  # the mode of every lane, or _SVF_MIXED when they differ
    for v in range(nl):
        r0 = res[s0, v]
        r1 = res[s1 - 1, v]
        if r0 == r1 and r1 == st[_RES, v] and st[_A1, v] >= 0.0:
            st[_K0, v] = st[_KEND, v]
            st[_DK, v] = 0.0
        else:
            k0 = svf_damping(r0)
            k1 = svf_damping(r1)
            st[_K0, v] = k0
            st[_DK, v] = (k1 - k0) / (n - 1) if n > 1 else 0.0
            st[_KEND, v] = k1
            st[_RES, v] = r1
        st[_CX, v], st[_CB, v], st[_CL, v] = svf_mix(mode[s0, v])
        m = int(mode[s0, v] + 0.5)
        shared = m if v == 0 or m == shared else _SVF_MIXED
        if st[_A1, v] < 0.0:
            g = prewarp(key_cutoff(cutoff[s0, v], kt[s0, v], key[s0, v]), sr)
            st[_A1, v], st[_A2, v], st[_A3, v] = svf_coeffs(g, st[_K0, v])
    i = s0
    while i < s1:
        end = min(i + COEFF_STEP, s1)
        e = end - 1
        inv = 1.0 / (end - i)
        chunk_prewarp(cutoff, kt, key, e, nl, sr, st, _SVF_GT)
        for v in range(nl):
            k = st[_K0, v] + st[_DK, v] * (e - s0)
            g = st[_SVF_GT, v]
            b1, b2, b3 = svf_coeffs(g, k)
            st[_D1, v] = (b1 - st[_A1, v]) * inv
            st[_D2, v] = (b2 - st[_A2, v]) * inv
            st[_D3, v] = (b3 - st[_A3, v]) * inv
        for j in range(end - i):
            c = _SVF_RAMP + 3 * j
            for v in range(nl):
                st[c, v] = st[_A1, v] + st[_D1, v] * (j + 1)
                st[c + 1, v] = st[_A2, v] + st[_D2, v] * (j + 1)
                st[c + 2, v] = st[_A3, v] + st[_D3, v] * (j + 1)
        last = _SVF_RAMP + 3 * (end - i - 1)
        for v in range(nl):
            st[_A1, v], st[_A2, v], st[_A3, v] = st[last, v], st[last + 1, v], st[last + 2, v]
        if shared == SVF_LOWPASS:  # one loop per mode: the general mix costs ~35 ns more
            _svf_run(x, out, st, i, end, s0, nl, SVF_LOWPASS)
        elif shared == SVF_HIGHPASS:
            _svf_run(x, out, st, i, end, s0, nl, SVF_HIGHPASS)
        elif shared == SVF_BANDPASS:
            _svf_run(x, out, st, i, end, s0, nl, SVF_BANDPASS)
        elif shared == SVF_NOTCH:
            _svf_run(x, out, st, i, end, s0, nl, SVF_NOTCH)
        else:
            _svf_run(x, out, st, i, end, s0, nl, _SVF_MIXED)
        i = end
    for v in range(nl):
        if abs(st[_IC1, v]) < DENORMAL_FLOOR:
            st[_IC1, v] = 0.0
        if abs(st[_IC2, v]) < DENORMAL_FLOOR:
            st[_IC2, v] = 0.0


# ---- svf_lowpass ----------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _lowpass_coeffs(cutoff_hz, k, sample_rate):
    """(a1, a2, a3) of the TPT SVF for this cutoff and damping."""
    fc = min(max(cutoff_hz, 1.0), 0.49 * sample_rate)
    g = tan_pi(fc / sample_rate)
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


# State rows of the SVF.
(_L_IC1, _L_IC2, _L_A1, _L_A2, _L_A3, _L_D1, _L_D2, _L_D3, _L_RES, _L_K0, _L_DK, _L_K1,
 _L_RAMP) = range(13)
SVF_LOWPASS_STATE = _L_RAMP + 3 * COEFF_STEP


@njit(cache=True, error_model="numpy")
def svf_lowpass_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """12 dB/oct state-variable low-pass.

    The damping follows the resonance linearly across each segment (two pow per voice only
    when the resonance moves). Each chunk of COEFF_STEP samples first writes its per-sample
    coefficient ramp for all voices, then runs the filter reading them: with the coefficients
    read-only in the recursive loop, LLVM vectorizes it across voices (45 ns per voice per 64
    samples; 224 ns when the same loop also advanced the ramp).
    """
    x = bufs[io[0]]
    out = bufs[io[1]]
    cutoff = P[pr[0]]
    res = P[pr[1]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    n = s1 - s0
    for v in range(nl):
        r0 = res[s0, v]
        r1 = res[s1 - 1, v]
        if r0 == r1 and r1 == st[_L_RES, v] and st[_L_A1, v] >= 0.0:
            st[_L_K0, v] = st[_L_K1, v]  # steady: the damping the last ramp ended on
            st[_L_DK, v] = 0.0
        else:
            k0 = svf_damping(r0)
            k1 = svf_damping(r1)
            st[_L_K0, v] = k0
            st[_L_K1, v] = k1
            st[_L_DK, v] = (k1 - k0) / n if n > 1 else 0.0
            st[_L_RES, v] = r1
        if st[_L_A1, v] < 0.0:
            st[_L_A1, v], st[_L_A2, v], st[_L_A3, v] = _lowpass_coeffs(cutoff[s0, v], st[_L_K0, v], sr)
    i = s0
    while i < s1:
        end = min(i + COEFF_STEP, s1)
        inv = 1.0 / (end - i)
        for v in range(nl):
            k = st[_L_K0, v] + st[_L_DK, v] * (end - 1 - s0)
            b1, b2, b3 = _lowpass_coeffs(cutoff[end - 1, v], k, sr)
            st[_L_D1, v] = (b1 - st[_L_A1, v]) * inv
            st[_L_D2, v] = (b2 - st[_L_A2, v]) * inv
            st[_L_D3, v] = (b3 - st[_L_A3, v]) * inv
        for j in range(end - i):
            c = _L_RAMP + 3 * j
            for v in range(nl):
                st[c, v] = st[_L_A1, v] + st[_L_D1, v] * (j + 1)
                st[c + 1, v] = st[_L_A2, v] + st[_L_D2, v] * (j + 1)
                st[c + 2, v] = st[_L_A3, v] + st[_L_D3, v] * (j + 1)
        last = _L_RAMP + 3 * (end - i - 1)
        for v in range(nl):
            st[_L_A1, v], st[_L_A2, v], st[_L_A3, v] = st[last, v], st[last + 1, v], st[last + 2, v]
        for j in range(i, end):
            c = _L_RAMP + 3 * (j - i)
            for v in range(nl):
                a1 = st[c, v]
                a2 = st[c + 1, v]
                a3 = st[c + 2, v]
                ic1 = st[_L_IC1, v]
                ic2 = st[_L_IC2, v]
                v3 = x[j, v] - ic2
                v1 = a1 * ic1 + a2 * v3
                v2 = ic2 + a2 * ic1 + a3 * v3
                st[_L_IC1, v] = 2.0 * v1 - ic1
                st[_L_IC2, v] = 2.0 * v2 - ic2
                out[j, v] = v2
        i = end
    for v in range(nl):
        if abs(st[_L_IC1, v]) < DENORMAL_FLOOR:
            st[_L_IC1, v] = 0.0
        if abs(st[_L_IC2, v]) < DENORMAL_FLOOR:
            st[_L_IC2, v] = 0.0
