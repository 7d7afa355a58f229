"""The block renderer's template imported on its own (``engine.render_template``: with the
built-in ops only, module ops skipped): its helpers and the block loop's mechanics measured
without any module kernel."""

import math

import numpy as np

import instrument.engine.render_template as rt
from instrument.engine.builtin_ops import run_builtin_ops
from instrument.engine.events import NOTE_ON
from instrument.engine.instance import PlanInstance, allocated_lanes
from instrument.layout import (
    CTX_PITCH_STEADY, CTX_WIDTH, E_ACTIVE_VOICES, ROW_GATE, ROW_PITCH, ROW_TRIGGER, V_BEND,
    V_KEY_DOWN, V_PITCH, V_PITCH_TARGET, V_TRIGGER, V_WIDTH,
)
from instrument.presets import compile_file
from live import REPO

BLOCK = 64


def test_imported_alone_it_dispatches_the_builtin_ops():
    assert rt.run_ops is run_builtin_ops


def test_event_offsets_and_channels_are_clamped_never_trusted():
    assert [rt._offset(x, BLOCK) for x in (-3.0, math.nan, 10.7, 63.0, 200.0)] == [0, 0, 10, 63,
                                                                                       63]
    assert [rt._channel(x) for x in (5.0, 15.0, 16.0, -1.0, math.nan)] == [5, 15, 0, 0, 0]


def test_an_event_plays_in_its_block_or_the_calls_last_one():
    assert rt._in_block(70.0, 64, BLOCK, False)
    assert not rt._in_block(128.0, 64, BLOCK, False)
    assert rt._in_block(500.0, 64, BLOCK, True)  # late: clamped into the last block
    assert rt._in_block(math.nan, 64, BLOCK, False)  # NaN counts as 0


def test_voice_rows_hold_gate_and_pitch_with_the_trigger_on_the_first_sample_only():
    lanes = 2
    vbufs = np.zeros((10, BLOCK, lanes))
    voices = np.zeros((lanes, V_WIDTH))
    vctx = np.zeros((CTX_WIDTH, lanes))
    for v, note in enumerate((69.0, 81.0)):
        voices[v, V_KEY_DOWN] = 1.0
        voices[v, V_PITCH] = voices[v, V_PITCH_TARGET] = note
    voices[0, V_TRIGGER] = 1.0
    voices[1, V_BEND] = 0.0
    rt._voice_rows(vbufs, voices, vctx, 2.0, 2.0, 0.0, 0.0, 16, BLOCK, lanes)
    assert np.all(vbufs[ROW_GATE, 16:] == 1.0) and np.all(vbufs[ROW_GATE, :16] == 0.0)
    assert vbufs[ROW_TRIGGER, 16, 0] == 1.0 and vbufs[ROW_TRIGGER].sum() == 1.0
    assert voices[0, V_TRIGGER] == 0.0  # consumed
    # semitone_ratio: within 1e-10 (2e-7 cent)
    np.testing.assert_allclose(vbufs[ROW_PITCH, 16:, 0], 440.0 * 2.0 ** (2.0 / 12.0), rtol=1e-10)
    np.testing.assert_allclose(vbufs[ROW_PITCH, 16:, 1], 880.0 * 2.0 ** (2.0 / 12.0), rtol=1e-10)


def test_voice_rows_flag_the_lanes_whose_pitch_holds_through_the_segment():
    """A lane gliding to its target, or under a moving bend, is not steady; a lane at its
    target is, and its whole row is the one value the flag promises."""
    lanes = 3
    vbufs = np.zeros((10, BLOCK, lanes))
    voices = np.zeros((lanes, V_WIDTH))
    vctx = np.zeros((CTX_WIDTH, lanes))
    voices[:, V_PITCH] = voices[:, V_PITCH_TARGET] = 60.0
    voices[1, V_PITCH] = 48.0  # gliding up to 60
    rt._voice_rows(vbufs, voices, vctx, 0.0, 0.0, 0.99, 0.0, 0, BLOCK, lanes)
    assert list(vctx[CTX_PITCH_STEADY]) == [1.0, 0.0, 1.0]
    assert np.all(vbufs[ROW_PITCH, :, 0] == vbufs[ROW_PITCH, 0, 0])
    assert vbufs[ROW_PITCH, -1, 1] > vbufs[ROW_PITCH, 0, 1]
    rt._voice_rows(vbufs, voices, vctx, 0.0, 0.5, 0.99, 0.0, 0, BLOCK, lanes)  # bend moving
    assert list(vctx[CTX_PITCH_STEADY]) == [0.0, 0.0, 0.0]


def test_voice_rows_are_rewritten_only_where_their_value_changed():
    """A lane's gate and steady pitch are written once, when they change: a second segment with
    the same values writes nothing (a row scribbled on stays scribbled), a changed gate is
    written from the segment's start on."""
    lanes = 2
    vbufs = np.zeros((10, BLOCK, lanes))
    voices = np.zeros((lanes, V_WIDTH))
    vctx = np.zeros((CTX_WIDTH, lanes))
    voices[:, V_KEY_DOWN] = 1.0
    voices[:, V_PITCH] = voices[:, V_PITCH_TARGET] = 60.0
    rt._voice_rows(vbufs, voices, vctx, 0.0, 0.0, 0.0, 0.0, 0, BLOCK, lanes)
    assert np.all(vbufs[ROW_GATE] == 1.0)
    vbufs[ROW_GATE, 5, 0] = vbufs[ROW_PITCH, 5, 0] = -7.0  # not the engine's: it must not look
    rt._voice_rows(vbufs, voices, vctx, 0.0, 0.0, 0.0, 0.0, 0, BLOCK, lanes)
    assert vbufs[ROW_GATE, 5, 0] == -7.0 and vbufs[ROW_PITCH, 5, 0] == -7.0
    voices[1, V_KEY_DOWN] = 0.0  # released at sample 40
    rt._voice_rows(vbufs, voices, vctx, 0.0, 0.0, 0.0, 0.0, 40, BLOCK, lanes)
    assert np.all(vbufs[ROW_GATE, 40:, 1] == 0.0) and np.all(vbufs[ROW_GATE, :40, 1] == 1.0)
    assert np.all(vbufs[ROW_TRIGGER] == 0.0)


def test_voice_rows_stay_right_through_segments_blocks_and_voices_moving_lanes():
    """poly16's state rendered by the template alone over 300 blocks of random notes (some
    in the same block, some released; silent voices are freed, and the last voice moves into
    the freed lane), glide-free pitch bends and sustain: after every block each running
    lane's rows as the next block's first segment reads them are its own gate and pitch
    (moved voices included), and the trigger row is all zeros again."""
    from instrument.layout import CTX_GATE_ROW, CTX_PITCH_NOW, E_BEND, V_SUSTAINED
    from instrument.engine.events import CC, CC_SUSTAIN, NOTE_OFF, PITCH_BEND

    rng = np.random.default_rng(5)
    instance = PlanInstance(compile_file(REPO / "presets" / "poly16.toml", 48000, BLOCK))
    no_out = np.zeros((0, 2), dtype=np.float32)
    lanes = instance.vbufs.shape[2]
    sounding: list[float] = []
    moved = 0
    for _ in range(300):
        events = []
        for _ in range(int(rng.integers(0, 4))):
            at = float(rng.integers(0, BLOCK))
            kind = rng.random()
            if kind < 0.45 or not sounding:
                note = float(rng.integers(36, 96))
                sounding.append(note)
                events.append([at, NOTE_ON, 0.0, note, 0.8])
            elif kind < 0.85:
                events.append([at, NOTE_OFF, 0.0, sounding.pop(int(rng.integers(len(sounding)))),
                               0.0])
            elif kind < 0.95:
                events.append([at, PITCH_BEND, 0.0, rng.uniform(-1.0, 1.0), 0.0])
            else:
                events.append([at, CC, 0.0, CC_SUSTAIN, float(rng.random() < 0.5)])
        events.sort()
        ev = np.array(events or [[0.0] * 5], dtype=np.float64)
        before = int(instance.eng[E_ACTIVE_VOICES])
        rt.render_block(instance.state, ev, len(events), np.zeros(8), no_out)
        moved += int(instance.eng[E_ACTIVE_VOICES]) < before
        assert np.all(instance.vbufs[ROW_TRIGGER] == 0.0)
        # What the voice kernels of the next block's first segment read:
        vbufs, voices, vctx = (a.copy() for a in (instance.vbufs, instance.voices, instance.vctx))
        bend = instance.eng[E_BEND]
        rt._voice_rows(vbufs, voices, vctx, bend, bend, 0.0, 0.0, 0, BLOCK, lanes)
        for v in range(int(instance.eng[E_ACTIVE_VOICES])):
            held = voices[v, V_KEY_DOWN] != 0.0 or voices[v, V_SUSTAINED] != 0.0
            assert np.all(vbufs[ROW_GATE, :, v] == float(held))
            if vctx[CTX_PITCH_STEADY, v] == 1.0:
                assert np.all(vbufs[ROW_PITCH, :, v] == vctx[CTX_PITCH_NOW, v])
            assert vctx[CTX_GATE_ROW, v] == float(held)  # recorded: the next one writes nothing
    assert moved > 10  # voices were freed (and lanes moved) along the way


def test_a_note_on_splits_the_block_at_its_offset():
    """poly16's state rendered by the template alone: no module runs, but the note-on at
    sample 10 takes a voice, whose gate row is low before sample 10 and high from it."""
    instance = PlanInstance(compile_file(REPO / "presets" / "poly16.toml", 48000, BLOCK))
    events = np.array([[10.0, NOTE_ON, 0.0, 60.0, 0.8]])
    no_out = np.zeros((0, 2), dtype=np.float32)
    rt.render_block(instance.state, events, 1, np.zeros(8), no_out)
    assert instance.eng[E_ACTIVE_VOICES] == 1
    gate = instance.vbufs[ROW_GATE, :, 0]
    assert np.all(gate[:10] == 0.0) and np.all(gate[10:] == 1.0)


def test_voice_arrays_hold_whole_lane_blocks_from_4_voices_on():
    assert [allocated_lanes(p) for p in (1, 2, 3, 4, 6, 8, 10, 12, 16)] == [
        1, 2, 3, 8, 8, 8, 16, 16, 16]


def test_voice_kernels_run_more_than_4_voices_on_whole_blocks_of_8_lanes_within_polyphony():
    assert [rt.kernel_lanes(n, 16) for n in (0, 1, 3, 4, 5, 8, 9, 12, 13, 16)] == [
        0, 1, 3, 4, 8, 8, 16, 16, 16, 16]
    assert [rt.kernel_lanes(n, 6) for n in (1, 5, 6)] == [1, 6, 6]
    assert rt.kernel_lanes(1, 1) == 1
