"""The state-variable filter kernel, voice lanes: the multimode ``svf``, and ``svf_lowpass``,
which is the svf in low-pass mode without key tracking. Contract:
``instrument.layout``; what the filters share (TPT design, coefficient ramps, key
tracking, denormals, measured costs): ``instrument.kernels.filters``.
"""

from numba import njit

from instrument.kernels.coefficients import COEFF_STEP, chunk_ramp, ramp_step
from instrument.kernels.denormals import DENORMAL_FLOOR
from instrument.kernels.filters import chunk_prewarp, key_cutoff, prewarp
from instrument.kernels.noalias import WIDE_LANES, lane_loop
from instrument.layout import CTX_SAMPLE_RATE, ROW_ZERO


SVF_LOWPASS, SVF_HIGHPASS, SVF_BANDPASS, SVF_NOTCH = range(4)
_SVF_MIXED = 4  # lanes in different modes (a modulated mode): the general mix


@njit(cache=True, inline="always")
def svf_damping(resonance):
    """k = 1/Q with Q = 0.5 * 100**resonance (0.5 at 0, 5 at 0.5, 50 at 1)."""
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


# State rows of the SVF (_CUT_KEY: the low-pass's cutoff at the last exact coefficients).
(_IC1, _IC2, _A1, _A2, _A3, _D1, _D2, _D3, _RES, _K0, _DK, _KEND, _CX, _CB, _CL, _SVF_GT,
 _CUT_KEY) = range(17)
SVF_STATE = 17
SVF_UNSET = _A1  # reset_state writes -1.0 here: coefficients come from the first sample
SVF_RECURSIVE = (_IC1, _IC2)  # the filter's memory (flushed to 0 below DENORMAL_FLOOR)


@njit(cache=True, inline="always")
def _svf_lanes(x, out, st, i, end, s0, nl, m, held=False):
    """``_svf_run`` with 16 lanes compiled as a constant count when ``nl`` is 16."""
    if nl == WIDE_LANES:
        _svf_run(x, out, st, i, end, s0, WIDE_LANES, m, held)
    else:
        _svf_run(x, out, st, i, end, s0, nl, m, held)


@lane_loop
def _svf_run(x, out, st, i, end, s0, nl, m, held):
    """Samples [i, end) of every lane with the coefficients ramping from rows _A1.._A3 by
    the steps in _D1.._D3 per sample (``chunk_ramp``), or held (``held``); ``m`` and ``held``
    are constants at each call site, so their tests fold away."""
    for j in range(i, end):
        r = j - i + 1.0  # the ramp's position: the chunk's last sample has the exact values
        t = j - s0
        for v in range(nl):
            if held:
                a1 = st[_A1, v]
                a2 = st[_A2, v]
                a3 = st[_A3, v]
            else:
                a1 = st[_A1, v] + st[_D1, v] * r
                a2 = st[_A2, v] + st[_D2, v] * r
                a3 = st[_A3, v] + st[_D3, v] * r
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


@njit(cache=True, inline="always")
def _svf_steady(cutoff, st, s0, s1, nl):
    """True when no lane's coefficients would move in [s0, s1): the damping holds and the
    cutoff at every chunk end is the one the current coefficients were computed from."""
    for v in range(nl):
        if st[_DK, v] != 0.0:
            return False
        key = st[_CUT_KEY, v]
        for i in range(s0, s1, COEFF_STEP):
            if cutoff[min(i + COEFF_STEP, s1) - 1, v] != key:
                return False
    return True


@lane_loop
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
    svf_segment(bufs[io[0]], bufs[io[1]], bufs[io[2]], P[pr[0]], P[pr[1]], P[pr[2]],
                P[pr[3]], st, ctx[CTX_SAMPLE_RATE, 0], s0, s1, nl, False)


@lane_loop
def svf_lowpass_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """The svf in low-pass mode without key tracking (params: cutoff_hz, resonance; input: in;
    output: out): the ``svf_lowpass`` module's kernel, on the svf's state layout."""
    zero = bufs[ROW_ZERO]  # mode 0 (low-pass), key_track 0, no key
    svf_segment(bufs[io[0]], zero, bufs[io[1]], zero, P[pr[0]], P[pr[1]], zero, st,
                ctx[CTX_SAMPLE_RATE, 0], s0, s1, nl, True)


@njit(cache=True, inline="always")
def svf_segment(x, key, out, mode, cutoff, res, kt, st, sr, s0, s1, nl, lowpass):
    """One segment of the svf (``svf_kernel``'s docstring) on rows of samples x lanes.
    ``lowpass`` (a constant at each call site, so its tests fold away) skips reading the
    mode and the key tracking: low-pass, untracked (``svf_lowpass``). Without it svf_lowpass
    ran 2% more instructions than when it had a kernel of its own (40.1k against 39.2k per
    block of 16 voices, callgrind) and measured 5-10% slower; with it, 39.1k."""
    n = s1 - s0
    shared = SVF_LOWPASS if lowpass else _SVF_MIXED  # every lane's mode, or _SVF_MIXED
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
            st[_DK, v] = ramp_step(k0, k1, n)
            st[_KEND, v] = k1
            st[_RES, v] = r1
            st[_CUT_KEY, v] = -1.0  # a new damping: the coefficients are not settled
        if not lowpass:
            st[_CX, v], st[_CB, v], st[_CL, v] = svf_mix(mode[s0, v])
            m = int(mode[s0, v] + 0.5)
            shared = m if v == 0 or m == shared else _SVF_MIXED
        if st[_A1, v] < 0.0:
            g = prewarp(key_cutoff(cutoff[s0, v], kt[s0, v], key[s0, v]), sr)
            st[_A1, v], st[_A2, v], st[_A3, v] = svf_coeffs(g, st[_K0, v])
            st[_CUT_KEY, v] = -1.0  # (not from a chunk's end)
    if lowpass and _svf_steady(cutoff, st, s0, s1, nl):
        # A settled low-pass (a held note after its filter envelope's decay): no tan, no
        # ramp; svf_lowpass at 16 voices 2.6 -> 1.0 us per block (benchmarks/op_cost.py)
        _svf_lanes(x, out, st, s0, s1, s0, nl, SVF_LOWPASS, True)
        _flush_denormals(st, nl)
        return
    i = s0
    while i < s1:
        end = min(i + COEFF_STEP, s1)
        e = end - 1
        inv = 1.0 / (end - i)
        if lowpass:
            for v in range(nl):
                k = st[_K0, v] + st[_DK, v] * (e - s0)
                b1, b2, b3 = svf_coeffs(prewarp(cutoff[e, v], sr), k)
                st[_CUT_KEY, v] = cutoff[e, v]
                st[_D1, v] = (b1 - st[_A1, v]) * inv
                st[_D2, v] = (b2 - st[_A2, v]) * inv
                st[_D3, v] = (b3 - st[_A3, v]) * inv
        else:
            chunk_prewarp(cutoff, kt, key, e, nl, sr, st, _SVF_GT)
            for v in range(nl):
                k = st[_K0, v] + st[_DK, v] * (e - s0)
                b1, b2, b3 = svf_coeffs(st[_SVF_GT, v], k)
                st[_D1, v] = (b1 - st[_A1, v]) * inv
                st[_D2, v] = (b2 - st[_A2, v]) * inv
                st[_D3, v] = (b3 - st[_A3, v]) * inv
        if shared == SVF_LOWPASS:  # one loop per mode: the general mix costs ~35 ns more
            _svf_lanes(x, out, st, i, end, s0, nl, SVF_LOWPASS)
        elif shared == SVF_HIGHPASS:
            _svf_lanes(x, out, st, i, end, s0, nl, SVF_HIGHPASS)
        elif shared == SVF_BANDPASS:
            _svf_lanes(x, out, st, i, end, s0, nl, SVF_BANDPASS)
        elif shared == SVF_NOTCH:
            _svf_lanes(x, out, st, i, end, s0, nl, SVF_NOTCH)
        else:
            _svf_lanes(x, out, st, i, end, s0, nl, _SVF_MIXED)
        chunk_ramp(st, _A1, _D1, 3, end - i, nl)
        i = end
    _flush_denormals(st, nl)


@njit(cache=True, inline="always")
def _flush_denormals(st, nl):
    for v in range(nl):
        if abs(st[_IC1, v]) < DENORMAL_FLOOR:
            st[_IC1, v] = 0.0
        if abs(st[_IC2, v]) < DENORMAL_FLOOR:
            st[_IC2, v] = 0.0
