"""Switching presets in the middle of a held chord: no click above -60 dBFS (issue 3).

Two measurements:

1. A click is broadband. With a chord of sines (262-392 Hz) switched to sines a fifth up
   (392-587 Hz), everything the output holds above 3 kHz (8th-order Butterworth high-pass,
   which leaves the tones themselves below -90 dBFS) is the switch's own transient. The
   engine's 20 ms equal-power crossfade keeps that below -60 dBFS; a hard cut (a one-sample
   fade, the same engine) shows the measurement does see clicks.
2. For every shipped preset switched to the next one (the chord struck again in the new
   preset, as the engine does): the output across the crossfade and after it, minus the ideal
   equal-power mix of the two presets rendered on their own (old preset going on, new preset
   struck at the switch), peaks below -60 dBFS: the switch adds nothing of its own.
"""

import math

import numpy as np
import pytest

from helpers import compile_toml, make_engine, note_on, render, simple_toml
from instrument.engine.engine import DEFAULT_CROSSFADE_MS
from instrument.layout import V_KEY_DOWN, V_NOTE
from instrument.presets import compile_file
from live import REPO

SR = 48000
BLOCK = 64
CHORD = (60, 64, 67)
PRESETS = sorted((REPO / "presets").glob("*.toml"))
CLICK_LIMIT_DBFS = -60.0


def dbfs(x) -> float:
    peak = float(np.max(np.abs(x)))
    return 20.0 * math.log10(max(peak, 1e-12))


def _switch(plan_a, plan_b, switch_s, total_s, velocity=1.0, **engine_kwargs):
    """Play CHORD on plan_a, switch to plan_b at ``switch_s``; (output, switch frame, notes
    struck again in plan_b)."""
    block = int(switch_s * SR) // BLOCK
    restruck = []

    def control(b, engine):
        if b == block:
            cur = engine.current
            restruck.extend(int(cur.voices[v, V_NOTE]) for v in range(engine.active_voices)
                            if cur.voices[v, V_KEY_DOWN] != 0.0)
            engine.swap(plan_b)

    engine = make_engine(plan_a, **engine_kwargs)
    out = render(engine, int(total_s * SR), [note_on(0, n, velocity) for n in CHORD],
                 on_block=control)
    return out.astype(np.float64), block * BLOCK, restruck


def _high_passed_peak_dbfs(out, start, stop):
    from scipy.signal import butter, sosfilt

    sos = butter(8, 3000.0, "highpass", fs=SR, output="sos")
    return dbfs(sosfilt(sos, out[:stop, 0])[start:stop])


SINES = simple_toml("sine", osc_params="level = 0.25")
SINES_UP = simple_toml("sine", osc_params="level = 0.25\ntranspose_st = 7")


@pytest.fixture(scope="module")
def sine_plans():
    return compile_toml(SINES, SR, BLOCK), compile_toml(SINES_UP, SR, BLOCK)


def test_switching_a_sine_chord_clicks_below_minus_60_dbfs(sine_plans):
    out, s, _ = _switch(*sine_plans, 0.5, 1.0)
    fade = int(DEFAULT_CROSSFADE_MS * 0.001 * SR)
    steady = _high_passed_peak_dbfs(out, s - int(0.2 * SR), s)  # the tones alone
    click = _high_passed_peak_dbfs(out, s - BLOCK, s + fade + int(0.05 * SR))
    assert steady < -90.0, steady
    assert click < CLICK_LIMIT_DBFS, f"click at {click:.1f} dBFS"
    assert dbfs(out[s:s + fade]) > -12.0  # the chord does sound through the switch


def test_the_click_measurement_sees_a_hard_cut(sine_plans):
    out, s, _ = _switch(*sine_plans, 0.5, 1.0, crossfade_ms=1000.0 / SR)
    click = _high_passed_peak_dbfs(out, s - BLOCK, s + int(0.07 * SR))
    assert click > CLICK_LIMIT_DBFS + 10.0, f"a hard cut measured only {click:.1f} dBFS"


@pytest.mark.parametrize("a,b", list(zip(PRESETS, PRESETS[1:] + PRESETS[:1])),
                         ids=lambda p: p.stem)
def test_switching_shipped_presets_mid_chord_adds_nothing_above_minus_60_dbfs(a, b):
    plan_a, plan_b = compile_file(a, SR, BLOCK), compile_file(b, SR, BLOCK)
    switch_s, total_s = 0.6, 1.0
    # Velocity 100: presets are levelled so chords at 100 stay under the output limiter. The
    # comparison with the ideal mix holds only where nothing is limited (the limiter is not
    # linear), which the reference renders below must show.
    velocity = 100 / 127
    out, s, restruck = _switch(plan_a, plan_b, switch_s, total_s, velocity)
    assert restruck, "the chord was not held at the switch"
    fade = int(round(DEFAULT_CROSSFADE_MS * 0.001 * SR))
    old = render(make_engine(plan_a), int(total_s * SR),
                 [note_on(0, n, velocity) for n in CHORD]).astype(np.float64)
    new = render(make_engine(plan_b), int(total_s * SR),
                 [note_on(0, n, velocity) for n in restruck]).astype(np.float64)
    assert max(dbfs(old), dbfs(new)) < -0.5, "the references reach the limiter"
    t = (np.arange(fade) / fade)[:, None]
    ideal = np.concatenate([np.cos(0.5 * np.pi * t) * old[s:s + fade]
                            + np.sin(0.5 * np.pi * t) * new[:fade],
                            new[fade:len(out) - s]])
    click = dbfs(out[s:] - ideal)
    assert click < CLICK_LIMIT_DBFS, f"{a.stem} -> {b.stem}: {click:.1f} dBFS beyond the fade"
    assert dbfs(out[s:s + fade]) > -40.0  # the chord does sound through the switch
