"""Mod wheel (CC1) and aftertouch reach the sound through the ``controls`` module: init routes
the mod wheel into its filter cutoff; a variant routes channel pressure the same way."""

import pytest

from helpers import compile_toml, make_engine, render, spectral_centroid
from instrument.engine.events import CC, CHANNEL_PRESSURE, NOTE_ON
from live import REPO

SR = 48000
INIT = (REPO / "presets" / "init.toml").read_text()
PRESSURE = INIT.replace('"ctl.mod_wheel -> filt.cutoff_hz * 0.3"',
                        '"ctl.pressure -> filt.cutoff_hz * 0.3"')


@pytest.mark.parametrize("preset, kind, a, b", [(INIT, CC, 1, 1.0),
                                                (PRESSURE, CHANNEL_PRESSURE, 1.0, 0.0)],
                         ids=["mod-wheel", "aftertouch"])
def test_controller_opens_the_filter(preset, kind, a, b):
    assert preset != INIT or kind == CC
    plan = compile_toml(preset, SR, 64)
    events = [(0, NOTE_ON, 0, 48, 0.8), (int(1.5 * SR), kind, 0, a, b)]  # init sustains 0.7
    out = render(make_engine(plan), 2 * SR, events)[:, 0]
    before = out[int(1.0 * SR):int(1.4 * SR)]
    after = out[int(1.6 * SR):int(2.0 * SR)]
    assert spectral_centroid(after, SR) > 1.5 * spectral_centroid(before, SR)
