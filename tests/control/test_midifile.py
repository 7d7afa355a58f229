"""Standard MIDI File reading: exact frames through tempo changes, kinds, errors, block slicing."""

from __future__ import annotations

import time

import numpy as np
import pytest

import midi_fixtures as fx
from instrument.control.midifile import MidiEvents, iter_blocks, read_midi_events
from instrument.engine import events as ev
from instrument.engine.events import (
    CC,
    CHANNEL_PRESSURE,
    NOTE_OFF,
    NOTE_ON,
    PITCH_BEND,
    POLY_PRESSURE,
    PROGRAM,
)
from instrument.errors import InstrumentError, MidiFileError
from live import REPO

SHARED_MIDI_DIR = REPO.parent / "shared" / "data" / "midi"
REAL_FILES = sorted(SHARED_MIDI_DIR.glob("*.mid")) if SHARED_MIDI_DIR.is_dir() else []


def notes(result: MidiEvents, kind: int) -> list[tuple[int, int, int]]:
    """``(frame, channel, note)`` of every event of ``kind``, in array order."""
    rows = result.events[result.events[:, ev.KIND] == kind]
    return [(int(r[ev.FRAME]), int(r[ev.CHANNEL]), int(r[ev.A])) for r in rows]


def test_type0_frames_and_counts(tmp_path):
    result = read_midi_events(fx.write_type0(tmp_path), 48000)
    assert result.events.dtype == np.float64 and result.events.shape == (4, 5)
    assert result.events[:, :3].tolist() == [
        [0, NOTE_ON, 0],
        [24000, NOTE_OFF, 0],
        [24000, NOTE_ON, 0],
        [48000, NOTE_OFF, 0],
    ]
    assert result.events[:, ev.A].tolist() == [60, 60, 64, 64]
    assert result.events[:, ev.B].tolist() == [100 / 127, 0.0, 1.0, 64 / 127]
    assert (result.n_notes, result.n_tracks, result.duration_s) == (2, 1, 1.0)


def test_type1_tempo_change_in_track0_moves_notes_of_every_track(tmp_path):
    result = read_midi_events(fx.write_type1_tempo_change(tmp_path), 48000)
    assert notes(result, NOTE_ON) == [(0, 0, 60), (50, 1, 64), (48000, 9, 36), (60000, 0, 62)]
    assert notes(result, NOTE_OFF) == [(24000, 0, 60), (54000, 1, 64), (72000, 0, 62),
                                       (84000, 9, 36)]
    assert (result.n_notes, result.n_tracks, result.duration_s) == (4, 3, 2.0)


def test_frames_round_half_up_exactly_at_44100(tmp_path):
    # tick 1 = 45.9375 frames; tick 1200 = 44100 + 240 * 22.96875 = 49612.5 -> 49613
    result = read_midi_events(fx.write_type1_tempo_change(tmp_path), 44100)
    assert notes(result, NOTE_ON)[1] == (46, 1, 64)
    assert notes(result, NOTE_OFF)[1] == (49613, 1, 64)


def test_frames_are_sorted_and_same_frame_keeps_file_order(tmp_path):
    result = read_midi_events(fx.write_type1_tempo_change(tmp_path), 48000)
    frames = result.events[:, ev.FRAME]
    assert np.all(np.diff(frames) >= 0)
    assert np.array_equal(frames, np.round(frames))
    # type0: note 60 off and note 64 on share frame 24000, in that order in the file
    type0 = read_midi_events(fx.write_type0(tmp_path), 48000).events
    assert type0[1:3, ev.KIND].tolist() == [NOTE_OFF, NOTE_ON]


def test_every_message_kind_maps_to_its_event(tmp_path):
    result = read_midi_events(fx.write_all_kinds(tmp_path), 48000)
    expected = [
        [0, PROGRAM, 3, 42, 0],
        [500, CC, 3, 7, 1.0],
        [1000, PITCH_BEND, 3, -1.0, 0],
        [1500, PITCH_BEND, 3, 8191 / 8192, 0],
        [2000, CHANNEL_PRESSURE, 3, 64 / 127, 0],
        [2500, NOTE_ON, 3, 70, 1 / 127],
        [3000, POLY_PRESSURE, 3, 70, 1.0],
        [3500, NOTE_OFF, 3, 70, 1.0],
    ]
    assert result.events.tolist() == expected
    assert result.n_notes == 1


def test_note_on_velocity_zero_is_note_off(tmp_path):
    result = read_midi_events(fx.write_velocity0_note_off(tmp_path), 48000)
    assert result.events.tolist() == [[0, NOTE_ON, 0, 48, 80 / 127], [12000, NOTE_OFF, 0, 48, 0.0]]


def test_sysex_and_meta_are_skipped_and_running_status_is_decoded(tmp_path):
    result = read_midi_events(fx.write_sysex_running_status(tmp_path), 48000)
    assert result.events.tolist() == [
        [0, NOTE_ON, 0, 60, 100 / 127],
        [0, NOTE_ON, 0, 64, 80 / 127],
        [24000, NOTE_OFF, 0, 60, 0.0],
        [24000, NOTE_OFF, 0, 64, 0.0],
        [24000, CC, 1, 7, 100 / 127],
        [24000, CC, 1, 10, 64 / 127],
    ]
    assert result.duration_s == 2.5


def test_smpte_division_ignores_tempo(tmp_path):
    result = read_midi_events(fx.write_smpte(tmp_path), 48000)
    assert notes(result, NOTE_ON) == [(48000, 0, 60)]
    assert notes(result, NOTE_OFF) == [(72000, 0, 60)]


def test_empty_track_file_gives_empty_array(tmp_path):
    path = tmp_path / "empty_track.mid"
    path.write_bytes(fx.smf_bytes(bytes.fromhex("00 FF 2F 00")))
    result = read_midi_events(path, 48000)
    assert result.events.shape == (0, 5)
    assert (result.n_notes, result.n_tracks, result.duration_s) == (0, 1, 0.0)


# -- errors: one line naming the file, what is wrong and a fix ---------------------------------

ERROR_CASES = {
    "missing": (lambda d: d / "nope.mid", "file not found"),
    "directory": (lambda d: d, "is a directory"),
    "empty": (lambda d: (d / "empty.mid", (d / "empty.mid").write_bytes(b""))[0], "file is empty"),
    "garbage": (fx.write_garbage, "not a Standard MIDI File"),
    "truncated": (fx.write_truncated, "truncated"),
    "truncated_header": (
        lambda d: (d / "th.mid", (d / "th.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00"))[0],
        "truncated",
    ),
    "bad_data_byte": (fx.write_bad_data_byte, "corrupt MIDI data"),
    "type2": (fx.write_type2, "type 2"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_unreadable_files_raise_one_line_midifileerror(tmp_path, case):
    make, what = ERROR_CASES[case]
    path = make(tmp_path)
    with pytest.raises(MidiFileError) as info:
        read_midi_events(path, 48000)
    text = str(info.value)
    assert isinstance(info.value, InstrumentError)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert what in text
    assert info.value.fix  # every error says how to fix it


def test_bad_sample_rate_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError):
        read_midi_events(fx.write_type0(tmp_path), 0)


# -- iter_blocks ---------------------------------------------------------------------------


def test_iter_blocks_offsets_and_block_membership(tmp_path):
    events = read_midi_events(fx.write_type1_tempo_change(tmp_path), 48000).events
    n_frames, block_size = 96000, 64
    blocks = list(iter_blocks(events, block_size, n_frames))
    assert len(blocks) == 1500
    got = [(i, int(row[ev.FRAME])) for i, block in enumerate(blocks) for row in block]
    want = [(int(f) // block_size, int(f) % block_size) for f in events[:, ev.FRAME]]
    assert got == want
    # other columns untouched, order kept
    assert np.array_equal(np.concatenate(blocks)[:, 1:], events[:, 1:])


def test_iter_blocks_partial_last_block_and_out_of_range_events():
    events = ev.event_array([
        (-1, NOTE_ON, 0, 1, 1.0),
        (0, NOTE_ON, 0, 2, 1.0),
        (99, NOTE_ON, 0, 3, 1.0),
        (100, NOTE_ON, 0, 4, 1.0),
        (249, NOTE_ON, 0, 5, 1.0),
        (250, NOTE_ON, 0, 6, 1.0),  # == n_frames: past the end
    ])
    blocks = list(iter_blocks(events, 100, 250))
    assert len(blocks) == 3
    assert [b[:, ev.A].tolist() for b in blocks] == [[2, 3], [4], [5]]
    assert [b[:, ev.FRAME].tolist() for b in blocks] == [[0, 99], [0], [49]]


def test_iter_blocks_yields_read_only_views_and_empty_blocks():
    events = ev.event_array([(130, NOTE_ON, 0, 60, 1.0)])
    blocks = list(iter_blocks(events, 64, 256))
    assert [b.shape for b in blocks] == [(0, 5), (0, 5), (1, 5), (0, 5)]
    assert blocks[2][0, ev.FRAME] == 2
    assert not blocks[2].flags.writeable
    assert events[0, ev.FRAME] == 130  # input not modified
    assert list(iter_blocks(events, 64, 0)) == []


def test_iter_blocks_costs_one_slice_per_block():
    # A minute at 48 kHz in 64-frame blocks is 45 000 blocks; the renderer calls this per file.
    rng = np.random.default_rng(1)
    n_frames = 48000 * 60
    frames = np.sort(rng.integers(0, n_frames, 20000)).astype(np.float64)
    events = np.zeros((frames.size, 5))
    events[:, ev.FRAME] = frames
    start = time.perf_counter()
    total = sum(len(block) for block in iter_blocks(events, 64, n_frames))
    elapsed_s = time.perf_counter() - start
    assert total == frames.size
    print(f"\niter_blocks: a minute of 20 000 events in {elapsed_s * 1e3:.1f} ms (~10 ms on a laptop)")


# -- real-world files (shared test data beside the checkout; absent on users' machines) ---------


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
def test_real_world_files_read_plausibly(path):
    result = read_midi_events(path, 48000)
    frames = result.events[:, ev.FRAME]
    assert result.n_notes > 0
    assert np.all(np.diff(frames) >= 0)
    assert frames[-1] <= round(result.duration_s * 48000)
    n_off = int(np.count_nonzero(result.events[:, ev.KIND] == NOTE_OFF))
    assert abs(n_off - result.n_notes) <= result.n_notes // 100 + 1  # offs roughly match ons
    assert np.all((result.events[:, ev.CHANNEL] >= 0) & (result.events[:, ev.CHANNEL] <= 15))
    assert np.all(np.abs(result.events[:, ev.B]) <= 1.0)


def test_real_world_file_counts_match_their_readme():
    if not REAL_FILES:
        pytest.skip(f"no shared MIDI data at {SHARED_MIDI_DIR}")
    expected = {  # (n_tracks, n_notes, duration_s rounded) from the README / mido
        "magenta-english3.mid": (3, 1350, 184),
        "prettymidi-example.mid": (1, 4956, 361),
    }
    for name, (n_tracks, n_notes, duration_s) in expected.items():
        result = read_midi_events(SHARED_MIDI_DIR / name, 48000)
        assert (result.n_tracks, result.n_notes, int(result.duration_s)) == (
            n_tracks, n_notes, duration_s)



def test_fuzzed_files_raise_only_midifileerror(tmp_path):
    # Seeded byte flips and cuts of a valid file: every outcome is a result or a MidiFileError.
    good = fx.write_type1_tempo_change(tmp_path).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzzed.mid"
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        if rng.random() < 0.3:
            data = data[: rng.integers(0, len(data))]
        path.write_bytes(bytes(data))
        try:
            result = read_midi_events(path, 48000)
        except MidiFileError as exc:
            assert "\n" not in str(exc)
        else:
            assert np.all(np.diff(result.events[:, ev.FRAME]) >= 0)
