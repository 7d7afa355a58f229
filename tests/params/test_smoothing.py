"""Smoothing: one-pole 99% time and linear ramp length measured in samples at real rates."""

import math

import numpy as np
import pytest

from naive_smoothing import (
    SmoothedValue, smooth_linear_step, smooth_one_pole_fill, smooth_one_pole_step,
)
from instrument.errors import ParamError
from instrument.params import Curve, Kind, ParamSpec, Smoothing
from instrument.params.smoothing import linear_ramp_samples, one_pole_coeff

RATES = [44100.0, 48000.0, 96000.0]
TIMES_MS = [1.0, 5.0, 20.0, 100.0, 500.0]


def _crossing_99(sv: SmoothedValue, start: float, target: float, limit: int) -> int:
    """1-based index of the first sample that has covered 99% of the step."""
    threshold = start + 0.99 * (target - start)
    for k in range(1, limit + 1):
        y = sv.next()
        if (y - threshold) * math.copysign(1.0, target - start) >= 0.0:
            return k
    raise AssertionError("never reached 99%")


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("time_ms", TIMES_MS)
@pytest.mark.parametrize("start, target", [(0.0, 1.0), (1.0, 0.0), (0.2, 0.7)])
def test_one_pole_step_reaches_99_percent_at_declared_time(sample_rate, time_ms, start, target):
    sv = SmoothedValue(start)
    sv.reset(sample_rate, time_ms, Smoothing.ONE_POLE)
    sv.set_target(target)
    expected = time_ms * sample_rate / 1000.0
    k = _crossing_99(sv, start, target, limit=int(expected * 3) + 10)
    assert abs(k - expected) <= 0.05 * expected, (k, expected)
    assert math.ceil(expected) <= k <= math.ceil(expected) + 1  # +1: float rounding at a tie


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("time_ms", TIMES_MS)
def test_one_pole_coeff_gives_one_percent_left_after_time_ms(sample_rate, time_ms):
    a = one_pole_coeff(time_ms, sample_rate)
    assert 0.0 < a < 1.0
    assert a ** (time_ms * sample_rate / 1000.0) == pytest.approx(0.01, rel=1e-9)


def test_one_pole_coeff_zero_time_jumps():
    assert one_pole_coeff(0.0, 48000.0) == 0.0
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 0.0, Smoothing.ONE_POLE)
    sv.set_target(1.0)
    assert sv.current == 1.0 and not sv.is_smoothing


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("time_ms", TIMES_MS)
def test_linear_ramp_lands_exactly_on_target_at_declared_time(sample_rate, time_ms):
    n = linear_ramp_samples(time_ms, sample_rate)
    assert n == math.floor(time_ms * sample_rate / 1000.0 + 0.5)  # nearest, half up
    sv = SmoothedValue(0.25)
    sv.reset(sample_rate, time_ms, Smoothing.LINEAR)
    sv.set_target(0.75)
    ys = np.array([sv.next() for _ in range(n + 5)])
    assert np.all(ys[: n - 1] < 0.75)
    assert np.all(ys[n - 1:] == 0.75)
    steps = np.diff(np.concatenate(([0.25], ys[:n])))
    assert np.allclose(steps, 0.5 / n, rtol=1e-9)


def test_linear_ramp_zero_time_jumps():
    assert linear_ramp_samples(0.0, 48000.0) == 0
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 0.0, Smoothing.LINEAR)
    sv.set_target(1.0)
    assert sv.current == 1.0


def test_linear_retarget_mid_ramp_restarts_from_current_value():
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 1.0, Smoothing.LINEAR)  # 48 samples
    sv.set_target(1.0)
    mid = sv.skip(24)
    assert mid == pytest.approx(0.5)
    sv.set_target(0.0)
    assert sv.skip(47) > 0.0
    assert sv.next() == 0.0 and not sv.is_smoothing


@pytest.mark.parametrize("mode", [Smoothing.ONE_POLE, Smoothing.LINEAR])
def test_skip_equals_repeated_next(mode):
    a, b = SmoothedValue(0.0), SmoothedValue(0.0)
    for sv in (a, b):
        sv.reset(48000.0, 10.0, mode)
        sv.set_target(1.0)
    for n in (1, 7, 64, 200):
        stepped = [a.next() for _ in range(n)][-1]
        assert b.skip(n) == pytest.approx(stepped, rel=1e-12, abs=1e-12)


def test_one_pole_settles_exactly_on_target():
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 20.0, Smoothing.ONE_POLE)
    sv.set_target(1.0)
    assert sv.is_smoothing
    sv.skip(48000)
    assert sv.current == 1.0 and not sv.is_smoothing


def test_mode_none_jumps():
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 50.0, Smoothing.NONE)
    sv.set_target(0.3)
    assert sv.current == 0.3 and sv.next() == 0.3


@pytest.mark.parametrize("spec", [
    ParamSpec.choice("shape", "Shape", ("Saw", "Square", "Triangle")),
    ParamSpec.toggle("sync", "Sync"),
    ParamSpec("oct", "Octave", "", -3.0, 3.0, 0.0, kind=Kind.INTEGER,
              smoothing=Smoothing.LINEAR, smoothing_ms=100.0),
    ParamSpec("voices", "Voices", "", 1.0, 16.0, 1.0, kind=Kind.INTEGER,
              smoothing=Smoothing.ONE_POLE, smoothing_ms=100.0),
], ids=lambda s: s.name)
def test_discrete_spec_jumps_and_never_yields_in_between_values(spec):
    sv = SmoothedValue.for_spec(spec, 48000.0)
    valid_norms = {spec.to_norm(float(v)) for v in range(int(spec.min), int(spec.max) + 1)}
    for value in (spec.max, spec.min, spec.max):
        sv.set_target(spec.to_norm(value))
        assert sv.current == spec.to_norm(value) and not sv.is_smoothing
        for _ in range(100):
            assert sv.next() in valid_norms


@pytest.mark.parametrize("sample_rate", RATES)
def test_for_spec_uses_the_spec_smoothing_time(sample_rate):
    spec = ParamSpec("cutoff_hz", "Cutoff", "Hz", 20.0, 20000.0, 2000.0, curve=Curve.LOG,
                     smoothing_ms=30.0)
    sv = SmoothedValue.for_spec(spec, sample_rate)
    start = sv.current
    assert start == spec.default_norm
    sv.set_target(1.0)
    expected = 30.0 * sample_rate / 1000.0
    k = _crossing_99(sv, start, 1.0, limit=int(expected * 3))
    assert abs(k - expected) <= 0.05 * expected


@pytest.mark.parametrize("args", [(math.nan, 48000.0), (math.inf, 48000.0), (-1.0, 48000.0),
                                  (10.0, 0.0), (10.0, math.nan), (10.0, -48000.0)])
def test_bad_time_or_sample_rate_raises_param_error(args):
    with pytest.raises(ParamError):
        one_pole_coeff(*args)
    with pytest.raises(ParamError):
        linear_ramp_samples(*args)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "x"])
def test_set_target_rejects_non_finite(bad):
    sv = SmoothedValue(0.5)
    sv.reset(48000.0, 10.0)
    with pytest.raises(ParamError):
        sv.set_target(bad)
    assert sv.current == 0.5 and sv.target == 0.5


def test_njit_one_pole_helpers_match_reference():
    a = one_pole_coeff(5.0, 48000.0)
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 5.0, Smoothing.ONE_POLE)
    sv.set_target(1.0)
    reference = np.array([sv.next() for _ in range(256)])
    out = np.empty(256)
    last = smooth_one_pole_fill(out, 0.0, 1.0, a)
    assert np.allclose(out, reference, rtol=1e-12, atol=1e-12) and last == out[-1]
    assert smooth_one_pole_step(0.0, 1.0, a) == pytest.approx(1.0 - a, rel=1e-15)


def test_njit_linear_step_matches_reference_and_lands_exactly():
    n = linear_ramp_samples(2.0, 48000.0)
    sv = SmoothedValue(0.0)
    sv.reset(48000.0, 2.0, Smoothing.LINEAR)
    sv.set_target(1.0)
    cur, remaining, step = 0.0, float(n), 1.0 / n
    for _ in range(n + 3):
        cur, remaining = smooth_linear_step(cur, 1.0, step, remaining)
        assert cur == pytest.approx(sv.next(), rel=1e-12, abs=1e-12)
    assert cur == 1.0 and remaining == 0.0
