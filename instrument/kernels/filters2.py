"""Multimode state-variable, 4-pole ladder and one-pole filter kernels, voice lanes.
Contract: ``instrument.modules.layout``.

All three are trapezoidal (TPT, zero-delay-feedback) designs after Zavalishin, "The Art of VA
Filter Design": their small-signal magnitude responses are the bilinear transforms of the
analog prototypes with the cutoff prewarped, and they stay stable under audio-rate cutoff
modulation. Coefficients follow ``instrument.kernels.filters``: exact every COEFF_STEP samples
(tan by polynomial, ``approx.tan_pi``), a per-sample linear ramp written to state, then read
only in the recursive loop across voices, which therefore vectorizes.

Key tracking: the cutoff is multiplied by ``(key / 261.63 Hz) ** key_track`` (one octave per
octave at ``key_track`` 1, middle C unchanged), evaluated with the coefficients every
COEFF_STEP samples by ``ln_approx``/``exp_approx`` (no libm in the loops across voices). A key
input of 0 Hz or less (the global graph has no voice pitch) means no tracking.

Denormals: each kernel flushes state below DENORMAL_FLOOR to 0 at the end of every segment, so
a decaying tail turns into exact zeros instead of subnormal numbers. (Without the flush, the
release tails in tests/test_filters2.py turn subnormal after 2-5 s and those blocks cost 10-55%
more on the AMD EPYC the tests ran on; many Intel cores charge far more per subnormal
operation.)

Measured (tests/test_filters2.py, AMD EPYC, 48 kHz, 16 voices as lanes, ns per voice per
64 samples; the existing svf_lowpass measures 100-105 on the same machine): svf 111
(low-pass) to 134 (high-pass), ladder 171, one-pole 64; key tracking adds ~40-45. The
ladder's output DC blocker (``dc_block_hz``, on or off) added 20-30 ns, about 8%, measured on
another (2-core) machine: 254-271 ns before, 283-291 after.
"""

import math

from numba import njit

from instrument.kernels.approx import exp_approx, tan_pi
from instrument.kernels.coefficients import COEFF_STEP
from instrument.kernels.denormals import DENORMAL_FLOOR
from instrument.modules.layout import CTX_SAMPLE_RATE

C4_HZ = 261.6255653005986  # MIDI note 60
_INV_C4 = 1.0 / C4_HZ
KEY_RATIO_MIN = 1.0 / 256.0  # key ratios are clamped to +-8 octaves around middle C
KEY_RATIO_MAX = 256.0
MIN_CUTOFF_HZ = 1.0
MAX_CUTOFF_RATIO = 0.49  # of the sample rate

# ---- vectorizable approximations ------------------------------------------------------------

TANH_CLIP = 6.1  # the Pade approximant below is clamped here (it crosses 1.0 at 6.297)


@njit(cache=True, inline="always")
def ln_approx(x):
    """Natural log for x in [2**-8, 2**8]: three square roots bring x to y = x**(1/8) in
    [0.5, 2], then 16 atanh((y - 1) / (y + 1)) by its series to z**19 (|z| <= 1/3); absolute
    error below 1e-10 over that range (measured by test). No libm call."""
    y = math.sqrt(math.sqrt(math.sqrt(x)))
    z = (y - 1.0) / (y + 1.0)
    z2 = z * z
    p = 1.0 / 19.0
    p = p * z2 + 1.0 / 17.0
    p = p * z2 + 1.0 / 15.0
    p = p * z2 + 1.0 / 13.0
    p = p * z2 + 1.0 / 11.0
    p = p * z2 + 1.0 / 9.0
    p = p * z2 + 1.0 / 7.0
    p = p * z2 + 1.0 / 5.0
    p = p * z2 + 1.0 / 3.0
    p = p * z2 + 1.0
    return 16.0 * z * p


@njit(cache=True, inline="always")
def tanh_pade_num(x2):
    """Numerator of the [9/8] Pade approximant of tanh(x) / x, in x**2."""
    return 34459425.0 + x2 * (4729725.0 + x2 * (135135.0 + x2 * (990.0 + x2)))


@njit(cache=True, inline="always")
def tanh_pade_den(x2):
    """Denominator of the [9/8] Pade approximant of tanh(x) / x, in x**2."""
    return 34459425.0 + x2 * (16216200.0 + x2 * (945945.0 + x2 * (13860.0 + 45.0 * x2)))


@njit(cache=True, inline="always")
def tanh_approx(x):
    """tanh(x) for every real x: the [9/8] Pade approximant on x clamped to +-TANH_CLIP; odd,
    monotone, |tanh_approx| < 1, absolute error below 6e-6 everywhere (measured by test)."""
    xc = x if x > -TANH_CLIP else -TANH_CLIP
    xc = xc if xc < TANH_CLIP else TANH_CLIP
    x2 = xc * xc
    return xc * tanh_pade_num(x2) / tanh_pade_den(x2)


@njit(cache=True, inline="always")
def key_cutoff(cutoff_hz, key_track, key_hz):
    """The cutoff moved by key tracking: ``cutoff_hz * (key_hz / C4_HZ) ** key_track``;
    ``key_hz`` <= 0 (or NaN) means middle C, ``key_track`` is clamped to [0, 1].

    The clamps are written as conditional expressions, which LLVM turns into vector selects:
    with min(max(...)) here the coefficient loop stopped vectorizing (one-pole: 245 ns per
    voice per block against 105 ns)."""
    r = key_hz * _INV_C4 if key_hz > 0.0 else 1.0
    r = KEY_RATIO_MIN if r < KEY_RATIO_MIN else r
    r = KEY_RATIO_MAX if r > KEY_RATIO_MAX else r
    kt = key_track if key_track > 0.0 else 0.0
    kt = 1.0 if kt > 1.0 else kt
    return cutoff_hz * exp_approx(kt * ln_approx(r))


@njit(cache=True, inline="always")
def any_tracking(key_track, i, nl):
    """True when some lane has key tracking at sample ``i``; otherwise the coefficient loops
    skip key_cutoff (about 45 ns per voice per 64 samples)."""
    for v in range(nl):
        if key_track[i, v] != 0.0:
            return True
    return False


@njit(cache=True, inline="always")
def prewarp(cutoff_hz, sample_rate):
    """g = tan(pi * fc / fs), fc clamped to [MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * fs]."""
    ratio = cutoff_hz / sample_rate
    ratio = ratio if ratio < MAX_CUTOFF_RATIO else MAX_CUTOFF_RATIO
    ratio = ratio if ratio > MIN_CUTOFF_HZ / sample_rate else MIN_CUTOFF_HZ / sample_rate
    return tan_pi(ratio)


@njit(cache=True, inline="always")
def chunk_prewarp(cutoff, kt, key, i, nl, sr, st, row):
    """st[row, v] = prewarp of lane v's (key-tracked) cutoff at sample ``i``. Two loops, so
    that each vectorizes; the untracked one skips key_cutoff."""
    if any_tracking(kt, i, nl):
        for v in range(nl):
            st[row, v] = prewarp(key_cutoff(cutoff[i, v], kt[i, v], key[i, v]), sr)
    else:
        for v in range(nl):
            st[row, v] = prewarp(cutoff[i, v], sr)


# ---- multimode state-variable filter --------------------------------------------------------

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
SVF2_STATE = _SVF_RAMP + 3 * COEFF_STEP
SVF2_UNSET = _A1  # reset_state writes -1.0 here: coefficients come from the first sample
SVF2_RECURSIVE = (_IC1, _IC2)  # the filter's memory (flushed to 0 below DENORMAL_FLOOR)


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


# ---- 4-pole ladder --------------------------------------------------------------------------

LADDER_OSC_RESONANCE = 0.95  # where the loop gain at the cutoff, k / 4, reaches 1
LADDER_K_MAX = 4.0 / LADDER_OSC_RESONANCE  # feedback k at resonance 1

# State rows of the ladder (_DCS: the output high-pass's memory, _DCG: its coefficient).
(_S1, _S2, _S3, _S4, _Y4, _G, _DG, _DRV, _GD0, _DGD, _OG0, _DOG, _LAD_GT, _DCS, _DCG,
 _LAD_RAMP) = range(16)
LADDER_STATE = _LAD_RAMP + COEFF_STEP
LADDER_UNSET = (_G, _DRV)  # reset_state writes -1.0 here: set from the first segment
LADDER_RECURSIVE = (_S1, _S2, _S3, _S4, _Y4, _DCS)
DC_BLOCK_MAX_HZ = 20.0  # the output high-pass's corner is at most this (ladder and drive)


@njit(cache=True, inline="always")
def dc_block_coeff(corner_hz, sample_rate):
    """G = g / (1 + g), g = tan(pi fc / fs), of the TPT one-pole whose low-pass the DC blocker
    subtracts; fc clamped to [0, DC_BLOCK_MAX_HZ]: 0 gives G = 0, which passes the input
    bit for bit."""
    fc = corner_hz if corner_hz > 0.0 else 0.0
    fc = fc if fc < DC_BLOCK_MAX_HZ else DC_BLOCK_MAX_HZ
    g = tan_pi(fc / sample_rate)
    return g / (1.0 + g)


@njit(cache=True, error_model="numpy")
def ladder_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """4-pole (24 dB/oct) TPT ladder low-pass with a saturating input stage (params:
    cutoff_hz, resonance, drive_db, key_track; inputs: in, key; output: out).

    Four TPT one-poles G = g / (1 + g) in series, feedback k = LADDER_K_MAX * resonance around
    them through u = tanh(drive * in - k * y4). The zero-delay feedback is solved exactly each
    sample with tanh linearised as tanh(z) = t * z, t = tanh(z') / z' at the estimate
    z' = drive * in - k * y4[n-1] (Mystran's "cheap non-linear zero-delay filters"); small
    signals see t = 1, the exact linear TPT ladder:
        H = sqrt(drive) * (1 + k) * H1^4 / (1 + k * H1^4),  H1 = bilinear of 1 / (1 + s).
    The output is multiplied by 1 + k so the passband stays at 0 dB at any resonance, and by
    1 / sqrt(drive): small signals rise by half the drive in dB, loud ones saturate.
    The loop gain at the cutoff is k / 4: self-oscillation starts at resonance 0.95 (k = 4); at
    resonance 1 a kick grows into a steady sine at the cutoff, bounded by the tanh (measured:
    +0.9, +3.6, +11 cents at 250 Hz, 1 kHz, 4 kHz; peak 0.55 at drive 0 dB, lower by half the
    drive in dB; 3rd harmonic -64 dB). Whatever the input, |out| <= (1 + k) / sqrt(drive)
    (with ``dc_block_hz`` 0).

    ``dc_block_hz`` > 0 (the fifth parameter) subtracts from the output its TPT one-pole
    low-pass at that corner (coefficient taken at each segment's start): a one-pole high-pass,
    s / (s + wdc) bilinear-transformed, times the response above. The tanh turns the
    asymmetric sum drive * in - k * y4 (a saw plus its resonance) into DC, which the low-pass
    passes at 0 dB; the high-pass takes it out (measured in tests/test_gain_staging.py). It
    overshoots the bound above (up to 11% on a driven 110 Hz saw). 0 (the default) leaves the
    output exactly as without it.
    """
    x = bufs[io[0]]
    key = bufs[io[1]]
    out = bufs[io[2]]
    cutoff = P[pr[0]]
    res = P[pr[1]]
    drive = P[pr[2]]
    kt = P[pr[3]]
    dcb = P[pr[4]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    n = s1 - s0
    for v in range(nl):
        st[_DCG, v] = dc_block_coeff(dcb[s0, v], sr)
        d0 = drive[s0, v]
        d1 = drive[s1 - 1, v]
        if not (d0 == d1 and d1 == st[_DRV, v]):
            gd0 = 10.0 ** (0.05 * d0)
            gd1 = 10.0 ** (0.05 * d1)
            og0 = 1.0 / math.sqrt(gd0)
            og1 = 1.0 / math.sqrt(gd1)
            st[_GD0, v] = gd0
            st[_OG0, v] = og0
            st[_DGD, v] = (gd1 - gd0) / (n - 1) if n > 1 else 0.0
            st[_DOG, v] = (og1 - og0) / (n - 1) if n > 1 else 0.0
            st[_DRV, v] = d1 if d0 == d1 else -1.0
        else:
            st[_DGD, v] = 0.0
            st[_DOG, v] = 0.0
        if st[_G, v] < 0.0:
            g = prewarp(key_cutoff(cutoff[s0, v], kt[s0, v], key[s0, v]), sr)
            st[_G, v] = g / (1.0 + g)
    i = s0
    while i < s1:
        end = min(i + COEFF_STEP, s1)
        e = end - 1
        inv = 1.0 / (end - i)
        chunk_prewarp(cutoff, kt, key, e, nl, sr, st, _LAD_GT)
        for v in range(nl):
            g = st[_LAD_GT, v]
            st[_DG, v] = (g / (1.0 + g) - st[_G, v]) * inv
        for j in range(end - i):
            c = _LAD_RAMP + j
            for v in range(nl):
                st[c, v] = st[_G, v] + st[_DG, v] * (j + 1)
        last = _LAD_RAMP + (end - i - 1)
        for v in range(nl):
            st[_G, v] = st[last, v]
        for j in range(i, end):
            c = _LAD_RAMP + (j - i)
            t = j - s0
            for v in range(nl):
                G = st[c, v]
                r = res[j, v]
                r = r if r > 0.0 else 0.0
                r = r if r < 1.0 else 1.0
                k = LADDER_K_MAX * r
                xd = (st[_GD0, v] + st[_DGD, v] * t) * x[j, v]
                s_1 = st[_S1, v]
                s_2 = st[_S2, v]
                s_3 = st[_S3, v]
                s_4 = st[_S4, v]
                # Stage i outputs y_i = G**i u + f_i, f_i from the states alone, so the four
                # stages need not wait for each other once u is known.
                b = 1.0 - G
                f1 = b * s_1
                f2 = G * f1 + b * s_2
                f3 = G * f2 + b * s_3
                f4 = G * f3 + b * s_4
                G2 = G * G
                G4 = G2 * G2
                # tanh(z) / z at the estimate z' as num / den; past the clip it continues as
                # tanh(clip) / |z'|, which the |z'| in den does without a branch.
                ze = xd - k * st[_Y4, v]
                az = abs(ze)
                az = az if az > TANH_CLIP else TANH_CLIP
                zc = ze if ze > -TANH_CLIP else -TANH_CLIP
                zc = zc if zc < TANH_CLIP else TANH_CLIP
                z2 = zc * zc
                num = tanh_pade_num(z2) * TANH_CLIP
                den = tanh_pade_den(z2) * az
                # u = t (xd - k y4) with y4 = G**4 u + f4 and t = num / den, solved:
                u = num * (xd - k * f4) / (den + k * num * G4)
                y1 = G * u + f1
                y2 = G2 * u + f2
                y3 = G2 * G * u + f3
                y = G4 * u + f4
                st[_S1, v] = 2.0 * y1 - s_1
                st[_S2, v] = 2.0 * y2 - s_2
                st[_S3, v] = 2.0 * y3 - s_3
                st[_S4, v] = 2.0 * y - s_4
                st[_Y4, v] = y
                o = (1.0 + k) * (st[_OG0, v] + st[_DOG, v] * t) * y
                # DC blocker: o minus its one-pole low-pass (G = 0: o unchanged, bit for bit).
                sd = st[_DCS, v]
                w = (o - sd) * st[_DCG, v]
                lp = w + sd
                st[_DCS, v] = lp + w
                out[j, v] = o - lp
        i = end
    for v in range(nl):
        st[_GD0, v] += st[_DGD, v] * (n - 1)
        st[_OG0, v] += st[_DOG, v] * (n - 1)
        for row in LADDER_RECURSIVE:
            if abs(st[row, v]) < DENORMAL_FLOOR:
                st[row, v] = 0.0


# ---- one-pole -------------------------------------------------------------------------------

ONEPOLE_LOWPASS, ONEPOLE_HIGHPASS = range(2)

# State rows of the one-pole.
(_OS, _OG, _ODG, _OCL, _OCX, _OP_GT, _OP_RAMP) = range(7)
ONEPOLE_STATE = _OP_RAMP + COEFF_STEP
ONEPOLE_UNSET = _OG  # reset_state writes -1.0 here
ONEPOLE_RECURSIVE = (_OS,)


@njit(cache=True, error_model="numpy")
def onepole_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """6 dB/oct TPT one-pole low- or high-pass (params: mode, cutoff_hz, key_track; inputs:
    in, key; output: out). Response = the bilinear transform (cutoff prewarped) of 1 / (1 + s)
    or s / (1 + s): -3 dB exactly at the cutoff, 0 dB passband."""
    x = bufs[io[0]]
    key = bufs[io[1]]
    out = bufs[io[2]]
    mode = P[pr[0]]
    cutoff = P[pr[1]]
    kt = P[pr[2]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    for v in range(nl):
        hp = int(mode[s0, v] + 0.5) == ONEPOLE_HIGHPASS
        st[_OCL, v] = -1.0 if hp else 1.0
        st[_OCX, v] = 1.0 if hp else 0.0
        if st[_OG, v] < 0.0:
            g = prewarp(key_cutoff(cutoff[s0, v], kt[s0, v], key[s0, v]), sr)
            st[_OG, v] = g / (1.0 + g)
    i = s0
    while i < s1:
        end = min(i + COEFF_STEP, s1)
        e = end - 1
        inv = 1.0 / (end - i)
        chunk_prewarp(cutoff, kt, key, e, nl, sr, st, _OP_GT)
        for v in range(nl):
            g = st[_OP_GT, v]
            st[_ODG, v] = (g / (1.0 + g) - st[_OG, v]) * inv
        for j in range(end - i):
            c = _OP_RAMP + j
            for v in range(nl):
                st[c, v] = st[_OG, v] + st[_ODG, v] * (j + 1)
        last = _OP_RAMP + (end - i - 1)
        for v in range(nl):
            st[_OG, v] = st[last, v]
        for j in range(i, end):
            c = _OP_RAMP + (j - i)
            for v in range(nl):
                G = st[c, v]
                s = st[_OS, v]
                xi = x[j, v]
                w = (xi - s) * G
                lp = w + s
                st[_OS, v] = lp + w
                out[j, v] = st[_OCL, v] * lp + st[_OCX, v] * xi
        i = end
    for v in range(nl):
        if abs(st[_OS, v]) < DENORMAL_FLOOR:
            st[_OS, v] = 0.0
