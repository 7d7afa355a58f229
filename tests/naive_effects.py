"""Slow, obvious references for the effect kernels (instrument/kernels/delay.py, reverb.py and
drive_eq.py): one channel pair, one sample at a time, plain Python and math, every coefficient
recomputed every sample with libm (no approximations, no per-segment interpolation). Delay
lines are Python lists that only grow; a read before the start reads 0. Tests run both and compare."""

import math

from instrument.params import one_pole_coeff

HALF_PI = 0.5 * math.pi


def _clamp(x, lo, hi):
    return min(max(x, lo), hi)


def _at(line, i):
    return line[i] if i >= 0 else 0.0


def hermite(line, pos):
    """Catmull-Rom read of ``line`` at fractional index ``pos``."""
    i = math.floor(pos)
    t = pos - i
    ym1, y0, y1, y2 = (_at(line, i - 1), _at(line, i), _at(line, i + 1), _at(line, i + 2))
    c1 = 0.5 * (y1 - ym1)
    c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2
    c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1)
    return ((c3 * t + c2) * t + c1) * t + y0


def linear(line, pos):
    i = math.floor(pos)
    t = pos - i
    return (1.0 - t) * _at(line, i) + t * _at(line, i + 1)


def onepole_a(cutoff_hz, sr):
    fc = _clamp(cutoff_hz, 1.0, 0.49 * sr)
    return 1.0 - math.exp(-2.0 * math.pi * fc / sr)


def delay(xl, xr, time_ms, feedback, ping_pong, damping_hz, mix, sr, max_d, glide_ms,
          fade_ms):
    """Stereo delay. Parameters are per-sample sequences; ``max_d`` the longest delay in
    samples; ``glide_ms`` the time of each of the two one-poles gliding the delay time,
    ``fade_ms`` the one-pole crossfading the ping-pong routing."""
    ct = one_pole_coeff(glide_ms, sr)
    cp = one_pole_coeff(fade_ms, sr)
    line_l, line_r = [], []
    d = p = None
    lpl = lpr = 0.0
    out_l, out_r = [], []
    for n in range(len(xl)):
        target = _clamp(time_ms[n] * sr / 1000.0, 2.0, max_d)
        if d is None:
            d = d1 = target
        d1 = target + ct * (d1 - target)  # two one-poles in series
        d = d1 + ct * (d - d1)
        rl = hermite(line_l, n - d)
        rr = hermite(line_r, n - d)
        a = onepole_a(damping_hz[n], sr)
        lpl += a * (rl - lpl)
        lpr += a * (rr - lpr)
        p = ping_pong[n] if p is None else ping_pong[n] + cp * (p - ping_pong[n])
        g = feedback[n]
        if p == 0.0:  # the two routings spelled out; in between, a crossfade of both
            wl = xl[n] + g * lpl
            wr = xr[n] + g * lpr
        else:
            q = 1.0 - p
            wl = q * (xl[n] + g * lpl) + p * (0.5 * (xl[n] + xr[n]) + g * lpr)
            wr = q * (xr[n] + g * lpr) + p * (g * lpl)
        line_l.append(wl)
        line_r.append(wr)
        dry = math.sin(HALF_PI * (1.0 - mix[n]))  # exactly 0 at mix 1
        wet = math.sin(HALF_PI * mix[n])
        out_l.append(dry * xl[n] + wet * rl)
        out_r.append(dry * xr[n] + wet * rr)
    return out_l, out_r


def chorus(xl, xr, rate_hz, depth_ms, delay_ms, mix, sr, max_d):
    """Stereo chorus: taps at delay + depth * sin(phase + k * 120 deg) (left) and cos (right)."""
    line_l, line_r = [], []
    phase = 0.0
    out_l, out_r = [], []
    for n in range(len(xl)):
        base = delay_ms[n] * sr / 1000.0
        dep = depth_ms[n] * sr / 1000.0
        wl = wr = 0.0
        for k in range(3):
            ph = phase + 2.0 * math.pi * k / 3.0
            wl += hermite(line_l, n - _clamp(base + dep * math.sin(ph), 2.0, max_d))
            wr += hermite(line_r, n - _clamp(base + dep * math.cos(ph), 2.0, max_d))
        line_l.append(xl[n])
        line_r.append(xr[n])
        m = mix[n]
        out_l.append((1.0 - m) * xl[n] + m * wl / 3.0)
        out_r.append((1.0 - m) * xr[n] + m * wr / 3.0)
        phase += 2.0 * math.pi * rate_hz[n] / sr
    return out_l, out_r


def damping_pole(g, wd):
    """Pole b in [0, 1) of (1 - b) / (1 - b z^-1) with magnitude g at wd: the smaller root of
    (1 - g^2) b^2 - 2 (1 - g^2 cos wd) b + (1 - g^2) = 0."""
    if g >= 1.0:
        return 0.0
    u = 1.0 - g * g * math.cos(wd)
    v = 1.0 - g * g
    return (u - math.sqrt(u * u - v * v)) / v


def reverb(xl, xr, size, decay_s, damping_hz, predelay_ms, mix, sr, lengths_ms, scale_min,
           allpass_ms, allpass_g, in_l, in_r, out_l_signs, out_r_signs, out_gain, max_pre,
           glide_ms):
    """8-line FDN: predelay (linear interpolation), two allpasses per side, lines read with
    Hermite interpolation, one-pole damping (magnitude g at damping_hz), gains
    g = 10**(-3 d / (sr T60)), Householder matrix I - 2/N 1 1^T."""
    nlines = len(lengths_ms)
    cs = one_pole_coeff(glide_ms, sr)
    pre_l, pre_r = [], []
    ap_lens = [max(1, round(ms * sr / 1000.0)) for ms in allpass_ms]
    ap_lines = [[] for _ in ap_lens]
    lines = [[] for _ in range(nlines)]
    lp = [0.0] * nlines
    sc = pre = None
    out_l, out_r = [], []

    def allpass(j, x):
        buf = ap_lines[j]
        d = _at(buf, len(buf) - ap_lens[j])
        v = x + allpass_g * d
        buf.append(v)
        return d - allpass_g * v

    for n in range(len(xl)):
        pre_l.append(xl[n])
        pre_r.append(xr[n])
        pt = _clamp(predelay_ms[n] * sr / 1000.0, 0.0, max_pre)
        pre = pt if pre is None else pt + cs * (pre - pt)
        ul = linear(pre_l, n - pre)
        ur = linear(pre_r, n - pre)
        ul = allpass(1, allpass(0, ul))
        ur = allpass(3, allpass(2, ur))
        target = scale_min + (1.0 - scale_min) * _clamp(size[n], 0.0, 1.0)
        sc = target if sc is None else target + cs * (sc - target)
        wd = 2.0 * math.pi * _clamp(damping_hz[n], 1.0, 0.49 * sr) / sr
        ys = []
        for k in range(nlines):
            d = lengths_ms[k] * sr / 1000.0 * sc
            r = hermite(lines[k], n - d)
            g = 10.0 ** (-3.0 * d / (sr * decay_s[n]))
            b = damping_pole(g, wd)
            lp[k] = (1.0 - b) * r + b * lp[k]
            ys.append(g * lp[k])
        s = 2.0 / nlines * sum(ys)
        for k in range(nlines):
            lines[k].append(ys[k] - s + in_l[k] * ul + in_r[k] * ur)
        wl = sum(o * y for o, y in zip(out_l_signs, ys))
        wr = sum(o * y for o, y in zip(out_r_signs, ys))
        dry = math.sin(HALF_PI * (1.0 - mix[n]))  # exactly 0 at mix 1
        wet = math.sin(HALF_PI * mix[n])
        out_l.append(dry * xl[n] + wet * out_gain * math.sqrt(sc) * wl)
        out_r.append(dry * xr[n] + wet * out_gain * math.sqrt(sc) * wr)
    return out_l, out_r


def drive(x, drive_db, mix, output_db, ref=0.5, dc_block_hz=None, sample_rate=48000.0):
    """``dc_block_hz`` (per sample, optional): a TPT one-pole high-pass at that corner on
    tanh(g x) before the level compensation and the mix (0: none)."""
    out = []
    s = 0.0
    for n in range(len(x)):
        g = 10.0 ** (drive_db[n] / 20.0)
        trim = 10.0 ** (output_db[n] / 20.0)
        t = math.tanh(g * x[n])
        if dc_block_hz is not None and dc_block_hz[n] > 0.0:
            gd = math.tan(math.pi * min(dc_block_hz[n], 20.0) / sample_rate)
            v = (t - s) * gd / (1.0 + gd)
            lp = v + s
            s = lp + v
            t -= lp
        wet = t * ref / math.tanh(g * ref)
        out.append(trim * ((1.0 - mix[n]) * x[n] + mix[n] * wet))
    return out


def rbj(kind, f0, gain_db, q, sr):
    """Audio EQ Cookbook (R. Bristow-Johnson) coefficients, as printed: returns
    (b0, b1, b2, a0, a1, a2), not normalized. Shelves with S = 1."""
    f0 = _clamp(f0, 1.0, 0.49 * sr)
    A = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / sr
    cos_w0 = math.cos(w0)
    if kind == "peak":
        alpha = math.sin(w0) / (2.0 * q)
        return (1 + alpha * A, -2 * cos_w0, 1 - alpha * A,
                1 + alpha / A, -2 * cos_w0, 1 - alpha / A)
    S = 1.0
    alpha = math.sin(w0) / 2.0 * math.sqrt((A + 1.0 / A) * (1.0 / S - 1.0) + 2.0)
    sa = 2.0 * math.sqrt(A) * alpha
    if kind == "lowshelf":
        return (A * ((A + 1) - (A - 1) * cos_w0 + sa),
                2 * A * ((A - 1) - (A + 1) * cos_w0),
                A * ((A + 1) - (A - 1) * cos_w0 - sa),
                (A + 1) + (A - 1) * cos_w0 + sa,
                -2 * ((A - 1) + (A + 1) * cos_w0),
                (A + 1) + (A - 1) * cos_w0 - sa)
    return (A * ((A + 1) + (A - 1) * cos_w0 + sa),
            -2 * A * ((A - 1) + (A + 1) * cos_w0),
            A * ((A + 1) + (A - 1) * cos_w0 - sa),
            (A + 1) - (A - 1) * cos_w0 + sa,
            2 * ((A - 1) - (A + 1) * cos_w0),
            (A + 1) - (A - 1) * cos_w0 - sa)


def biquad_response(coeffs, freqs_hz, sr):
    """Complex H(e^jw) of (b0, b1, b2, a0, a1, a2) at ``freqs_hz``."""
    import cmath

    b0, b1, b2, a0, a1, a2 = coeffs
    out = []
    for f in freqs_hz:
        z1 = cmath.exp(-1j * 2.0 * math.pi * f / sr)
        out.append((b0 + b1 * z1 + b2 * z1 * z1) / (a0 + a1 * z1 + a2 * z1 * z1))
    return out


def eq(x, low_hz, low_db, mid_hz, mid_db, mid_q, high_hz, high_db, sr):
    """Three biquads in series (direct form I, coefficients recomputed every sample)."""
    hist = [[0.0] * 4 for _ in range(3)]  # x1 x2 y1 y2 per band
    out = []
    for n in range(len(x)):
        y = x[n]
        bands = (rbj("lowshelf", low_hz[n], low_db[n], 0.0, sr),
                 rbj("peak", mid_hz[n], mid_db[n], mid_q[n], sr),
                 rbj("highshelf", high_hz[n], high_db[n], 0.0, sr))
        for (b0, b1, b2, a0, a1, a2), h in zip(bands, hist):
            xin = y
            y = (b0 * xin + b1 * h[0] + b2 * h[1] - a1 * h[2] - a2 * h[3]) / a0
            h[1], h[0] = h[0], xin
            h[3], h[2] = h[2], y
        out.append(y)
    return out
