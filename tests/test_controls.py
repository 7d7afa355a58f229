"""Mod wheel (CC1) and aftertouch reach the sound through the ``controls`` module: poly16 routes
the mod wheel into its filter cutoff; a variant routes channel pressure the same way."""

import pytest

from helpers import compile_toml, make_engine, render, spectral_centroid
from instrument.engine.events import CC, CHANNEL_PRESSURE, NOTE_ON
from live import REPO

SR = 48000
POLY16 = (REPO / "presets" / "poly16.toml").read_text()
PRESSURE = POLY16.replace('"ctl.mod_wheel -> filt.cutoff_hz * 0.35"',
                          '"ctl.pressure -> filt.cutoff_hz * 0.35"')


@pytest.mark.parametrize("preset, kind, a, b", [(POLY16, CC, 1, 1.0),
                                                (PRESSURE, CHANNEL_PRESSURE, 1.0, 0.0)],
                         ids=["mod-wheel", "aftertouch"])
def test_controller_opens_the_filter(preset, kind, a, b):
    assert preset != POLY16 or kind == CC
    plan = compile_toml(preset, SR, 64)
    events = [(0, NOTE_ON, 0, 48, 0.8), (int(1.5 * SR), kind, 0, a, b)]
    out = render(make_engine(plan), 2 * SR, events)[:, 0]
    before = out[int(1.0 * SR):int(1.4 * SR)]
    after = out[int(1.6 * SR):int(2.0 * SR)]
    assert spectral_centroid(after, SR) > 1.5 * spectral_centroid(before, SR)
