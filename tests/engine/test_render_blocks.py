"""Many blocks per native call (``Engine.process_blocks``, offline rendering) give the very
samples that one call per block gives: events at their offsets across block boundaries, and a
block that blows up recovered the same way, the rendering going on from the next block."""

from __future__ import annotations


import numpy as np
import pytest

from helpers import (
    ONE_VOICE_BLOWS, QUIET_VELOCITY, bend, cc, compile_toml, make_engine, note_off, note_on, render, test_registry,
)
from instrument.engine.events import EVENT_WIDTH
from instrument.presets import compile_file

from live import REPO

SR = 48000
BLOCK = 64


def render_in_chunks(engine, n_frames: int, events, chunk_blocks: int) -> np.ndarray:
    """``n_frames`` through ``process_blocks``, ``chunk_blocks`` blocks per call (the last
    call may hold fewer), event offsets counted from each call's first frame."""
    n_blocks = -(-n_frames // BLOCK)
    ev = np.array(list(events), dtype=np.float64).reshape(-1, EVENT_WIDTH)
    ev = ev[np.argsort(ev[:, 0], kind="stable")]
    out = np.zeros((n_blocks * BLOCK, 2), dtype=np.float32)
    chunk = chunk_blocks * BLOCK
    for start in range(0, n_blocks * BLOCK, chunk):
        stop = min(start + chunk, n_blocks * BLOCK)
        lo, hi = np.searchsorted(ev[:, 0], [start, stop], side="left")
        part = ev[lo:hi].copy()
        part[:, 0] -= start
        engine.process_blocks(part, len(part), out[start:stop])
    return out


def busy_score(seed: int = 3) -> list[tuple]:
    """Notes, bends and CCs at random frames, some on block edges and some sharing a frame."""
    rng = np.random.default_rng(seed)
    events = []
    for k in range(40):
        frame = int(rng.integers(0, SR)) if k % 4 else 64 * int(rng.integers(0, SR // 64))
        note = int(rng.integers(40, 80))
        events.append(note_on(frame, note, float(rng.uniform(0.2, 1.0))))
        events.append(note_off(frame + int(rng.integers(1, 9000)), note))
    for k in range(20):
        frame = int(rng.integers(0, SR))
        events.append(bend(frame, float(rng.uniform(-1, 1))))
        events.append(cc(frame, 1, float(rng.uniform(0, 1))))
    return events


@pytest.mark.parametrize("chunk_blocks", [1, 7, 256])
def test_many_blocks_per_call_are_the_samples_of_one_call_per_block(chunk_blocks):
    plan = compile_file(REPO / "presets" / "poly16.toml", SR, BLOCK)
    events = busy_score()
    reference = render(make_engine(plan), int(1.3 * SR), events)
    out = render_in_chunks(make_engine(plan), int(1.3 * SR), events, chunk_blocks)
    assert np.abs(reference).max() > 0.01
    np.testing.assert_array_equal(out, reference)


def test_a_block_that_blows_up_mid_call_is_recovered_and_the_rest_rendered():
    plan = compile_toml(ONE_VOICE_BLOWS, SR, BLOCK, registry=test_registry())
    events = [note_on(0, 60, QUIET_VELOCITY), note_on(0, 64, QUIET_VELOCITY),
              note_on(2000, 67, 1.0)]
    per_block = make_engine(plan)
    reference = render(per_block, int(0.5 * SR), events)
    chunked = make_engine(plan)
    out = render_in_chunks(chunked, int(0.5 * SR), events, 100)
    assert per_block.nonfinite_resets == chunked.nonfinite_resets == 1
    assert chunked.active_voices == 2
    np.testing.assert_array_equal(out, reference)
