"""ParamSpec: normalization round trips, agreement with the engine math, text, validation."""

import dataclasses
import math

import numpy as np
import pytest

from instrument.errors import ParamError
from instrument.params import Curve, Kind, ParamSpec, Smoothing
from instrument.params.curves import norm_to_value, value_to_norm

CUTOFF = ParamSpec("cutoff_hz", "Cutoff", "Hz", 20.0, 20000.0, 2000.0, curve=Curve.LOG)
GAIN = ParamSpec("gain_db", "Gain", "dB", -60.0, 12.0, 0.0, curve=Curve.DB)
ATTACK = ParamSpec("attack_ms", "Attack", "ms", 0.0, 20000.0, 5.0, curve=Curve.EXP, skew=3.0)
DETUNE = ParamSpec("detune_cents", "Detune", "cents", -100.0, 100.0, 0.0)
LEVEL = ParamSpec("level", "Level", "", 0.0, 1.0, 0.5)
SHAPE = ParamSpec.choice("shape", "Shape", ("Saw", "Square", "Triangle"), default="saw")
SYNC = ParamSpec.toggle("sync", "Sync")
TRANSPOSE = ParamSpec.integer("transpose_st", "Transpose", "st", -48, 48, 0)

CONTINUOUS = [
    LEVEL,
    DETUNE,
    CUTOFF,
    GAIN,
    ATTACK,
    ParamSpec("glide_ms", "Glide", "ms", 20.0, 20000.0, 100.0, curve=Curve.EXP, skew=2.0),
    ParamSpec("depth", "Depth", "", 0.0, 1.0, 0.5, curve=Curve.EXP, skew=0.5),
    ParamSpec("rate_hz", "Rate", "Hz", 0.01, 50.0, 1.0, curve=Curve.LOG),
]
DISCRETE = [
    SHAPE,
    SYNC,
    TRANSPOSE,
    ParamSpec.integer("octave", "Octave", "", -3, 3, 0),
    ParamSpec("voices", "Voices", "", 1.0, 16.0, 8.0, curve=Curve.LOG, kind=Kind.INTEGER),
    ParamSpec("steps", "Steps", "", 0.0, 64.0, 8.0, curve=Curve.EXP, skew=2.0, kind=Kind.INTEGER),
]
GRID = np.linspace(0.0, 1.0, 1001)


def _close(a, b, rel=1e-12, abs_=1e-9):
    return abs(a - b) <= abs_ + rel * abs(b)


def test_enum_codes_are_the_documented_ints():
    assert [int(c) for c in (Curve.LINEAR, Curve.LOG, Curve.EXP, Curve.DB)] == [0, 1, 2, 3]
    assert [int(k) for k in (Kind.CONTINUOUS, Kind.INTEGER, Kind.BOOL, Kind.CHOICE)] == [0, 1, 2, 3]
    assert [int(s) for s in (Smoothing.NONE, Smoothing.ONE_POLE, Smoothing.LINEAR)] == [0, 1, 2]


@pytest.mark.parametrize("spec", CONTINUOUS, ids=lambda s: s.name)
def test_norm_value_norm_round_trips_on_1001_point_grid(spec):
    for n in GRID:
        back = spec.to_norm(spec.from_norm(n))
        assert _close(back, n), (n, back)


@pytest.mark.parametrize("spec", CONTINUOUS, ids=lambda s: s.name)
def test_value_norm_value_round_trips_over_the_range(spec):
    for v in np.linspace(spec.min, spec.max, 1001):
        back = spec.from_norm(spec.to_norm(v))
        assert _close(back, v), (v, back)


@pytest.mark.parametrize("spec", CONTINUOUS + DISCRETE, ids=lambda s: s.name)
def test_endpoints_map_exactly_and_mapping_is_monotonic(spec):
    assert spec.from_norm(0.0) == spec.min and spec.from_norm(1.0) == spec.max
    assert spec.to_norm(spec.min) == 0.0 and spec.to_norm(spec.max) == 1.0
    values = [spec.from_norm(n) for n in GRID]
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_curve_formulas_match_their_definitions():
    assert CUTOFF.from_norm(0.5) == pytest.approx(20.0 * 1000.0 ** 0.5, rel=1e-14)
    assert ATTACK.from_norm(0.5) == pytest.approx(20000.0 * 0.125, rel=1e-14)
    assert GAIN.from_norm(0.5) == pytest.approx(-24.0, rel=1e-14)
    assert LEVEL.from_norm(0.25) == 0.25


@pytest.mark.parametrize("spec", DISCRETE, ids=lambda s: s.name)
def test_discrete_value_norm_value_is_exact_for_every_step(spec):
    for step in range(int(spec.min), int(spec.max) + 1):
        assert spec.from_norm(spec.to_norm(float(step))) == float(step)


@pytest.mark.parametrize("spec", DISCRETE, ids=lambda s: s.name)
def test_discrete_from_norm_only_yields_whole_steps(spec):
    for n in GRID:
        value = spec.from_norm(n)
        assert value == math.floor(value) and spec.min <= value <= spec.max


def test_discrete_from_norm_rounds_to_nearest_step():
    assert SHAPE.from_norm(0.24) == 0.0
    assert SHAPE.from_norm(0.26) == 1.0
    assert SHAPE.from_norm(0.74) == 1.0
    assert SHAPE.from_norm(0.76) == 2.0
    assert SYNC.from_norm(0.49) == 0.0 and SYNC.from_norm(0.51) == 1.0
    assert TRANSPOSE.to_norm(2.4) == TRANSPOSE.to_norm(2.0)


@pytest.mark.parametrize("spec", CONTINUOUS + DISCRETE, ids=lambda s: s.name)
def test_njit_engine_math_agrees_with_paramspec_on_grid(spec):
    meta = (int(spec.curve), spec.min, spec.max, spec.skew, int(spec.kind))
    for n in GRID:
        assert _close(norm_to_value(*meta, n), spec.from_norm(n), rel=1e-14, abs_=0.0)
    for v in np.linspace(spec.min, spec.max, 1001):
        assert _close(value_to_norm(*meta, v), spec.to_norm(v), rel=1e-14, abs_=1e-15)


def test_njit_math_returns_safe_values_for_non_finite_input():
    for bad in (math.nan, math.inf, -math.inf):
        assert norm_to_value(1, 20.0, 20000.0, 1.0, 0, bad) == 20.0
        assert value_to_norm(1, 20.0, 20000.0, 1.0, 0, bad) == 0.0


def test_njit_math_clamps_and_survives_bad_metadata():
    assert norm_to_value(0, 0.0, 10.0, 1.0, 0, 1.5) == 10.0
    assert norm_to_value(0, 0.0, 10.0, 1.0, 0, -0.5) == 0.0
    assert value_to_norm(0, 0.0, 10.0, 1.0, 0, 99.0) == 1.0
    assert norm_to_value(0, 5.0, 5.0, 1.0, 0, 0.5) == 5.0  # hi == lo
    assert value_to_norm(0, 5.0, 1.0, 1.0, 0, 3.0) == 0.0  # hi < lo
    assert math.isfinite(norm_to_value(1, 0.0, 10.0, 1.0, 0, 0.5))  # LOG with lo == 0
    assert math.isfinite(norm_to_value(2, 0.0, 10.0, -1.0, 0, 0.5))  # skew <= 0


@pytest.mark.parametrize("method", ["to_norm", "from_norm", "clamp", "format"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "abc", None])
def test_non_finite_or_non_numeric_input_raises_param_error_naming_the_param(method, bad):
    with pytest.raises(ParamError, match="cutoff_hz"):
        getattr(CUTOFF, method)(bad)


def test_out_of_range_values_and_norms_are_clamped():
    assert CUTOFF.to_norm(50000.0) == 1.0 and CUTOFF.to_norm(1.0) == 0.0
    assert CUTOFF.from_norm(1.5) == 20000.0 and CUTOFF.from_norm(-0.5) == 20.0
    assert CUTOFF.clamp(-3.0) == 20.0 and CUTOFF.clamp(1e9) == 20000.0 and CUTOFF.clamp(440) == 440


@pytest.mark.parametrize("spec, value, text", [
    (CUTOFF, 440.0, "440 Hz"), (CUTOFF, 1200.0, "1.20 kHz"), (CUTOFF, 55.0, "55.0 Hz"),
    (CUTOFF, 999.6, "1.00 kHz"), (CUTOFF, 20000.0, "20.0 kHz"), (CUTOFF, 12345.0, "12.3 kHz"),
    (GAIN, -6.0, "-6.0 dB"), (GAIN, -0.01, "0.0 dB"), (GAIN, 3.25, "3.2 dB"),
    (ATTACK, 250.0, "250 ms"), (ATTACK, 1500.0, "1.50 s"), (ATTACK, 5.0, "5.00 ms"),
    (ATTACK, 0.0, "0 ms"), (ATTACK, 999.9, "1.00 s"),
    (DETUNE, 7.0, "+7.0 cents"), (DETUNE, -12.0, "-12.0 cents"), (DETUNE, -0.01, "+0.0 cents"),
    (LEVEL, 0.5, "0.50"), (LEVEL, 0.0, "0.00"),
    (ParamSpec("mix_pct", "Mix", "%", 0.0, 100.0, 50.0), 12.0, "12.0 %"),
    (SHAPE, 0.0, "Saw"), (SHAPE, 2.0, "Triangle"), (SYNC, 1.0, "on"), (SYNC, 0.0, "off"),
    (TRANSPOSE, 3.0, "3 st"), (TRANSPOSE, -12.0, "-12 st"),
    (ParamSpec.integer("octave", "Octave", "", -3, 3, 0), 2.0, "2"),
])
def test_format_prints_each_unit_family(spec, value, text):
    assert spec.format(value) == text


def test_format_clamps_before_printing():
    assert CUTOFF.format(1e6) == "20.0 kHz"
    assert SHAPE.format(7.0) == "Triangle"


@pytest.mark.parametrize("spec, text, value", [
    (CUTOFF, "1.2k", 1200.0), (CUTOFF, "1.2 kHz", 1200.0), (CUTOFF, "1200", 1200.0),
    (CUTOFF, "1200hz", 1200.0), (CUTOFF, "1.2KHZ", 1200.0), (CUTOFF, " 440 Hz ", 440.0),
    (CUTOFF, "1e3", 1000.0), (CUTOFF, "30 kHz", 20000.0), (CUTOFF, "5", 20.0),
    (GAIN, "-6db", -6.0), (GAIN, "-6.0 dB", -6.0), (GAIN, "-6", -6.0), (GAIN, "\u22126 dB", -6.0),
    (ATTACK, "250ms", 250.0), (ATTACK, "1.5 s", 1500.0), (ATTACK, "1.50 s", 1500.0),
    (ATTACK, "250", 250.0), (ATTACK, ".5ms", 0.5),
    (ParamSpec("hold_s", "Hold", "s", 0.0, 10.0, 1.0), "250 ms", 0.25),
    (DETUNE, "+7.0 cents", 7.0), (DETUNE, "7", 7.0), (DETUNE, "-12c", -12.0),
    (DETUNE, "3 ct", 3.0),
    (LEVEL, "0.5", 0.5), (LEVEL, "50%", 0.5), (LEVEL, "1.7", 1.0),
    (TRANSPOSE, "3", 3.0), (TRANSPOSE, "+3 st", 3.0), (TRANSPOSE, "2.6st", 3.0),
    (SHAPE, "saw", 0.0), (SHAPE, "SQUARE", 1.0), (SHAPE, "2", 2.0), (SHAPE, " Triangle ", 2.0),
    (SYNC, "on", 1.0), (SYNC, "OFF", 0.0), (SYNC, "true", 1.0), (SYNC, "false", 0.0),
    (SYNC, "yes", 1.0), (SYNC, "no", 0.0), (SYNC, "1", 1.0), (SYNC, "0", 0.0),
    (CUTOFF, 440, 440.0), (CUTOFF, 1e9, 20000.0),
])
def test_parse_reads_common_forms(spec, text, value):
    assert spec.parse(text) == pytest.approx(value, rel=1e-12)


ALL_SPECS = CONTINUOUS + DISCRETE + [
    DETUNE, ParamSpec("hold_s", "Hold", "s", 0.0, 10.0, 1.0),
    ParamSpec("mix_pct", "Mix", "%", 0.0, 100.0, 50.0),
    ParamSpec("shift_hz", "Shift", "Hz", -2000.0, 2000.0, 0.0),
]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_format_parse_format_is_stable_over_the_range(spec):
    for n in GRID:
        text = spec.format(spec.from_norm(n))
        assert spec.format(spec.parse(text)) == text, (n, text)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_formatted_text_parses_back_close_to_the_value(spec):
    for n in GRID[::50]:
        value = spec.from_norm(n)
        assert spec.parse(spec.format(value)) == pytest.approx(value, rel=0.006, abs=0.051)


def test_junk_text_error_names_param_text_and_accepted_form():
    with pytest.raises(ParamError) as info:
        CUTOFF.parse("abc")
    assert str(info.value) == (
        "cutoff_hz: cannot read 'abc' as Hz (expected a number like '1.2 kHz' or '440')")


@pytest.mark.parametrize("spec, junk, hint", [
    (CUTOFF, "12 parsecs", "kHz"), (CUTOFF, "nan", "kHz"), (CUTOFF, "inf Hz", "kHz"),
    (CUTOFF, "1e999", "kHz"), (CUTOFF, "", "kHz"), (CUTOFF, None, "kHz"),
    (GAIN, "loud", "dB"), (GAIN, "-6 Hz", "dB"), (ATTACK, "fast", "250 ms"),
    (DETUNE, "sharp", "cents"), (LEVEL, "half", "0.50"), (TRANSPOSE, "up", "whole number"),
    (SHAPE, "sine", "'Saw', 'Square', 'Triangle'"), (SHAPE, "3", "index 0-2"),
    (SHAPE, "-1", "index 0-2"), (SYNC, "maybe", "on/off"), (SYNC, True, "on/off"),
])
def test_junk_text_raises_param_error_with_fix(spec, junk, hint):
    with pytest.raises(ParamError) as info:
        spec.parse(junk)
    message = str(info.value)
    assert message.startswith(f"{spec.name}: cannot read {junk!r}") and hint in message
    assert "\n" not in message


def _bad(**changes):
    return dataclasses.replace(LEVEL, **changes)


@pytest.mark.parametrize("spec, fragment", [
    (_bad(name="2level"), "not an identifier"),
    (_bad(name="cutoff hz"), "not an identifier"),
    (_bad(name="class"), "not an identifier"),
    (_bad(label=" "), "label is empty"),
    (_bad(min=1.0, max=1.0, default=1.0), "min 1 is not below max 1"),
    (_bad(min=2.0, max=1.0, default=1.5), "is not below max"),
    (_bad(default=2.0), "default 2 is outside 0..1"),
    (_bad(curve=Curve.LOG), "LOG curve needs min > 0"),
    (_bad(curve=Curve.EXP, skew=0.0), "skew 0 must be > 0"),
    (_bad(skew=-1.0), "must be > 0"),
    (_bad(smoothing_ms=-5.0), "smoothing_ms -5 must be >= 0"),
    (_bad(min=math.nan), "min nan is not a finite number"),
    (_bad(max=math.inf), "max inf is not a finite number"),
    (_bad(default="0.5"), "default '0.5' is not a finite number"),
    (_bad(smoothing_ms=math.nan), "smoothing_ms nan is not a finite number"),
    (_bad(curve=7), "curve 7 is not one of LINEAR, LOG, EXP, DB"),
    (_bad(kind=9), "kind 9 is not one of"),
    (_bad(smoothing=5), "smoothing 5 is not one of"),
    (_bad(curve=Curve.DB), "DB curve needs unit 'dB'"),
    (_bad(choices=("A", "B")), "choices given but kind is CONTINUOUS"),
    (ParamSpec("shape", "Shape", "", 0.0, 1.0, 0.0, kind=Kind.CHOICE), "non-empty tuple"),
    (ParamSpec("shape", "Shape", "", 0.0, 2.0, 0.0, kind=Kind.CHOICE, choices=("A", "B")),
     "CHOICE needs min 0 and max 1"),
    (ParamSpec.choice("shape", "Shape", ("Saw", "saw")), "labels repeat"),
    (ParamSpec.choice("shape", "Shape", ("Saw", "")), "non-empty string"),
    (ParamSpec.choice("shape", "Shape", ("Saw", "Square"), default="Sine"), "default -1"),
    (dataclasses.replace(SHAPE, curve=Curve.LOG), "CHOICE needs the LINEAR curve"),
    (ParamSpec("sync", "Sync", "", 0.0, 2.0, 0.0, kind=Kind.BOOL), "BOOL needs min 0 and max 1"),
    (ParamSpec("oct", "Octave", "", -3.5, 3.0, 0.0, kind=Kind.INTEGER), "min -3.5 is not a whole"),
    (ParamSpec("oct", "Octave", "", -3.0, 3.0, 0.5, kind=Kind.INTEGER), "default 0.5 is not a"),
])
def test_problems_catches_each_bad_metadata_case(spec, fragment):
    found = spec.problems()
    assert any(fragment in p for p in found), found


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_problems_is_empty_for_sane_specs(spec):
    assert spec.problems() == []


def test_native_meta_is_seven_floats_with_discrete_smoothing_off():
    meta = CUTOFF.native_meta()
    assert meta == (1.0, 20.0, 20000.0, 1.0, 0.0, 1.0, 20.0)
    assert all(type(x) is float for x in meta)
    discrete = dataclasses.replace(TRANSPOSE, smoothing=Smoothing.LINEAR, smoothing_ms=50.0)
    assert discrete.native_meta()[5] == float(Smoothing.NONE)
    assert dataclasses.replace(LEVEL, smoothing_ms=0.0).native_meta()[5] == 0.0
    lin = dataclasses.replace(LEVEL, smoothing=Smoothing.LINEAR, smoothing_ms=5.0)
    assert lin.native_meta()[5:] == (2.0, 5.0)


def test_constructors_fill_in_implied_range_and_kind():
    assert (SHAPE.kind, SHAPE.min, SHAPE.max, SHAPE.default) == (Kind.CHOICE, 0.0, 2.0, 0.0)
    assert ParamSpec.choice("s", "S", ["A", "B"], default="b").default == 1.0
    assert ParamSpec.choice("s", "S", ["A", "B"]).choices == ("A", "B")
    assert (SYNC.kind, SYNC.min, SYNC.max, SYNC.default) == (Kind.BOOL, 0.0, 1.0, 0.0)
    assert ParamSpec.toggle("s", "S", default=True).default == 1.0
    assert TRANSPOSE.kind == Kind.INTEGER and TRANSPOSE.is_discrete and not LEVEL.is_discrete


def test_spec_is_frozen_and_normalizes_ints_and_codes():
    spec = ParamSpec("t", "T", "st", -48, 48, 0, curve=0, kind=1, smoothing=2)
    assert type(spec.min) is float and type(spec.default) is float
    assert spec.curve is Curve.LINEAR and spec.kind is Kind.INTEGER
    assert spec.smoothing is Smoothing.LINEAR
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.min = 0.0  # type: ignore[misc]
    assert hash(spec) == hash(ParamSpec("t", "T", "st", -48.0, 48.0, 0.0, kind=Kind.INTEGER,
                                        smoothing=Smoothing.LINEAR))


def test_default_norm_is_the_normalized_default():
    assert CUTOFF.default_norm == CUTOFF.to_norm(2000.0)
    assert SHAPE.default_norm == 0.0
