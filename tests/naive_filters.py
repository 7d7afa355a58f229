"""Slow, obvious references for the svf, ladder and onepole kernels: one voice, one sample at
a time, plain Python and math, coefficients exact at every sample (math.tan, math.tanh,
math.pow), no approximations. Also the analytic responses the kernels are measured against:
the digital transfer functions of the bilinear-transformed (prewarped) analog prototypes."""

import cmath
import math

C4_HZ = 261.6255653005986
MODES = ("lowpass", "highpass", "bandpass", "notch")
LADDER_K_MAX = 4.0 / 0.95


def key_cutoff(cutoff_hz, key_track, key_hz):
    """cutoff * (key / C4) ** key_track; no tracking for key <= 0; ratio within +-8 octaves."""
    r = key_hz / C4_HZ if key_hz > 0 else 1.0
    r = min(max(r, 2.0 ** -8), 2.0 ** 8)
    return cutoff_hz * math.pow(r, min(max(key_track, 0.0), 1.0))


def prewarp(fc, sample_rate):
    fc = min(max(fc, 1.0), 0.49 * sample_rate)
    return math.tan(math.pi * fc / sample_rate)


def svf_damping(resonance):
    return 2.0 * 100.0 ** (-min(max(resonance, 0.0), 1.0))


def _per_sample(value, n):
    return value if hasattr(value, "__len__") else [value] * n


def svf(x, cutoff_hz, resonance, sample_rate, mode="lowpass", key_track=0.0, key_hz=0.0):
    """TPT state-variable filter (Simper's form); per-sample sequences or constants."""
    n = len(x)
    cutoff_hz, resonance = _per_sample(cutoff_hz, n), _per_sample(resonance, n)
    key_track, key_hz = _per_sample(key_track, n), _per_sample(key_hz, n)
    ic1 = ic2 = 0.0
    out = []
    for i in range(n):
        g = prewarp(key_cutoff(cutoff_hz[i], key_track[i], key_hz[i]), sample_rate)
        k = svf_damping(resonance[i])
        a1 = 1 / (1 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        v3 = x[i] - ic2
        v1 = a1 * ic1 + a2 * v3
        v2 = ic2 + a2 * ic1 + a3 * v3
        ic1, ic2 = 2 * v1 - ic1, 2 * v2 - ic2
        low, band = v2, v1
        high = x[i] - k * band - low
        out.append({"lowpass": low, "highpass": high, "bandpass": k * band,
                    "notch": low + high}[mode])
    return out


def onepole(x, cutoff_hz, sample_rate, mode="lowpass", key_track=0.0, key_hz=0.0):
    """TPT one-pole: v = (x - s) G, lp = v + s, s = lp + v; hp = x - lp."""
    n = len(x)
    cutoff_hz = _per_sample(cutoff_hz, n)
    key_track, key_hz = _per_sample(key_track, n), _per_sample(key_hz, n)
    s = 0.0
    out = []
    for i in range(n):
        g = prewarp(key_cutoff(cutoff_hz[i], key_track[i], key_hz[i]), sample_rate)
        big_g = g / (1 + g)
        v = (x[i] - s) * big_g
        lp = v + s
        s = lp + v
        out.append(lp if mode == "lowpass" else x[i] - lp)
    return out


def ladder(x, cutoff_hz, resonance, sample_rate, drive_db=0.0, key_track=0.0, key_hz=0.0,
           dc_block_hz=0.0):
    """4-pole TPT ladder, u = tanh(drive * x - k * y4), the zero-delay feedback solved with
    tanh(z) taken as (tanh(z') / z') * z at z' = drive * x - k * y4[n-1]; four TPT one-poles
    solved in closed form; output (1 + k) * y4 / sqrt(drive), then (``dc_block_hz`` > 0) minus
    its TPT one-pole low-pass at that corner: a one-pole high-pass."""
    n = len(x)
    dc_block_hz = _per_sample(dc_block_hz, n)
    dc_s = 0.0
    cutoff_hz, resonance = _per_sample(cutoff_hz, n), _per_sample(resonance, n)
    drive_db = _per_sample(drive_db, n)
    key_track, key_hz = _per_sample(key_track, n), _per_sample(key_hz, n)
    s = [0.0, 0.0, 0.0, 0.0]
    y4 = 0.0
    out = []
    for i in range(n):
        g = prewarp(key_cutoff(cutoff_hz[i], key_track[i], key_hz[i]), sample_rate)
        big_g = g / (1 + g)
        k = LADDER_K_MAX * min(max(resonance[i], 0.0), 1.0)
        drive = 10.0 ** (drive_db[i] / 20.0)
        xd = drive * x[i]
        z_est = xd - k * y4
        t = math.tanh(z_est) / z_est if z_est != 0.0 else 1.0
        # y4 = G^4 u + sum of the states' contributions, u = t (xd - k y4)
        free = 0.0
        for m in range(4):
            free += big_g ** (3 - m) * (1 - big_g) * s[m]
        y4 = (big_g ** 4 * t * xd + free) / (1 + k * t * big_g ** 4)
        y = t * (xd - k * y4)
        for m in range(4):
            v = (y - s[m]) * big_g
            y = v + s[m]
            s[m] = y + v
        y4 = y
        o = (1 + k) * y4 / math.sqrt(drive)
        if dc_block_hz[i] > 0.0:
            g_dc = math.tan(math.pi * min(dc_block_hz[i], 20.0) / sample_rate)
            v = (o - dc_s) * g_dc / (1 + g_dc)
            lp = v + dc_s
            dc_s = lp + v
            o -= lp
        out.append(o)
    return out


# ---- analytic responses ---------------------------------------------------------------------

def _s_of(f_hz, cutoff_hz, sample_rate):
    """The normalized analog variable s / wc that the bilinear transform (prewarped at the
    cutoff) assigns to the digital frequency f: (1/g) (z - 1) / (z + 1), z = e^{j w}."""
    z = cmath.exp(2j * math.pi * f_hz / sample_rate)
    return (z - 1) / (z + 1) / prewarp(cutoff_hz, sample_rate)


def svf_response(f_hz, cutoff_hz, resonance, sample_rate, mode="lowpass"):
    """Complex response of the TPT SVF's mode at f_hz (digital transfer function)."""
    s = _s_of(f_hz, cutoff_hz, sample_rate)
    k = svf_damping(resonance)
    d = s * s + k * s + 1
    return {"lowpass": 1 / d, "highpass": s * s / d, "bandpass": k * s / d,
            "notch": (s * s + 1) / d}[mode]


def onepole_response(f_hz, cutoff_hz, sample_rate, mode="lowpass"):
    s = _s_of(f_hz, cutoff_hz, sample_rate)
    return 1 / (1 + s) if mode == "lowpass" else s / (1 + s)


def ladder_response(f_hz, cutoff_hz, resonance, sample_rate, drive_db=0.0, dc_block_hz=0.0):
    """Small-signal (tanh = identity) response of the TPT ladder; times the one-pole
    high-pass at ``dc_block_hz`` when that is above 0."""
    s = _s_of(f_hz, cutoff_hz, sample_rate)
    k = LADDER_K_MAX * resonance
    h4 = (1 / (1 + s)) ** 4
    h = math.sqrt(10.0 ** (drive_db / 20.0)) * (1 + k) * h4 / (1 + k * h4)
    if dc_block_hz > 0.0:
        h *= onepole_response(f_hz, dc_block_hz, sample_rate, "highpass")
    return h
