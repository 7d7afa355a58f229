"""White and pink noise, voice lanes. Contract: ``instrument.layout``.

The generator is L'Ecuyer's combined multiplicative generator (CACM 31, 1988; moduli
2147483563 and 2147483399, period about 2.3e18), run in float64: every product stays below
2**47, so each step is exact integer arithmetic done with float operations, which vectorize
across voices (an integer xorshift cannot: there is no packed float64 <-> int64 conversion
before AVX-512). Each voice seeds from its lane, its note and the ``seed`` parameter the first
time it runs, so a render is repeatable and the voices of a chord are uncorrelated.

Pink: white noise through seven first-order pole/zero pairs, one pole every two octaves from
12 Hz to 0.3 x sample rate with a zero an octave above each (the classic alternating-corner
approximation of a -1/2 power slope), bilinear with each corner prewarped, run as a parallel
sum of one-poles (partial fractions) so each section is an independent recursion. Designed
magnitude: within +-0.4 dB of -3.01 dB/octave from 100 Hz to 10 kHz at 32 to 192 kHz. The
filter is normalized so pink has the RMS of white (level / sqrt(3)).
"""

import math

import numpy as np
from numba import njit

from instrument.kernels.noalias import lane_loop
from instrument.layout import CTX_NOTE

_M1 = 2147483563.0
_M2 = 2147483399.0
_A1 = 40014.0
_A2 = 40692.0
_INV_M1 = 1.0 / _M1
_INV_M2 = 1.0 / _M2

PINK_SECTIONS = 7
PINK_LOWEST_HZ = 12.0
PINK_POLE_RATIO = 4.0  # two octaves between poles
PINK_TOP = 0.3  # highest pole, as a fraction of the sample rate

# State rows: the two generator states, seeded flag, pink one-pole states, their poles and
# gains, the direct gain.
_X1, _X2, _SEEDED = 0, 1, 2
_S = 3
_POLE = _S + PINK_SECTIONS
_GAIN = _POLE + PINK_SECTIONS
_DIRECT = _GAIN + PINK_SECTIONS
_WHITE = _DIRECT + 1  # then one row per sample of the block: the white input of the filter
NOISE_FIXED = _WHITE


def noise_state_rows(block_size):
    return NOISE_FIXED + int(block_size)


def pink_design(sample_rate):
    """(poles, zeros) of the pink filter's first-order sections, as z-plane roots."""
    def warp(f):
        return math.tan(math.pi * min(f, 0.49 * sample_rate) / sample_rate)

    poles, zeros = [], []
    f = PINK_LOWEST_HZ
    while f < PINK_TOP * sample_rate and len(poles) < PINK_SECTIONS:
        for hz, roots in ((f, poles), (2.0 * f, zeros)):
            w = warp(hz)
            roots.append((1.0 - w) / (1.0 + w))
        f *= PINK_POLE_RATIO
    return np.array(poles), np.array(zeros)


def pink_coefficients(sample_rate):
    """(poles, gains, direct) of H(z) = direct + sum gains / (1 - poles z^-1), the partial
    fractions of prod (1 - zero z^-1) / (1 - pole z^-1), scaled to unit power gain."""
    p, q = pink_design(sample_rate)
    g = np.array([np.prod(1.0 - q / pk) / np.prod(1.0 - np.delete(p, k) / pk)
                  for k, pk in enumerate(p)])
    d = float(np.prod(q / p))
    power = d * d + 2.0 * d * g.sum() + float((np.outer(g, g) / (1.0 - np.outer(p, p))).sum())
    scale = 1.0 / math.sqrt(power)
    return p, g * scale, d * scale


def noise_reset(state, sample_rate):
    """Zero state (unseeded) with the pink coefficients for ``sample_rate``."""
    state[:] = 0.0
    p, g, d = pink_coefficients(sample_rate)
    state[_POLE:_POLE + len(p)] = p
    state[_GAIN:_GAIN + len(g)] = g
    state[_DIRECT] = d


@njit(cache=True, inline="always")
def _lcg(x, a, m, inv_m):
    """(a * x) mod m, exactly, in float64 (a * x < 2**47)."""
    y = a * x
    y -= np.floor(y * inv_m) * m
    y += m if y < 0.0 else 0.0
    y -= m if y >= m else 0.0
    return y


@njit(cache=True, inline="always")
def _white(x1, x2):
    """The combined generator's output in (-1, 1) from the two new states."""
    z = x1 - x2
    z += (_M1 - 1.0) if z < 1.0 else 0.0
    return 2.0 * z * _INV_M1 - 1.0


@njit(cache=True, error_model="numpy")
def _seed(st, ctx, nl, seed):
    for v in range(nl):
        if st[_SEEDED, v] == 0.0:
            base = 1.0 + v * 7919.0 + ctx[CTX_NOTE, v] * 104729.0 + seed * 1299709.0
            x1 = 1.0 + base % (_M1 - 1.0)
            x2 = 1.0 + (base * 7.0 + 3.0) % (_M2 - 1.0)
            for _ in range(16):  # small seeds give small first outputs: step past them
                x1 = _lcg(x1, _A1, _M1, _INV_M1)
                x2 = _lcg(x2, _A2, _M2, _INV_M2)
            st[_X1, v] = x1
            st[_X2, v] = x2
            st[_SEEDED, v] = 1.0


@lane_loop
def noise_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """White noise uniform in -level..level (``color`` 0), or pink with the same RMS (1);
    the sequence of a voice depends only on its lane, note and ``seed``."""
    out = bufs[io[0]]
    level = P[pr[1]]
    _seed(st, ctx, nl, P[pr[2], s0, 0])
    x1s, x2s = st[_X1], st[_X2]
    if P[pr[0], s0, 0] < 0.5:
        for i in range(s0, s1):
            for v in range(nl):
                x1 = _lcg(x1s[v], _A1, _M1, _INV_M1)
                x2 = _lcg(x2s[v], _A2, _M2, _INV_M2)
                x1s[v] = x1
                x2s[v] = x2
                out[i, v] = level[i, v] * _white(x1, x2)
        return
    # Pink: the white samples wait in state rows; then one pass per section, each a
    # recursion across voices with two stores (one loop with all seven ran at 570 ns per
    # voice per block instead of SIMD: LLVM checks every stored array against every other).
    white = _WHITE
    for i in range(s0, s1):
        buf = st[white + i - s0]
        for v in range(nl):
            x1 = _lcg(x1s[v], _A1, _M1, _INV_M1)
            x2 = _lcg(x2s[v], _A2, _M2, _INV_M2)
            x1s[v] = x1
            x2s[v] = x2
            buf[v] = _white(x1, x2)
    direct = st[_DIRECT]
    for i in range(s0, s1):
        buf = st[white + i - s0]
        for v in range(nl):
            out[i, v] = direct[v] * buf[v]
    for section in range(PINK_SECTIONS):
        y = st[_S + section]
        pole = st[_POLE + section]
        gain = st[_GAIN + section]
        if gain[0] == 0.0:  # unused at this sample rate
            continue
        for i in range(s0, s1):
            buf = st[white + i - s0]
            for v in range(nl):
                a = pole[v] * y[v] + gain[v] * buf[v]
                y[v] = a
                out[i, v] += a
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] *= level[i, v]
