"""Mod wheel (CC1) and aftertouch reach the sound through the ``controls`` module: poly16 routes
both into its filter cutoff."""

import pytest

from helpers import compile_toml, make_engine, render, spectral_centroid
from instrument.engine.events import CC, CHANNEL_PRESSURE, NOTE_ON
from live import REPO

SR = 48000


@pytest.mark.parametrize("kind, a, b", [(CC, 1, 1.0), (CHANNEL_PRESSURE, 1.0, 0.0)],
                         ids=["mod-wheel", "aftertouch"])
def test_controller_opens_the_filter_of_poly16(kind, a, b):
    plan = compile_toml((REPO / "presets" / "poly16.toml").read_text(), SR, 64)
    events = [(0, NOTE_ON, 0, 48, 0.8), (int(1.5 * SR), kind, 0, a, b)]
    out = render(make_engine(plan), 2 * SR, events)[:, 0]
    before = out[int(1.0 * SR):int(1.4 * SR)]
    after = out[int(1.6 * SR):int(2.0 * SR)]
    assert spectral_centroid(after, SR) > 1.5 * spectral_centroid(before, SR)
