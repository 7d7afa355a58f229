"""4-pole ladder low-pass kernel with a saturating input stage, voice lanes. Contract:
``instrument.layout``; what the filters share (TPT design, coefficient ramps, key
tracking, denormals, measured costs): ``instrument.kernels.filters``.
"""

import math

from numba import carray, njit

from instrument.kernels.approx import TANH_PADE_CLIP, tanh_pade_den, tanh_pade_num
from instrument.kernels.coefficients import COEFF_STEP, chunk_ramp, ramp_step
from instrument.kernels.denormals import DENORMAL_FLOOR
from instrument.kernels.filters import chunk_prewarp, key_cutoff, prewarp
from instrument.kernels.lane_blocks import block_lanes, stack_f64
from instrument.kernels.noalias import lane_loop
from instrument.kernels.onepole import dc_block_coeff
from instrument.layout import CTX_SAMPLE_RATE, LANE_BLOCK


LADDER_OSC_RESONANCE = 0.95  # where the loop gain at the cutoff, k / 4, reaches 1
LADDER_K_MAX = 4.0 / LADDER_OSC_RESONANCE  # feedback k at resonance 1

# State rows of the ladder (_DCS: the output high-pass's memory, _DCG: its coefficient).
(_S1, _S2, _S3, _S4, _Y4, _G, _DG, _DRV, _GD0, _DGD, _OG0, _DOG, _LAD_GT, _DCS,
 _DCG) = range(15)
LADDER_STATE = 15
LADDER_UNSET = (_G, _DRV)  # reset_state writes -1.0 here: set from the first segment
LADDER_RECURSIVE = (_S1, _S2, _S3, _S4, _Y4, _DCS)


@njit(cache=True, inline="always")
def _ladder_k(resonance):
    """Feedback k for a resonance, clamped to [0, 1]."""
    r = resonance if resonance > 0.0 else 0.0
    r = r if r < 1.0 else 1.0
    return LADDER_K_MAX * r


@njit(cache=True, inline="always")
def _ladder_sample(G, k, xd, og, s_1, s_2, s_3, s_4, y4, dcs, dcg):
    """One sample of one lane: one-pole gain G, feedback k, driven input xd, output gain og
    (times 1 + k here), the four stage states, the last y4 and the DC blocker's memory and
    coefficient in; the new states, y4 and memory, and the output out."""
    # Stage i outputs y_i = G**i u + f_i, f_i from the states alone, so the four stages need
    # not wait for each other once u is known.
    b = 1.0 - G
    f1 = b * s_1
    f2 = G * f1 + b * s_2
    f3 = G * f2 + b * s_3
    f4 = G * f3 + b * s_4
    G2 = G * G
    G4 = G2 * G2
    # tanh(z) / z at the estimate z' as num / den; past the clip it continues as
    # tanh(clip) / |z'|, which the |z'| in den does without a branch.
    ze = xd - k * y4
    az = abs(ze)
    az = az if az > TANH_PADE_CLIP else TANH_PADE_CLIP
    zc = ze if ze > -TANH_PADE_CLIP else -TANH_PADE_CLIP
    zc = zc if zc < TANH_PADE_CLIP else TANH_PADE_CLIP
    z2 = zc * zc
    num = tanh_pade_num(z2) * TANH_PADE_CLIP
    den = tanh_pade_den(z2) * az
    # u = t (xd - k y4) with y4 = G**4 u + f4 and t = num / den, solved:
    u = num * (xd - k * f4) / (den + k * num * G4)
    y1 = G * u + f1
    y2 = G2 * u + f2
    y3 = G2 * G * u + f3
    y = G4 * u + f4
    o = (1.0 + k) * og * y
    # DC blocker: o minus its one-pole low-pass (coefficient 0: o unchanged, bit for bit).
    w = (o - dcs) * dcg
    lp = w + dcs
    return 2.0 * y1 - s_1, 2.0 * y2 - s_2, 2.0 * y3 - s_3, 2.0 * y - s_4, y, lp + w, o - lp


# A lane block's scratch rows: the state rows' own numbers, then the block's input, resonance
# and output samples.
_BX, _BR, _BO = LADDER_STATE, LADDER_STATE + 1, LADDER_STATE + 2
_BLOCK_ROWS = LADDER_STATE + 3
_BLOCK_SIZE = _BLOCK_ROWS * LANE_BLOCK
_BLOCK_IN = (_S1, _S2, _S3, _S4, _Y4, _G, _DG, _GD0, _DGD, _OG0, _DOG, _DCS, _DCG)
_BLOCK_OUT = (_S1, _S2, _S3, _S4, _Y4, _DCS)


@njit(cache=True, inline="always")
def _ladder_blocks(x, res, out, st, i, end, s0, nb):
    """Samples [i, end) of lanes [0, nb) in lane blocks (``kernels.lane_blocks``)."""
    L = carray(stack_f64(_BLOCK_SIZE), (_BLOCK_ROWS, LANE_BLOCK))
    for vb in range(0, nb, LANE_BLOCK):
        for row in _BLOCK_IN:
            for w in range(LANE_BLOCK):
                L[row, w] = st[row, vb + w]
        for j in range(i, end):
            ramp = j - i + 1.0  # the coefficient ramp's position (``chunk_ramp``)
            t = j - s0
            for w in range(LANE_BLOCK):
                L[_BX, w] = x[j, vb + w]
                L[_BR, w] = res[j, vb + w]
            for w in range(LANE_BLOCK):
                (L[_S1, w], L[_S2, w], L[_S3, w], L[_S4, w], L[_Y4, w], L[_DCS, w],
                 L[_BO, w]) = _ladder_sample(
                    L[_G, w] + L[_DG, w] * ramp, _ladder_k(L[_BR, w]),
                    (L[_GD0, w] + L[_DGD, w] * t) * L[_BX, w], L[_OG0, w] + L[_DOG, w] * t,
                    L[_S1, w], L[_S2, w], L[_S3, w], L[_S4, w], L[_Y4, w], L[_DCS, w],
                    L[_DCG, w])
            for w in range(LANE_BLOCK):
                out[j, vb + w] = L[_BO, w]
        for row in _BLOCK_OUT:
            for w in range(LANE_BLOCK):
                st[row, vb + w] = L[row, w]


@lane_loop
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
    passes at 0 dB; the high-pass takes it out (measured in tests/presets/test_gain_staging.py). It
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
    nb = block_lanes(nl, min(st.shape[1], out.shape[1]))
    nl = max(nl, nb)
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
            st[_DGD, v] = ramp_step(gd0, gd1, n)
            st[_DOG, v] = ramp_step(og0, og1, n)
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
        if nb > 0:
            _ladder_blocks(x, res, out, st, i, end, s0, nb)
        else:
            for j in range(i, end):
                ramp = j - i + 1.0  # the coefficient ramp's position (``chunk_ramp``)
                t = j - s0
                for v in range(nl):
                    s_1, s_2, s_3, s_4, y, dcs, o = _ladder_sample(
                        st[_G, v] + st[_DG, v] * ramp, _ladder_k(res[j, v]),
                        (st[_GD0, v] + st[_DGD, v] * t) * x[j, v], st[_OG0, v] + st[_DOG, v] * t,
                        st[_S1, v], st[_S2, v], st[_S3, v], st[_S4, v], st[_Y4, v], st[_DCS, v],
                        st[_DCG, v])
                    st[_S1, v] = s_1
                    st[_S2, v] = s_2
                    st[_S3, v] = s_3
                    st[_S4, v] = s_4
                    st[_Y4, v] = y
                    st[_DCS, v] = dcs
                    out[j, v] = o
        chunk_ramp(st, _G, _DG, 1, end - i, nl)
        i = end
    for v in range(nl):
        st[_GD0, v] += st[_DGD, v] * (n - 1)
        st[_OG0, v] += st[_DOG, v] * (n - 1)
        for row in LADDER_RECURSIVE:
            if abs(st[row, v]) < DENORMAL_FLOOR:
                st[row, v] = 0.0
