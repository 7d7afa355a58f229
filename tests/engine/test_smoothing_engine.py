"""Parameter smoothing measured through the engine's audio at 44.1, 48 and 96 kHz.

Method: render the same note twice, with and without a PARAM event; the sample-by-sample ratio
of the two outputs is the gain the parameter applied (exact wherever the reference is not near
a zero crossing). Continuous parameters must cover 99% of a step at their declared smoothing
time (one-pole) or land exactly at the end of their ramp (linear); discrete ones must jump, at
a block boundary, with no value in between.
"""

import math

import numpy as np
import pytest

from helpers import (
    RATES, compile_toml, make_engine, note_on, param, render, simple_toml, test_registry,
)
from instrument.params.smoothing import linear_ramp_samples

BLOCK = 64

VCA = simple_toml("sine", osc_params="level = 0.5", vca="gain = 1.0\nvelocity_amount = 0")
GLOBAL_GAIN = simple_toml("sine", osc_params="level = 0.2", global_graph="""
[global]
connect = ["voices.left -> trim.in", "trim.out -> main.in"]
[global.nodes.voices]
type = "voices"
[global.nodes.trim]
type = "gain"
gain_db = {start_db}
[global.nodes.main]
type = "output"
""")
RAMP = """
format = 1
[voice]
connect = ["osc.out -> ramp.in", "ramp.out -> out.in"]
[voice.nodes.osc]
type = "sine"
level = 0.5
[voice.nodes.ramp]
type = "ramp_gain"
gain = 1.0
[voice.nodes.out]
type = "output"
"""


def _gain_curve(plan, path, value, frame, n_frames, note=69):
    """(applied gain per sample, valid mask): output with the PARAM event at ``frame`` divided
    by the output without it."""
    index = plan.param_index(path)
    norm = plan.params[index].spec.to_norm(value)
    ref = render(make_engine(plan), n_frames, [note_on(0, note)])[:, 0].astype(np.float64)
    out = render(make_engine(plan), n_frames,
                 [note_on(0, note), param(frame, index, norm)])[:, 0].astype(np.float64)
    valid = np.abs(ref) > 0.1 * np.abs(ref).max()
    gain = np.ones_like(ref)
    gain[valid] = out[valid] / ref[valid]
    return gain, valid


def _samples_to_99(progress, valid, frame):
    """1-based count from ``frame`` of the first valid sample that covered 99% of the step."""
    idx = np.flatnonzero(valid[frame:] & (progress[frame:] >= 0.99))
    assert idx.size, "never reached 99%"
    return int(idx[0]) + 1


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("start, target", [(1.0, 0.2), (0.2, 1.5)])
def test_vca_gain_step_reaches_99_percent_at_its_smoothing_time(sample_rate, start, target):
    plan = compile_toml(VCA.replace("gain = 1.0", f"gain = {start}"), sample_rate, BLOCK)
    spec = plan.params[plan.param_index("amp.gain")].spec
    frame = 20 * BLOCK + 13  # mid-block: the step starts at the event's own sample
    n = frame + int(3 * spec.smoothing_ms * 0.001 * sample_rate)
    gain, valid = _gain_curve(plan, "amp.gain", target, frame, n)
    gain *= start  # ratio to the reference -> absolute gain
    assert np.all(gain[:frame][valid[:frame]] == pytest.approx(start, abs=1e-6))
    first = frame + int(np.flatnonzero(valid[frame:])[0])
    assert abs(gain[first] - start) > 1e-4  # moving from the event's sample on
    progress = (gain - start) / (target - start)
    expected = spec.smoothing_ms * 0.001 * sample_rate
    measured = _samples_to_99(progress, valid, frame)
    assert abs(measured - expected) <= 0.05 * expected, (measured, expected)
    # One-pole shape: half the time covers 1 - 0.01 ** 0.5 = 90% of the step.
    half = frame + int(round(expected / 2)) - 1
    window = slice(half - 8, half + 9)
    mid = progress[window][valid[window]]
    assert np.all(np.abs(mid - 0.9) < 0.01), mid
    assert gain[-200:][valid[-200:]] == pytest.approx(target, abs=1e-5)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("start_db, target_db", [(0.0, -20.0), (-30.0, 6.0)])
def test_global_gain_db_step_reaches_99_percent_in_db_at_its_smoothing_time(
        sample_rate, start_db, target_db):
    plan = compile_toml(GLOBAL_GAIN.format(start_db=start_db), sample_rate, BLOCK)
    spec = plan.params[plan.param_index("trim.gain_db")].spec
    frame = 30 * BLOCK + 40
    n = frame + int(3 * spec.smoothing_ms * 0.001 * sample_rate)
    gain, valid = _gain_curve(plan, "trim.gain_db", target_db, frame, n)
    db = start_db + 20.0 * np.log10(np.abs(gain))
    assert np.all(np.abs(db[:frame][valid[:frame]] - start_db) < 1e-4)
    progress = (db - start_db) / (target_db - start_db)
    expected = spec.smoothing_ms * 0.001 * sample_rate
    measured = _samples_to_99(progress, valid, frame)
    assert abs(measured - expected) <= 0.05 * expected, (measured, expected)
    assert db[-200:][valid[-200:]] == pytest.approx(target_db, abs=1e-3)


@pytest.mark.parametrize("sample_rate", RATES)
def test_linear_smoothing_ramps_straight_and_lands_exactly_at_its_time(sample_rate):
    plan = compile_toml(RAMP, sample_rate, BLOCK, registry=test_registry())
    spec = plan.params[plan.param_index("ramp.gain")].spec
    ramp = linear_ramp_samples(spec.smoothing_ms, sample_rate)
    assert ramp == round(0.050 * sample_rate)
    frame = 10 * BLOCK + 5
    n = frame + 2 * ramp
    gain, valid = _gain_curve(plan, "ramp.gain", 0.3, frame, n)
    j = np.arange(len(gain)) - frame
    expected = np.where(j < 0, 1.0, np.where(j >= ramp - 1, 0.3, 1.0 - 0.7 * (j + 1) / ramp))
    np.testing.assert_allclose(gain[valid], expected[valid], atol=2e-6)
    landed = frame + int(np.flatnonzero(valid[frame:] & (np.abs(gain[frame:] - 0.3) < 1e-6))[0])
    assert landed - frame + 1 <= ramp + 3  # the first valid sample on target (gaps at zeros)


def _ideal_sine(n, sample_rate, boundary, f0, f1, level=0.5):
    """A sine at f0 that switches to f1 at sample ``boundary``, phase continuous (phase 0 at
    sample 0, as the oscillator starts)."""
    j = np.arange(n, dtype=np.float64)
    phase = np.where(j < boundary, j * f0 / sample_rate,
                     boundary * f0 / sample_rate + (j - boundary) * f1 / sample_rate)
    return level * np.sin(2.0 * np.pi * phase)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("offsets, values", [((13,), (12,)), ((5, 40), (5, 12)),
                                             ((0,), (12,)), ((63,), (-7,))])
def test_discrete_transpose_switches_only_at_a_block_boundary_with_no_value_between(
        sample_rate, offsets, values):
    """PARAM events for ``transpose_st`` inside block b: blocks up to b keep the old pitch,
    block b+1 plays the last value exactly; an event at offset 0 takes effect at once. The
    output is compared with an ideal phase-continuous sine, so any intermediate pitch (such
    as half a transposition, or the 5 of ``(5, 12)``) would show."""
    plan = compile_toml(VCA, sample_rate, BLOCK)
    index = plan.param_index("osc.transpose_st")
    spec = plan.params[index].spec
    b = 12
    events = [note_on(0, 69)] + [param(b * BLOCK + o, index, spec.to_norm(v))
                                 for o, v in zip(offsets, values)]
    boundary = b * BLOCK if offsets == (0,) else (b + 1) * BLOCK
    n = (b + 6) * BLOCK
    out = render(make_engine(plan), n, events)[:, 0].astype(np.float64)
    f1 = 440.0 * 2.0 ** (values[-1] / 12.0)
    ideal = _ideal_sine(n, sample_rate, boundary, 440.0, f1)
    np.testing.assert_allclose(out, ideal, atol=2e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.5, 1.5])
def test_non_finite_or_out_of_range_targets_in_the_shared_table_are_ignored(bad):
    """Another process writes the normalized targets (shared memory); junk there must not
    reach the sound."""
    plan = compile_toml(VCA, 48000, BLOCK)
    index = plan.param_index("amp.gain")
    ref = render(make_engine(plan), 20 * BLOCK, [note_on(0, 69)])
    engine = make_engine(plan)

    def control(block, eng):
        if block == 5:
            eng.current.ptarget[index] = bad

    out = render(engine, 20 * BLOCK, [note_on(0, 69)], on_block=control)
    assert np.all(np.isfinite(out))
    assert np.array_equal(out, ref)
