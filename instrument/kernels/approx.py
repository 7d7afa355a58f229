"""Polynomial approximations of transcendental functions for the per-voice inner loops.

A libm call (exp, tan) inside a loop across voices stops LLVM from vectorizing it and costs
about 20 ns per lane; these are plain arithmetic, so the loop runs as SIMD. Each states its
accuracy, and the tests measure it against numpy (tests/kernels/test_approx.py names where).
"""

import math

import numpy as np
from numba import njit

_PI = 3.141592653589793
_TANH_CLIP = 20.0  # tanh(20) = 1 - 8e-18: beyond, +-1
TANH_PADE_CLIP = 6.1  # where the Pade approximant is clamped (it crosses 1.0 at 6.297)


@njit(cache=True, inline="always")
def tan_pi(x):
    """tan(pi * x) for x in [0, 0.49] (sin/cos Taylor polynomials); relative error below
    1e-8 over that range."""
    t = _PI * x
    t2 = t * t
    s = t * (1.0 + t2 * (-1.0 / 6 + t2 * (1.0 / 120 + t2 * (-1.0 / 5040 + t2 * (
        1.0 / 362880 + t2 * (-1.0 / 39916800 + t2 * (1.0 / 6227020800)))))))
    c = 1.0 + t2 * (-0.5 + t2 * (1.0 / 24 + t2 * (-1.0 / 720 + t2 * (1.0 / 40320 + t2 * (
        -1.0 / 3628800 + t2 * (1.0 / 479001600 + t2 * (-1.0 / 87178291200)))))))
    return s / c


@njit(cache=True, inline="always")
def exp_approx(x):
    """exp(x) for |x| <= 40: Taylor series of exp(x / 256) squared eight times; relative error
    below 1e-10 over that range (the ratio of a 20 Hz..20 kHz log parameter needs |x| <= 7)."""
    y = x * (1.0 / 256.0)
    e = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6 + y * (1.0 / 24 + y * (1.0 / 120 + y * (
        1.0 / 720 + y * (1.0 / 5040 + y * (1.0 / 40320))))))))
    for _ in range(8):
        e = e * e
    return e


_LN2_12 = 0.057762265046662105  # ln(2) / 12


@njit(cache=True, inline="always")
def semitone_ratio(semitones):
    """2**(semitones / 12) for |semitones| <= 690 (exp_approx's range): the frequency ratio of
    an interval, relative error below 1e-10 (2e-7 cent). A pitch per voice per segment with
    libm pow cost about 20 ns a lane; this vectorizes across lanes."""
    return exp_approx(semitones * _LN2_12)


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
def tanh_approx(x):
    """tanh(x) as sign(x) (1 - e) / (1 + e), e = exp_approx(-2 |x|): odd by construction,
    monotonic, no libm call; absolute error below 1e-12 (tests/kernels/test_effects.py measures it
    against numpy on a dense grid)."""
    e = exp_approx(-2.0 * min(abs(x), _TANH_CLIP))
    return math.copysign((1.0 - e) / (1.0 + e), x)


@njit(cache=True, inline="always")
def tanh_pade_num(x2):
    """Numerator of the [9/8] Pade approximant of tanh(x) / x, in x**2: tanh(x) is about
    x * tanh_pade_num(x**2) / tanh_pade_den(x**2) for |x| <= TANH_PADE_CLIP (absolute error
    below 6e-6, odd, monotone, below 1 in magnitude; measured by test). The ladder solves its
    feedback with this ratio, written without a branch; ``tanh_approx`` is the accurate tanh."""
    return 34459425.0 + x2 * (4729725.0 + x2 * (135135.0 + x2 * (990.0 + x2)))


@njit(cache=True, inline="always")
def tanh_pade_den(x2):
    """Denominator of the [9/8] Pade approximant of tanh(x) / x, in x**2."""
    return 34459425.0 + x2 * (16216200.0 + x2 * (945945.0 + x2 * (13860.0 + 45.0 * x2)))


@njit(cache=True, inline="always")
def sin_2pi(x):
    """sin(2 pi x) for any finite x without libm: the phase folded into a triangle z in
    [-1, 1] (sin(2 pi x) = sin(pi/2 z) exactly), then a degree-15 odd Taylor polynomial;
    absolute error below 1e-11."""
    u = x + 0.25
    u = u - np.floor(u)  # (math.floor goes through int64 and back: slower, and UB past 2**63)
    z = 1.0 - 4.0 * abs(u - 0.5)
    a = 1.5707963267948966 * z
    a2 = a * a
    return a * (1.0 + a2 * (-1.0 / 6 + a2 * (1.0 / 120 + a2 * (-1.0 / 5040 + a2 * (
        1.0 / 362880 + a2 * (-1.0 / 39916800 + a2 * (1.0 / 6227020800 + a2 * (
            -1.0 / 1307674368000))))))))
