"""Polynomial approximations of transcendental functions for the per-voice inner loops.

A libm call (exp, tan) inside a loop across voices stops LLVM from vectorizing it and costs
about 20 ns per lane; these are plain arithmetic, so the loop runs as SIMD. Each states its
accuracy, and tests/test_approx.py measures it against numpy.
"""

from numba import njit

_PI = 3.141592653589793


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
