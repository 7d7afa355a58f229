"""Drive (level-compensated tanh saturation) and 3-band EQ (RBJ shelves and peak) kernels.
The global effects' contract: ``instrument.kernels.delay_lines``."""

import math

from numba import njit

from instrument.kernels.approx import tanh_approx
from instrument.kernels.coefficients import ramp_step
from instrument.kernels.denormals import flush_denormal
from instrument.kernels.noalias import lane_loop
from instrument.kernels.onepole import dc_block_coeff
from instrument.layout import CTX_SAMPLE_RATE

# ---- drive ----------------------------------------------------------------------------------

DRIVE_REF = 0.5  # level compensation: a sine of this peak keeps its peak at any drive
DRIVE_DC_L, DRIVE_DC_R = 0, 1  # state: the DC blocker's memory per side
DRIVE_STATE = 2


@njit(cache=True, inline="always")
def drive_gains(drive_db, output_db):
    """(input gain, wet gain, dry gain): the wet gain folds in the level compensation
    DRIVE_REF / tanh(g DRIVE_REF) and the output trim; the dry gain is the trim alone."""
    g = 10.0 ** (drive_db / 20.0)
    trim = 10.0 ** (output_db / 20.0)
    return g, trim * DRIVE_REF / math.tanh(g * DRIVE_REF), trim


@lane_loop
def drive_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Saturation: wet = tanh(g x) 0.5 / tanh(0.5 g) with g = 10**(drive_db / 20); out =
    ((1 - mix) x + mix wet) 10**(output_db / 20). Mix is linear (dry and wet are correlated).
    Symmetric, so a sine gains odd harmonics only (measured: 3rd and 5th within 0.01 dB of the
    exact tanh's, even ones below -200 dB), and a sine peaking at 0.5 (-6 dBFS) keeps that peak
    at any drive (level compensation). Gains are exact at both ends of a segment and linear
    between. No oversampling: harmonics above Nyquist fold back (measured in the tests).

    ``dc_block_hz`` > 0 (the fourth parameter) puts a TPT one-pole high-pass at that corner
    (coefficient taken at each segment's start) on tanh(g x), before the wet gain: a symmetric
    curve still gives an asymmetric waveform (a resonant low-passed saw) a mean, which then
    leaves with it (measured in tests/presets/test_gain_staging.py). 0, the default, runs the loop
    above unchanged."""
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    drive_db = P[pr[0]]
    mix = P[pr[1]]
    output_db = P[pr[2]]
    dcb = P[pr[3]]
    n = s1 - s0
    for v in range(nl):
        g0, hw0, hd0 = drive_gains(drive_db[s0, v], output_db[s0, v])
        g1, hw1, hd1 = drive_gains(drive_db[s1 - 1, v], output_db[s1 - 1, v])
        dg = ramp_step(g0, g1, n)
        dhw = ramp_step(hw0, hw1, n)
        dhd = ramp_step(hd0, hd1, n)
        gdc = dc_block_coeff(dcb[s0, v], ctx[CTX_SAMPLE_RATE, v])
        if gdc > 0.0:
            m_l = st[DRIVE_DC_L, v]
            m_r = st[DRIVE_DC_R, v]
            for i in range(s0, s1):
                k = i - s0
                g = g0 + dg * k
                m = mix[i, v]
                dry = (1.0 - m) * (hd0 + dhd * k)
                wet = m * (hw0 + dhw * k)
                xl = in_l[i, v]
                xr = in_r[i, v]
                tl = tanh_approx(g * xl)
                tr = tanh_approx(g * xr)
                wl = (tl - m_l) * gdc
                lpl = wl + m_l
                m_l = lpl + wl
                wr = (tr - m_r) * gdc
                lpr = wr + m_r
                m_r = lpr + wr
                out_l[i, v] = dry * xl + wet * (tl - lpl)
                out_r[i, v] = dry * xr + wet * (tr - lpr)
            st[DRIVE_DC_L, v] = flush_denormal(m_l)
            st[DRIVE_DC_R, v] = flush_denormal(m_r)
            continue
        st[DRIVE_DC_L, v] = 0.0  # off: the blocker starts afresh when turned on
        st[DRIVE_DC_R, v] = 0.0
        # Ramps from the index, not accumulated: no loop-carried value, so the loop vectorizes
        # (800 ns per block accumulated, 250 ns like this).
        for i in range(s0, s1):
            k = i - s0
            g = g0 + dg * k
            m = mix[i, v]
            dry = (1.0 - m) * (hd0 + dhd * k)
            wet = m * (hw0 + dhw * k)
            xl = in_l[i, v]
            xr = in_r[i, v]
            out_l[i, v] = dry * xl + wet * tanh_approx(g * xl)
            out_r[i, v] = dry * xr + wet * tanh_approx(g * xr)


# ---- 3-band EQ ------------------------------------------------------------------------------

EQ_STEP = 16  # coefficients follow the parameters every EQ_STEP samples (3 kHz at 48 kHz)
LOW_SHELF, PEAK, HIGH_SHELF = 0, 1, 2
# Header: cached parameters (7; -1e30 = unset), then per band b0 b1 b2 a1 a2 (15), then the
# TDF-II states z1 z2 per band per side (12).
EQ_PARAMS = 0
EQ_COEF = 7
EQ_Z = EQ_COEF + 15
EQ_STATE = EQ_Z + 12


@njit(cache=True)
def rbj_biquad(kind, freq_hz, gain_db, q, sample_rate):
    """RBJ Audio EQ Cookbook coefficients (b0, b1, b2, a1, a2), normalized by a0. Shelves use
    slope S = 1: gain_db at the far end, gain_db / 2 at freq_hz; the peak has gain_db at
    freq_hz."""
    f = min(max(freq_hz, 1.0), 0.49 * sample_rate)
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f / sample_rate
    cw = math.cos(w0)
    sw = math.sin(w0)
    if kind == PEAK:
        alpha = sw / (2.0 * max(q, 1e-3))
        b0 = 1.0 + alpha * a
        b1 = -2.0 * cw
        b2 = 1.0 - alpha * a
        a0 = 1.0 + alpha / a
        a1 = -2.0 * cw
        a2 = 1.0 - alpha / a
    elif kind == LOW_SHELF:
        t = math.sqrt(2.0 * a) * sw  # 2 sqrt(A) alpha with S = 1
        b0 = a * ((a + 1.0) - (a - 1.0) * cw + t)
        b1 = 2.0 * a * ((a - 1.0) - (a + 1.0) * cw)
        b2 = a * ((a + 1.0) - (a - 1.0) * cw - t)
        a0 = (a + 1.0) + (a - 1.0) * cw + t
        a1 = -2.0 * ((a - 1.0) + (a + 1.0) * cw)
        a2 = (a + 1.0) + (a - 1.0) * cw - t
    else:
        t = math.sqrt(2.0 * a) * sw
        b0 = a * ((a + 1.0) + (a - 1.0) * cw + t)
        b1 = -2.0 * a * ((a - 1.0) + (a + 1.0) * cw)
        b2 = a * ((a + 1.0) + (a - 1.0) * cw - t)
        a0 = (a + 1.0) - (a - 1.0) * cw + t
        a1 = 2.0 * ((a - 1.0) - (a + 1.0) * cw)
        a2 = (a + 1.0) - (a - 1.0) * cw - t
    inv = 1.0 / a0
    return b0 * inv, b1 * inv, b2 * inv, a1 * inv, a2 * inv


@njit(cache=True, inline="always")
def _eq_band(col, band, kind, freq_hz, gain_db, q, sr):
    """Recompute one band's coefficients when its parameters moved (cached in the header)."""
    p = EQ_PARAMS + 2 * band + (band == 2)  # low: 0 1, mid: 2 3 4, high: 5 6
    if (col[p] != freq_hz or col[p + 1] != gain_db
            or (kind == PEAK and col[p + 2] != q)):
        b0, b1, b2, a1, a2 = rbj_biquad(kind, freq_hz, gain_db, q, sr)
        c = EQ_COEF + 5 * band
        col[c] = b0
        col[c + 1] = b1
        col[c + 2] = b2
        col[c + 3] = a1
        col[c + 4] = a2
        col[p] = freq_hz
        col[p + 1] = gain_db
        if kind == PEAK:
            col[p + 2] = q


@lane_loop
def eq_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """3-band EQ: RBJ low shelf, peak and high shelf in series, each a direct form II
    transposed biquad in float64, the same filter on both sides. Measured claim: the magnitude
    response is the analytic one of the cookbook biquads (within 0.01 dB; the shelves reach
    their gain at DC and Nyquist and half of it at their frequency, the peak its gain at its
    frequency). Coefficients are recomputed every EQ_STEP samples, only for bands whose
    parameters moved (no libm call while the knobs rest)."""
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    low_hz = P[pr[0]]
    low_db = P[pr[1]]
    mid_hz = P[pr[2]]
    mid_db = P[pr[3]]
    mid_q = P[pr[4]]
    high_hz = P[pr[5]]
    high_db = P[pr[6]]
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        z = EQ_Z
        l1, l2 = col[z], col[z + 1]
        m1, m2 = col[z + 2], col[z + 3]
        h1, h2 = col[z + 4], col[z + 5]
        r_l1, r_l2 = col[z + 6], col[z + 7]
        r_m1, r_m2 = col[z + 8], col[z + 9]
        r_h1, r_h2 = col[z + 10], col[z + 11]
        i = s0
        while i < s1:
            end = min(i + EQ_STEP, s1)
            _eq_band(col, 0, LOW_SHELF, low_hz[i, v], low_db[i, v], 0.0, sr)
            _eq_band(col, 1, PEAK, mid_hz[i, v], mid_db[i, v], mid_q[i, v], sr)
            _eq_band(col, 2, HIGH_SHELF, high_hz[i, v], high_db[i, v], 0.0, sr)
            c = EQ_COEF
            lb0, lb1, lb2, la1, la2 = col[c], col[c + 1], col[c + 2], col[c + 3], col[c + 4]
            c += 5
            mb0, mb1, mb2, ma1, ma2 = col[c], col[c + 1], col[c + 2], col[c + 3], col[c + 4]
            c += 5
            hb0, hb1, hb2, ha1, ha2 = col[c], col[c + 1], col[c + 2], col[c + 3], col[c + 4]
            for j in range(i, end):
                x = in_l[j, v]
                y = lb0 * x + l1
                l1 = lb1 * x - la1 * y + l2
                l2 = lb2 * x - la2 * y
                x = y
                y = mb0 * x + m1
                m1 = mb1 * x - ma1 * y + m2
                m2 = mb2 * x - ma2 * y
                x = y
                y = hb0 * x + h1
                h1 = hb1 * x - ha1 * y + h2
                h2 = hb2 * x - ha2 * y
                out_l[j, v] = y
                x = in_r[j, v]
                y = lb0 * x + r_l1
                r_l1 = lb1 * x - la1 * y + r_l2
                r_l2 = lb2 * x - la2 * y
                x = y
                y = mb0 * x + r_m1
                r_m1 = mb1 * x - ma1 * y + r_m2
                r_m2 = mb2 * x - ma2 * y
                x = y
                y = hb0 * x + r_h1
                r_h1 = hb1 * x - ha1 * y + r_h2
                r_h2 = hb2 * x - ha2 * y
                out_r[j, v] = y
            i = end
        col[z], col[z + 1] = flush_denormal(l1), flush_denormal(l2)
        col[z + 2], col[z + 3] = flush_denormal(m1), flush_denormal(m2)
        col[z + 4], col[z + 5] = flush_denormal(h1), flush_denormal(h2)
        col[z + 6], col[z + 7] = flush_denormal(r_l1), flush_denormal(r_l2)
        col[z + 8], col[z + 9] = flush_denormal(r_m1), flush_denormal(r_m2)
        col[z + 10], col[z + 11] = flush_denormal(r_h1), flush_denormal(r_h2)
