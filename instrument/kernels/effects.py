"""Global effect kernels: stereo delay, chorus, FDN reverb, drive, 3-band EQ.
Contract: ``instrument.modules.layout``.

Each kernel has inputs ``left``, ``right`` and outputs ``out_left``, ``out_right``. They run in
the global graph (one lane) but process any number of lanes, each on its own state column
(``col = st[:, v]``, lane-outer, the state in locals through the sample loop): the work per
sample is recursive (delay lines, filters), so nothing vectorizes across one lane except
drive's element-wise loop; what matters is no libm call per sample. Coefficients that need
exp, sin, cos or pow are taken once per segment (a block at most): interpolated linearly
between the segment's ends where a parameter moves smoothly (delay damping, mixes, drive
gains), held for the segment (reverb line gains) or for EQ_STEP samples (EQ); all exact while
the parameter rests.

Delay lines live in the node's state column, sized by ``Module.prepare`` from the maximum time;
header rows at the top of the column hold the line sizes and the constants ``reset_state``
computes from the sample rate, so the kernels allocate nothing. Every value written into a
line or left in a recursive filter is flushed to 0 below ``DENORMAL_FLOOR``: a tail decays to
exact zeros, never through denormals (tests/test_effects.py times every second of a tail
against a sounding block).
"""

import math

from numba import njit

from instrument.kernels.approx import exp_approx
from instrument.modules.layout import CTX_SAMPLE_RATE

DENORMAL_FLOOR = 1e-30
_HALF_PI = 0.5 * math.pi
_TWO_PI = 2.0 * math.pi
_LN_1000 = 6.907755278982137  # ln(10**3): RT60 is a 60 dB (1000x amplitude) decay


# ---- shared helpers -------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _wrap(j, n):
    """j in [-n, 2n) -> [0, n) without a branch."""
    return j + n * (j < 0) - n * (j >= n)


@njit(cache=True, inline="always")
def _flush(x):
    """x, or 0.0 when |x| < DENORMAL_FLOOR (a select, no branch)."""
    return x * (abs(x) >= DENORMAL_FLOOR)


GUARD = 3  # slots after a line mirroring its first ones: a Hermite read never wraps inside


@njit(cache=True, inline="always")
def _write_line(col, q, mirror, value):
    """Write one FDN line sample (denormal-flushed) at ``q`` and at its guard copy."""
    f = _flush(value)
    col[q] = f
    col[q + mirror] = f


@njit(cache=True, inline="always")
def _hermite_read(col, base, n, w, d):
    """The line ``col[base:base + n]`` (followed by GUARD mirrored slots) read ``d`` samples
    (fractional, 2 <= d <= n - 3) behind the write index ``w``: 4-point, 3rd-order Hermite
    (Catmull-Rom) on four consecutive slots. Exact at whole ``d`` (t == 0 returns the stored
    sample itself)."""
    pos = w - d
    fl = math.floor(pos)
    t = pos - fl
    q = base + _wrap(int(fl) - 1, n)
    ym1 = col[q]
    y0 = col[q + 1]
    y1 = col[q + 2]
    y2 = col[q + 3]
    c1 = 0.5 * (y1 - ym1)
    c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2
    c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1)
    return ((c3 * t + c2) * t + c1) * t + y0


@njit(cache=True, inline="always")
def _write_guarded(col, base, n, w, x):
    """Store x at index w of a guarded line (and in its mirror slot when w < GUARD)."""
    col[base + w] = x
    col[base + w + n * (w < GUARD)] = x


@njit(cache=True, inline="always")
def _linear_read(col, base, n, w, d):
    """The line read ``d`` samples (fractional, 0 <= d <= n - 2) behind index ``w`` with
    linear interpolation."""
    pos = w - d
    fl = math.floor(pos)
    t = pos - fl
    j = int(fl)
    j += n * (j < 0)
    j1 = _wrap(j + 1, n)
    y0 = col[base + j]
    return y0 + t * (col[base + j1] - y0)


@njit(cache=True, inline="always")
def onepole_a(cutoff_hz, sample_rate):
    """Gain ``a`` of the one-pole low-pass ``y += a * (x - y)`` (impulse-invariant: the pole
    at exp(-2 pi fc / fs)); unity gain at DC."""
    fc = min(max(cutoff_hz, 1.0), 0.49 * sample_rate)
    return 1.0 - math.exp(-_TWO_PI * fc / sample_rate)


@njit(cache=True, inline="always")
def _ramp(x0, x1, n):
    """Per-sample step from x0 (first sample) to x1 (last sample) over n samples."""
    return (x1 - x0) / (n - 1) if n > 1 else 0.0


# ---- delay ----------------------------------------------------------------------------------

# Header rows. TIME and PP hold their internal smoothers' values (-1: unset, jump on first use).
DL_W, DL_N, DL_TIME, DL_TIME1, DL_LPL, DL_LPR, DL_PP, DL_CT, DL_CP = range(9)
DL_HEADER = 9


@njit(cache=True, error_model="numpy")
def delay_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Stereo delay with feedback, ping-pong and damping.

    Measured claims (tests/test_effects.py): an impulse comes back exactly ``time_ms`` later
    (a whole number of samples is an exact copy: Hermite interpolation at t = 0); each repeat
    has ``feedback`` times the DC sum of the one before (the damping low-pass in the feedback
    path has unity DC gain); with ``ping_pong`` on, the mono sum goes into the left line and the
    feedback crosses over, so repeats alternate left, right, left (switching crossfades the
    routing through a one-pole). The delay time glides through two one-poles in series (on top
    of the parameter smoothing: no kink at the start of a glide) and is read with Hermite
    interpolation, so a time change bends pitch instead of clicking (a 20 ms step of the raw
    parameter leaves nothing above 3 kHz louder than -60 dB). Mix is equal-power: dry
    cos(pi/2 mix), wet sin(pi/2 mix), exactly 0 and 1 at the ends.
    """
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    time_ms = P[pr[0]]
    feedback = P[pr[1]]
    ping_pong = P[pr[2]]
    damping = P[pr[3]]
    mix = P[pr[4]]
    n = s1 - s0
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        ms = sr * 0.001
        size = int(col[DL_N])
        base_l = DL_HEADER
        base_r = DL_HEADER + size + GUARD
        dmax = size - 3.0
        w = int(col[DL_W])
        d = col[DL_TIME]
        d1 = col[DL_TIME1]
        if d < 0.0:
            d = min(max(time_ms[s0, v] * ms, 2.0), dmax)
            d1 = d
        p = col[DL_PP]
        if p < 0.0:
            p = ping_pong[s0, v]
        lpl = col[DL_LPL]
        lpr = col[DL_LPR]
        ct = col[DL_CT]
        cp = col[DL_CP]
        a = onepole_a(damping[s0, v], sr)
        da = _ramp(a, onepole_a(damping[s1 - 1, v], sr), n)
        dry = math.sin(_HALF_PI * (1.0 - mix[s0, v]))
        wet = math.sin(_HALF_PI * mix[s0, v])
        ddry = _ramp(dry, math.sin(_HALF_PI * (1.0 - mix[s1 - 1, v])), n)
        dwet = _ramp(wet, math.sin(_HALF_PI * mix[s1 - 1, v]), n)
        for i in range(s0, s1):
            target = min(max(time_ms[i, v] * ms, 2.0), dmax)
            d1 = target + ct * (d1 - target)
            d = d1 + ct * (d - d1)
            rl = _hermite_read(col, base_l, size, w, d)
            rr = _hermite_read(col, base_r, size, w, d)
            lpl += a * (rl - lpl)
            lpr += a * (rr - lpr)
            pt = ping_pong[i, v]
            p = pt + cp * (p - pt)
            q = 1.0 - p
            g = feedback[i, v]
            xl = in_l[i, v]
            xr = in_r[i, v]
            wl = q * xl + p * 0.5 * (xl + xr) + g * (q * lpl + p * lpr)
            wr = q * xr + g * (q * lpr + p * lpl)
            _write_guarded(col, base_l, size, w, _flush(wl))
            _write_guarded(col, base_r, size, w, _flush(wr))
            w += 1
            w -= size * (w >= size)
            out_l[i, v] = dry * xl + wet * rl
            out_r[i, v] = dry * xr + wet * rr
            a += da
            dry += ddry
            wet += dwet
        col[DL_W] = w
        col[DL_TIME] = d
        col[DL_TIME1] = d1
        col[DL_PP] = p
        col[DL_LPL] = _flush(lpl)
        col[DL_LPR] = _flush(lpr)


# ---- chorus ---------------------------------------------------------------------------------

CH_W, CH_N, CH_COS, CH_SIN = range(4)
CH_HEADER = 4
_C120 = -0.5
_S120 = 0.8660254037844386  # sin(120 degrees)


@njit(cache=True, error_model="numpy")
def chorus_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Stereo chorus: three taps per side on a sine LFO at ``rate_hz``, 120 degrees apart; the
    right side's taps run a quarter cycle ahead of the left's. Each tap's delay is
    ``delay_ms + depth_ms * sin(phase)`` (measured: an impulse train comes back within
    delay_ms +- depth_ms, sweeping that whole range once per 1 / rate_hz), read with 4-point
    Hermite interpolation. The LFO is a rotating (cos, sin) pair, renormalized every
    segment; its increment is taken at the segment start. Wet = the mean of the three taps;
    mix is linear (dry and wet are correlated): (1 - mix) dry + mix wet.
    """
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    rate = P[pr[0]]
    depth_ms = P[pr[1]]
    delay_ms = P[pr[2]]
    mix = P[pr[3]]
    third = 1.0 / 3.0
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        ms = sr * 0.001
        size = int(col[CH_N])
        base_l = CH_HEADER
        base_r = CH_HEADER + size + GUARD
        dmax = size - 3.0
        w = int(col[CH_W])
        c = col[CH_COS]
        s = col[CH_SIN]
        inc = _TWO_PI * rate[s0, v] / sr
        cw = math.cos(inc)
        sw = math.sin(inc)
        for i in range(s0, s1):
            base = delay_ms[i, v] * ms
            dep = depth_ms[i, v] * ms
            s1_ = s * _C120 + c * _S120
            c1_ = c * _C120 - s * _S120
            s2_ = s * _C120 - c * _S120
            c2_ = c * _C120 + s * _S120
            wl = (_hermite_read(col, base_l, size, w, min(max(base + dep * s, 2.0), dmax))
                  + _hermite_read(col, base_l, size, w, min(max(base + dep * s1_, 2.0), dmax))
                  + _hermite_read(col, base_l, size, w, min(max(base + dep * s2_, 2.0), dmax)))
            wr = (_hermite_read(col, base_r, size, w, min(max(base + dep * c, 2.0), dmax))
                  + _hermite_read(col, base_r, size, w, min(max(base + dep * c1_, 2.0), dmax))
                  + _hermite_read(col, base_r, size, w, min(max(base + dep * c2_, 2.0), dmax)))
            xl = in_l[i, v]
            xr = in_r[i, v]
            _write_guarded(col, base_l, size, w, _flush(xl))
            _write_guarded(col, base_r, size, w, _flush(xr))
            w += 1
            w -= size * (w >= size)
            m = mix[i, v]
            out_l[i, v] = (1.0 - m) * xl + m * third * wl
            out_r[i, v] = (1.0 - m) * xr + m * third * wr
            c, s = c * cw - s * sw, s * cw + c * sw
        norm = 1.0 / math.sqrt(c * c + s * s)
        col[CH_COS] = c * norm
        col[CH_SIN] = s * norm
        col[CH_W] = w


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
    col[base + w] = _flush(v)
    w += 1
    return d - g * v, w - n * (w >= n)


@njit(cache=True, error_model="numpy")
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
        cw = math.cos(_TWO_PI * min(max(damping[s0, v], 1.0), 0.49 * sr) / sr)
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
        dry = math.sin(_HALF_PI * (1.0 - mix[s0, v]))
        wet = math.sin(_HALF_PI * mix[s0, v])
        ddry = _ramp(dry, math.sin(_HALF_PI * (1.0 - mix[s1 - 1, v])), n)
        dwet = _ramp(wet, math.sin(_HALF_PI * mix[s1 - 1, v]), n)
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
                col[pl + wp] = _flush(in_l[i + j, v])
                col[pr_ + wp] = _flush(in_r[i + j, v])
                pt = min(max(predelay[i + j, v] * ms, 0.0), np_ - 2.0)
                pre = pt + cs * (pre - pt)
                ul = _linear_read(col, pl, np_, wp, pre)
                ur = _linear_read(col, pr_, np_, wp, pre)
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
                    j0 = _wrap(int(fl) - 1, nf)
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
                        pos = wf + j - length * col[RV_SC + j]
                        fl = math.floor(pos)
                        t = pos - fl
                        q = base + _wrap(int(fl) - 1, nf)
                        ym1 = col[q]
                        y0 = col[q + 1]
                        y1 = col[q + 2]
                        y2 = col[q + 3]
                        c1 = 0.5 * (y1 - ym1)
                        c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2
                        c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1)
                        col[out + j] = ((c3 * t + c2) * t + c1) * t + y0
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
                _write_line(col, q + 0 * stride, mirror, y0 + plus)
                _write_line(col, q + 1 * stride, mirror, y1 - total + minus)
                _write_line(col, q + 2 * stride, mirror, y2 - total - minus)
                _write_line(col, q + 3 * stride, mirror, y3 - total - (ul + ur))
                _write_line(col, q + 4 * stride, mirror, y4 + plus)
                _write_line(col, q + 5 * stride, mirror, y5 - total + minus)
                _write_line(col, q + 6 * stride, mirror, y6 - total - minus)
                _write_line(col, q + 7 * stride, mirror, y7 - total - (ul + ur))
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
        col[RV_LP], col[RV_LP + 1] = _flush(lp0), _flush(lp1)
        col[RV_LP + 2], col[RV_LP + 3] = _flush(lp2), _flush(lp3)
        col[RV_LP + 4], col[RV_LP + 5] = _flush(lp4), _flush(lp5)
        col[RV_LP + 6], col[RV_LP + 7] = _flush(lp6), _flush(lp7)
        col[RV_WP] = wp
        col[RV_WF] = wf
        col[RV_SCALE] = sc
        col[RV_PRE] = pre
        col[RV_AP_W] = ap_w0
        col[RV_AP_W + 1] = ap_w1
        col[RV_AP_W + 2] = ap_w2
        col[RV_AP_W + 3] = ap_w3


# ---- drive ----------------------------------------------------------------------------------

DRIVE_REF = 0.5  # level compensation: a sine of this peak keeps its peak at any drive
_TANH_CLIP = 20.0  # tanh(20) = 1 - 8e-18: beyond, +-1


@njit(cache=True, inline="always")
def tanh_approx(x):
    """tanh(x) as sign(x) (1 - e) / (1 + e), e = exp_approx(-2 |x|): odd by construction,
    monotonic, no libm call; absolute error below 1e-12 (tests/test_effects.py measures it
    against numpy on a dense grid)."""
    e = exp_approx(-2.0 * min(abs(x), _TANH_CLIP))
    return math.copysign((1.0 - e) / (1.0 + e), x)


@njit(cache=True, inline="always")
def drive_gains(drive_db, output_db):
    """(input gain, wet gain, dry gain): the wet gain folds in the level compensation
    DRIVE_REF / tanh(g DRIVE_REF) and the output trim; the dry gain is the trim alone."""
    g = 10.0 ** (drive_db / 20.0)
    trim = 10.0 ** (output_db / 20.0)
    return g, trim * DRIVE_REF / math.tanh(g * DRIVE_REF), trim


@njit(cache=True, error_model="numpy")
def drive_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Saturation: wet = tanh(g x) 0.5 / tanh(0.5 g) with g = 10**(drive_db / 20); out =
    ((1 - mix) x + mix wet) 10**(output_db / 20). Mix is linear (dry and wet are correlated).
    Symmetric, so a sine gains odd harmonics only (measured: 3rd and 5th within 0.01 dB of the
    exact tanh's, even ones below -200 dB), and a sine peaking at 0.5 (-6 dBFS) keeps that peak
    at any drive (level compensation). Gains are exact at both ends of a segment and linear
    between. No oversampling: harmonics above Nyquist fold back (measured in the tests)."""
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    drive_db = P[pr[0]]
    mix = P[pr[1]]
    output_db = P[pr[2]]
    n = s1 - s0
    for v in range(nl):
        g0, hw0, hd0 = drive_gains(drive_db[s0, v], output_db[s0, v])
        g1, hw1, hd1 = drive_gains(drive_db[s1 - 1, v], output_db[s1 - 1, v])
        dg = _ramp(g0, g1, n)
        dhw = _ramp(hw0, hw1, n)
        dhd = _ramp(hd0, hd1, n)
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


@njit(cache=True, error_model="numpy")
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
        col[z], col[z + 1] = _flush(l1), _flush(l2)
        col[z + 2], col[z + 3] = _flush(m1), _flush(m2)
        col[z + 4], col[z + 5] = _flush(h1), _flush(h2)
        col[z + 6], col[z + 7] = _flush(r_l1), _flush(r_l2)
        col[z + 8], col[z + 9] = _flush(r_m1), _flush(r_m2)
        col[z + 10], col[z + 11] = _flush(r_h1), _flush(r_h2)
