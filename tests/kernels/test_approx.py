"""The approximations of ``kernels.approx`` that no other test measures, against numpy over the
ranges their docstrings state (``ln_approx`` and the tanh Pade: test_filters.py;
``tanh_approx``: test_effects.py; ``sin_2pi``: test_oscillators.py)."""

import numpy as np
from numba import njit

from instrument.kernels.approx import exp_approx, semitone_ratio, tan_pi


@njit(cache=True)
def _apply(f_code, xs, out):
    for i in range(xs.shape[0]):
        if f_code == 0:
            out[i] = tan_pi(xs[i])
        elif f_code == 1:
            out[i] = exp_approx(xs[i])
        else:
            out[i] = semitone_ratio(xs[i])


def _relative_error(f_code, xs, exact):
    out = np.empty_like(xs)
    _apply(f_code, xs, out)
    return np.max(np.abs(out - exact) / np.abs(exact))


def test_tan_pi_relative_error_below_1e_8_on_0_to_0_49():
    xs = np.linspace(1e-6, 0.49, 200_001)
    assert _relative_error(0, xs, np.tan(np.pi * xs)) < 1e-8


def test_exp_approx_relative_error_below_1e_10_for_magnitudes_up_to_40():
    xs = np.linspace(-40.0, 40.0, 200_001)
    assert _relative_error(1, xs, np.exp(xs)) < 1e-10


def test_semitone_ratio_within_2e_7_cent_for_intervals_up_to_690_semitones():
    xs = np.linspace(-690.0, 690.0, 200_001)
    rel = _relative_error(2, xs, 2.0 ** (xs / 12.0))
    assert rel < 1e-10
    assert 1200.0 * np.log2(1.0 + rel) < 2e-7  # cents
