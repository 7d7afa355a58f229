"""One-pole low-/high-pass kernel and the DC blocker's coefficient, voice lanes. Contract:
``instrument.layout``; what the filters share (TPT design, coefficient ramps, key
tracking, denormals, measured costs): ``instrument.kernels.filters``.
"""

from numba import njit

from instrument.kernels.approx import tan_pi
from instrument.kernels.coefficients import COEFF_STEP, chunk_ramp
from instrument.kernels.denormals import DENORMAL_FLOOR
from instrument.kernels.filters import chunk_prewarp, key_cutoff, prewarp
from instrument.kernels.noalias import lane_loop
from instrument.layout import CTX_SAMPLE_RATE

DC_BLOCK_MAX_HZ = 20.0  # the DC blocker's corner is at most this (ladder and drive)


@njit(cache=True, inline="always")
def dc_block_coeff(corner_hz, sample_rate):
    """G = g / (1 + g), g = tan(pi fc / fs), of the TPT one-pole whose low-pass the DC blocker
    subtracts; fc clamped to [0, DC_BLOCK_MAX_HZ]: 0 gives G = 0, which passes the input
    bit for bit."""
    fc = corner_hz if corner_hz > 0.0 else 0.0
    fc = fc if fc < DC_BLOCK_MAX_HZ else DC_BLOCK_MAX_HZ
    g = tan_pi(fc / sample_rate)
    return g / (1.0 + g)


ONEPOLE_LOWPASS, ONEPOLE_HIGHPASS = range(2)

# State rows of the one-pole.
(_OS, _OG, _ODG, _OCL, _OCX, _OP_GT) = range(6)
ONEPOLE_STATE = 6
ONEPOLE_UNSET = _OG  # reset_state writes -1.0 here
ONEPOLE_RECURSIVE = (_OS,)


@lane_loop
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
        for j in range(i, end):
            r = j - i + 1.0  # the coefficient ramp's position (``chunk_ramp``)
            for v in range(nl):
                G = st[_OG, v] + st[_ODG, v] * r
                s = st[_OS, v]
                xi = x[j, v]
                w = (xi - s) * G
                lp = w + s
                st[_OS, v] = lp + w
                out[j, v] = st[_OCL, v] * lp + st[_OCX, v] * xi
        chunk_ramp(st, _OG, _ODG, 1, end - i, nl)
        i = end
    for v in range(nl):
        if abs(st[_OS, v]) < DENORMAL_FLOOR:
            st[_OS, v] = 0.0
