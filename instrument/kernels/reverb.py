"""FDN reverb kernel: stereo predelay, Schroeder allpasses and an 8-line feedback delay
network with damping, RT60 set in seconds. Contract and delay-line helpers:
``instrument.kernels.delay_lines``."""

import math

from numba import njit

from instrument.kernels.approx import exp_approx
from instrument.kernels.coefficients import HALF_PI, TWO_PI, ramp_step
from instrument.kernels.delay_lines import GUARD, hermite_read, linear_read, wrap, write_line
from instrument.kernels.denormals import flush_denormal
from instrument.kernels.noalias import lane_loop
from instrument.layout import CTX_SAMPLE_RATE

_LN_1000 = 6.907755278982137  # ln(10**3): RT60 is a 60 dB (1000x amplitude) decay

# ---- reverb ---------------------------------------------------------------------------------

# An 8-line feedback delay network (Jot): Householder feedback matrix A = I - (2/8) 1 1^T
# (lossless, O(N)). Each line ends in a gain g_k = 10**(-3 d_k / (fs T60)) and a one-pole
# low-pass with unity DC gain whose pole b_k makes |H_k| = g_k at the damping frequency: every
# mode decays 60 dB in T60 at DC and in T60 / 2 at damping_hz, whatever the line length (a
# fixed-cutoff low-pass would shorten the decay at all frequencies, more so for short lines:
# measured 20% short at 500 Hz with size 0 and 6 s). Lines are read with Hermite
# interpolation (linear interpolation at a half-sample fraction loses 0.02 dB per pass at 1 kHz:
# 15% short RT60 there with short lines and long decays). Before the network: a stereo
# predelay and two Schroeder allpasses per side (echo density from the first milliseconds).
# Line lengths (ms at size 1) are mutually incommensurate; size scales them from 0.25x to 1x,
# and the output by sqrt(scale), so the level of the tail does not depend on size.
RV_LINES = 8
RV_LENGTHS_MS = (25.31, 29.87, 34.13, 40.27, 46.73, 54.11, 63.71, 74.93)
RV_SCALE_MIN = 0.25
RV_PREDELAY_MAX_MS = 200.0
RV_ALLPASS_MS = (4.771, 3.595, 4.931, 3.713)  # left 1, left 2, right 1, right 2
RV_ALLPASS_G = 0.6
RV_OUT_GAIN = 0.35
# Hadamard rows (Sylvester, order 8): inputs on rows 1 and 2, outputs on rows 5 and 6; all
# orthogonal to each other and to the all-ones direction the Householder matrix reflects.
RV_IN_L = (1, -1, 1, -1, 1, -1, 1, -1)
RV_IN_R = (1, 1, -1, -1, 1, 1, -1, -1)
RV_OUT_L = (1, -1, 1, -1, -1, 1, -1, 1)
RV_OUT_R = (1, 1, -1, -1, -1, -1, 1, 1)

# Header rows, then scratch rows for one chunk (scale, diffused input, line reads), then the
# lines. Each FDN line has GUARD extra slots mirroring its first ones, so a Hermite read is
# four consecutive slots after a single wrap.
(RV_WP, RV_WF, RV_NP, RV_NF, RV_SCALE, RV_PRE, RV_CS, RV_AP_W, RV_AP_N, RV_AP_BASE,
 RV_PL_BASE, RV_FDN_BASE) = (0, 1, 2, 3, 4, 5, 6, 7, 11, 15, 19, 20)
RV_LP = 21  # 8 rows each: damping states, line lengths in samples at size 1
RV_LEN = RV_LP + RV_LINES
# The network runs in chunks: all eight lines are read for a whole chunk, then the chunk's
# samples are mixed and written. Exact, because a chunk is shorter than the shortest line
# (6.3 ms at size 0: 303 samples at 48 kHz) minus the interpolation taps.
RV_CHUNK = 64
RV_SC = RV_LEN + RV_LINES
RV_UL = RV_SC + RV_CHUNK
RV_UR = RV_UL + RV_CHUNK
RV_R = RV_UR + RV_CHUNK
RV_HEADER = RV_R + RV_LINES * RV_CHUNK


@njit(cache=True, inline="always")
def reverb_line_gains(log_g, cos_wd):
    """(g, a) of one line: gain g = exp(log_g) (log_g = ln of the 60 dB-in-T60 loss over the
    line's length) and the low-pass ``lp += a (x - lp)`` (a = 1 - b, unity DC gain) whose
    magnitude is g at the damping frequency (cos_wd = cos of it in radians per sample), so the
    loss per sample doubles there. b is the smaller root of
    (1 - g^2) b^2 - 2 (1 - g^2 cos wd) b + (1 - g^2) = 0, in the form stable for g -> 1."""
    g = exp_approx(max(log_g, -40.0))
    g2 = g * g
    u = 1.0 - g2 * cos_wd
    w = 1.0 - g2
    b = w / (u + math.sqrt(max(u * u - w * w, 0.0)))
    return g, 1.0 - b


@njit(cache=True, inline="always")
def _scale_of(size):
    return RV_SCALE_MIN + (1.0 - RV_SCALE_MIN) * min(max(size, 0.0), 1.0)


@njit(cache=True, inline="always")
def _allpass(col, base, w, n, x, g):
    """Schroeder allpass on the line col[base:base + n] at index w: v = x + g d, y = d - g v.
    Returns (y, next w)."""
    d = col[base + w]
    v = x + g * d
    col[base + w] = flush_denormal(v)
    w += 1
    return d - g * v, w - n * (w >= n)


@lane_loop
def reverb_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """FDN reverb, 8 lines. Measured claims (Schroeder backward integration of the impulse
    response): the decay takes ``decay_s`` to fall 60 dB in the octave band at 500 Hz (with
    damping_hz well above it) and half as long in the third-octave band at ``damping_hz``, at
    any size. ``size`` and ``predelay_ms`` glide through an internal one-pole (a size change
    bends pitch in the tail, never clicks); line gains and damping follow the parameters once
    per segment. While the size rests, each line's interpolation weights are computed once per
    chunk. Mix is equal-power: dry cos(pi/2 mix), wet sin(pi/2 mix), exactly 0 and 1 at the
    ends.
    """
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    size_p = P[pr[0]]
    decay_s = P[pr[1]]
    damping = P[pr[2]]
    predelay = P[pr[3]]
    mix = P[pr[4]]
    n = s1 - s0
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        ms = sr * 0.001
        np_ = int(col[RV_NP])
        nf = int(col[RV_NF])
        stride = nf + GUARD
        pl = int(col[RV_PL_BASE])
        pr_ = pl + np_
        fdn = int(col[RV_FDN_BASE])
        wp = int(col[RV_WP])
        wf = int(col[RV_WF])
        cs = col[RV_CS]
        sc = col[RV_SCALE]
        if sc < 0.0:
            sc = _scale_of(size_p[s0, v])
        pre = col[RV_PRE]
        if pre < 0.0:
            pre = min(max(predelay[s0, v] * ms, 0.0), np_ - 2.0)
        k60 = -_LN_1000 / (max(decay_s[s0, v], 1e-3) * sr)
        cw = math.cos(TWO_PI * min(max(damping[s0, v], 1.0), 0.49 * sr) / sr)
        g0, a0 = reverb_line_gains(k60 * col[RV_LEN] * sc, cw)
        g1, a1 = reverb_line_gains(k60 * col[RV_LEN + 1] * sc, cw)
        g2, a2 = reverb_line_gains(k60 * col[RV_LEN + 2] * sc, cw)
        g3, a3 = reverb_line_gains(k60 * col[RV_LEN + 3] * sc, cw)
        g4, a4 = reverb_line_gains(k60 * col[RV_LEN + 4] * sc, cw)
        g5, a5 = reverb_line_gains(k60 * col[RV_LEN + 5] * sc, cw)
        g6, a6 = reverb_line_gains(k60 * col[RV_LEN + 6] * sc, cw)
        g7, a7 = reverb_line_gains(k60 * col[RV_LEN + 7] * sc, cw)
        lp0, lp1, lp2, lp3 = col[RV_LP], col[RV_LP + 1], col[RV_LP + 2], col[RV_LP + 3]
        lp4, lp5, lp6, lp7 = col[RV_LP + 4], col[RV_LP + 5], col[RV_LP + 6], col[RV_LP + 7]
        dry = math.sin(HALF_PI * (1.0 - mix[s0, v]))
        wet = math.sin(HALF_PI * mix[s0, v])
        ddry = ramp_step(dry, math.sin(HALF_PI * (1.0 - mix[s1 - 1, v])), n)
        dwet = ramp_step(wet, math.sin(HALF_PI * mix[s1 - 1, v]), n)
        ap_w0 = int(col[RV_AP_W])
        ap_w1 = int(col[RV_AP_W + 1])
        ap_w2 = int(col[RV_AP_W + 2])
        ap_w3 = int(col[RV_AP_W + 3])
        ap_n0 = int(col[RV_AP_N])
        ap_n1 = int(col[RV_AP_N + 1])
        ap_n2 = int(col[RV_AP_N + 2])
        ap_n3 = int(col[RV_AP_N + 3])
        ap_b0 = int(col[RV_AP_BASE])
        ap_b1 = int(col[RV_AP_BASE + 1])
        ap_b2 = int(col[RV_AP_BASE + 2])
        ap_b3 = int(col[RV_AP_BASE + 3])
        # A chunk must be shorter than the shortest line (minus the Hermite taps): always
        # RV_CHUNK above 16 kHz, shorter below.
        chunk = max(1, min(RV_CHUNK, int(col[RV_LEN] * RV_SCALE_MIN) - GUARD))
        i = s0
        while i < s1:
            c = min(chunk, s1 - i)
            # 1. Input: predelay (written, then read: 0 ms allowed), allpasses, size glide.
            steady = True
            for j in range(c):
                col[pl + wp] = flush_denormal(in_l[i + j, v])
                col[pr_ + wp] = flush_denormal(in_r[i + j, v])
                pt = min(max(predelay[i + j, v] * ms, 0.0), np_ - 2.0)
                pre = pt + cs * (pre - pt)
                ul = linear_read(col, pl, np_, wp, pre)
                ur = linear_read(col, pr_, np_, wp, pre)
                wp += 1
                wp -= np_ * (wp >= np_)
                ul, ap_w0 = _allpass(col, ap_b0, ap_w0, ap_n0, ul, RV_ALLPASS_G)
                ul, ap_w1 = _allpass(col, ap_b1, ap_w1, ap_n1, ul, RV_ALLPASS_G)
                ur, ap_w2 = _allpass(col, ap_b2, ap_w2, ap_n2, ur, RV_ALLPASS_G)
                ur, ap_w3 = _allpass(col, ap_b3, ap_w3, ap_n3, ur, RV_ALLPASS_G)
                col[RV_UL + j] = ul
                col[RV_UR + j] = ur
                target = _scale_of(size_p[i + j, v])
                moved = target + cs * (sc - target)
                steady = steady and moved == sc
                sc = moved
                col[RV_SC + j] = sc
            # 2. Every line read for the whole chunk (4-point Hermite).
            for k in range(RV_LINES):
                base = fdn + k * stride
                length = col[RV_LEN + k]
                out = RV_R + k * RV_CHUNK
                if steady:  # one fraction for the chunk: weights once
                    pos = wf - length * sc
                    fl = math.floor(pos)
                    t = pos - fl
                    j0 = wrap(int(fl) - 1, nf)
                    t2 = t * t
                    t3 = t2 * t
                    wm1 = -0.5 * t3 + t2 - 0.5 * t
                    w0 = 1.5 * t3 - 2.5 * t2 + 1.0
                    w1 = -1.5 * t3 + 2.0 * t2 + 0.5 * t
                    w2 = 0.5 * t3 - 0.5 * t2
                    # Two runs without a wrap inside (plain FIR loops, which vectorize).
                    m = min(c, nf - j0)
                    q = base + j0
                    for j in range(m):
                        col[out + j] = (wm1 * col[q + j] + w0 * col[q + j + 1]
                                        + w1 * col[q + j + 2] + w2 * col[q + j + 3])
                    q = base - m
                    for j in range(m, c):
                        col[out + j] = (wm1 * col[q + j] + w0 * col[q + j + 1]
                                        + w1 * col[q + j + 2] + w2 * col[q + j + 3])
                else:
                    for j in range(c):
                        col[out + j] = hermite_read(col, base, nf, wf + j,
                                                    length * col[RV_SC + j])
            # 3. Damping, gains, Householder mix, input, write; outputs. Written out line by
            # line with the state in locals and the Hadamard signs as code (with loops over
            # the lines and per-line rows in the column: 2.9 us per block, against 2.5 us).
            r = RV_R
            for j in range(c):
                lp0 += a0 * (col[r + j] - lp0)
                lp1 += a1 * (col[r + RV_CHUNK + j] - lp1)
                lp2 += a2 * (col[r + 2 * RV_CHUNK + j] - lp2)
                lp3 += a3 * (col[r + 3 * RV_CHUNK + j] - lp3)
                lp4 += a4 * (col[r + 4 * RV_CHUNK + j] - lp4)
                lp5 += a5 * (col[r + 5 * RV_CHUNK + j] - lp5)
                lp6 += a6 * (col[r + 6 * RV_CHUNK + j] - lp6)
                lp7 += a7 * (col[r + 7 * RV_CHUNK + j] - lp7)
                y0 = g0 * lp0
                y1 = g1 * lp1
                y2 = g2 * lp2
                y3 = g3 * lp3
                y4 = g4 * lp4
                y5 = g5 * lp5
                y6 = g6 * lp6
                y7 = g7 * lp7
                # Householder: y - (2/8) sum(y); inputs on Hadamard rows RV_IN_L, RV_IN_R.
                total = 0.25 * ((y0 + y1) + (y2 + y3) + (y4 + y5) + (y6 + y7))
                ul = col[RV_UL + j]
                ur = col[RV_UR + j]
                plus = ul + ur - total
                minus = ur - ul
                q = fdn + wf
                mirror = nf * (wf < GUARD)
                write_line(col, q + 0 * stride, mirror, y0 + plus)
                write_line(col, q + 1 * stride, mirror, y1 - total + minus)
                write_line(col, q + 2 * stride, mirror, y2 - total - minus)
                write_line(col, q + 3 * stride, mirror, y3 - total - (ul + ur))
                write_line(col, q + 4 * stride, mirror, y4 + plus)
                write_line(col, q + 5 * stride, mirror, y5 - total + minus)
                write_line(col, q + 6 * stride, mirror, y6 - total - minus)
                write_line(col, q + 7 * stride, mirror, y7 - total - (ul + ur))
                wf += 1
                wf -= nf * (wf >= nf)
                # Outputs on Hadamard rows RV_OUT_L, RV_OUT_R.
                wet_l = (y0 - y1) + (y2 - y3) - (y4 - y5) - (y6 - y7)
                wet_r = (y0 + y1) - (y2 + y3) - (y4 + y5) + (y6 + y7)
                level = wet * RV_OUT_GAIN * math.sqrt(col[RV_SC + j])
                out_l[i + j, v] = dry * in_l[i + j, v] + level * wet_l
                out_r[i + j, v] = dry * in_r[i + j, v] + level * wet_r
                dry += ddry
                wet += dwet
            i += c
        col[RV_LP], col[RV_LP + 1] = flush_denormal(lp0), flush_denormal(lp1)
        col[RV_LP + 2], col[RV_LP + 3] = flush_denormal(lp2), flush_denormal(lp3)
        col[RV_LP + 4], col[RV_LP + 5] = flush_denormal(lp4), flush_denormal(lp5)
        col[RV_LP + 6], col[RV_LP + 7] = flush_denormal(lp6), flush_denormal(lp7)
        col[RV_WP] = wp
        col[RV_WF] = wf
        col[RV_SCALE] = sc
        col[RV_PRE] = pre
        col[RV_AP_W] = ap_w0
        col[RV_AP_W + 1] = ap_w1
        col[RV_AP_W + 2] = ap_w2
        col[RV_AP_W + 3] = ap_w3
