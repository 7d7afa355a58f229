"""The pieces behind the hardening defects, without processes: preset names from the network,
bounded preset reading, the plan hand-over pipe, the player state replayed after a restart,
and the recording that survives restarts."""

import io
import os
import pickle
import threading
import time

import numpy as np
import pytest

from instrument.audio.wav import read_wav
from instrument.engine.events import (
    ALL_NOTES_OFF, BEND_RANGE, CC, CC_ALL_NOTES_OFF, CC_MOD_WHEEL, CC_SUSTAIN, NOTE_OFF, NOTE_ON,
    PITCH_BEND,
)
from instrument.errors import PresetError
from instrument.presets import compile_file, load_preset
from instrument.presets.folder import preset_files, resolve_preset_name
from instrument.runtime.handover import encode, read_message
from instrument.runtime.player_state import PlayerState
from instrument.runtime.recording import (
    RawRecorder, finish_recording, raw_path_for, recover_leftover, trim_partial_frame,
)
from instrument.tomlfile import MAX_FILE_BYTES
from live import REPO

PRESETS = REPO / "presets"


# ---- preset names from the network -----------------------------------------------------------
@pytest.mark.parametrize("name", ["pad", "pad.toml", "poly16"])
def test_a_preset_name_resolves_inside_the_preset_folder(name):
    path = resolve_preset_name(name, PRESETS)
    assert path.parent == PRESETS and path.suffix == ".toml"


@pytest.mark.parametrize("name", [
    "a" * 300, "/dev/zero", "../../etc/passwd", "/etc/passwd", "presets/pad.toml", ".hidden",
    "pad\n", "..", "pad/../pad", "", " pad", "pad\x00", "\u00e9t\u00e9",
])
def test_paths_and_odd_names_from_the_network_are_refused_before_any_file_is_touched(name):
    with pytest.raises(PresetError) as err:
        resolve_preset_name(name, PRESETS)
    line = str(err.value)
    assert "\n" not in line and len(line) < 200  # one line, the name cut short
    assert "/preset/load" in line


def test_an_unknown_preset_name_suggests_the_nearest():
    with pytest.raises(PresetError, match="did you mean|pad"):
        resolve_preset_name("pda", PRESETS)


def test_preset_files_are_the_regular_toml_files_sorted_by_name(tmp_path):
    for name in ("b.toml", "a.toml", "c.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "d.toml").mkdir()
    assert [p.name for p in preset_files(tmp_path)] == ["a.toml", "b.toml"]


# ---- bounded reading ---------------------------------------------------------------------------
@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom"])
def test_special_files_are_refused_at_once_not_read(special):
    t0 = time.monotonic()
    with pytest.raises(PresetError, match="not a regular file"):
        load_preset(special)
    assert time.monotonic() - t0 < 5.0  # before: read until memory ran out


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    done = []
    worker = threading.Thread(target=lambda: done.append(_error_of(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done and "not a regular file" in done[0]


def _error_of(path):
    try:
        load_preset(path)
    except PresetError as exc:
        return str(exc)
    return ""


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(PresetError, match="too large"):
        load_preset(big)


def test_a_name_too_long_for_the_file_system_is_one_line():
    with pytest.raises(PresetError, match="cannot read file"):
        load_preset("a" * 300)


# ---- plan hand-over ----------------------------------------------------------------------------
def test_a_plan_crosses_the_pipe_intact_and_names_its_renderer():
    plan = compile_file(PRESETS / "pad.toml", 48000, 64)
    stream = io.BytesIO(encode(("plan", 1, plan, 7)) + encode(("quit",)))
    kind, table, got, seq = read_message(stream)
    assert (kind, table, seq) == ("plan", 1, 7)
    assert got.renderer_key == plan.renderer_key and got.text == plan.text
    for name in ("cfg", "ops", "io", "pr", "fa", "pmeta", "vinit", "ginit"):
        assert np.array_equal(getattr(got, name), getattr(plan, name))
    assert [s.path for s in got.params] == [s.path for s in plan.params]
    assert read_message(stream) == ("quit",)
    assert read_message(stream) is None  # end of input: the host is gone


def test_a_truncated_message_reads_as_end_of_input():
    data = encode(("plan", 0, "x" * 1000, 1))
    assert read_message(io.BytesIO(data[:-10])) is None
    assert read_message(io.BytesIO(data[:2])) is None


def test_a_plan_is_plain_data():
    plan = compile_file(PRESETS / "poly16.toml", 48000, 64)
    assert isinstance(plan.renderer_key, str)
    assert pickle.loads(pickle.dumps(plan)).text == plan.text


# ---- player state ------------------------------------------------------------------------------
def test_restore_replays_held_keys_bend_pedal_and_wheel_but_not_released_keys():
    state = PlayerState()
    state.note(PITCH_BEND, 0, 0.5, 0.0)
    state.note(CC, 0, CC_MOD_WHEEL, 0.25)
    state.note(NOTE_ON, 0, 60, 0.8)
    state.note(NOTE_ON, 0, 64, 0.7)
    state.note(NOTE_OFF, 0, 64, 0.0)
    state.note(NOTE_ON, 1, 67, 0.6)
    events = state.restore_events()
    assert (PITCH_BEND, 0, 0.5, 0.0) in events
    assert (CC, 0, float(CC_MOD_WHEEL), 0.25) in events
    notes = [(e[1], e[2]) for e in events if e[0] == NOTE_ON]
    assert sorted(notes) == [(0, 60.0), (1, 67.0)]
    first_note = next(i for i, e in enumerate(events) if e[0] == NOTE_ON)
    assert all(e[0] != NOTE_ON for e in events[:first_note])  # controllers before notes


def test_pedal_held_notes_come_back_struck_and_released_under_the_pedal():
    state = PlayerState()
    state.note(CC, 0, CC_SUSTAIN, 1.0)
    state.note(NOTE_ON, 0, 60, 0.8)
    state.note(NOTE_OFF, 0, 60, 0.0)
    events = state.restore_events()
    assert events[0] == (CC, 0, float(CC_SUSTAIN), 1.0)
    assert events[1:] == [(NOTE_ON, 0, 60.0, 0.8), (NOTE_OFF, 0, 60.0, 0.0)]
    state.note(CC, 0, CC_SUSTAIN, 0.0)  # pedal up: the note ended
    assert state.restore_events() == []


def test_all_notes_off_and_a_velocity_zero_note_on_release_keys():
    state = PlayerState()
    state.note(NOTE_ON, 0, 60, 0.8)
    state.note(NOTE_ON, 0, 62, 0.0)  # running-status note-off
    state.note(NOTE_ON, 2, 62, 0.8)
    state.note(CC, 2, CC_ALL_NOTES_OFF, 0.0)
    assert [e[2] for e in state.restore_events()] == [60.0]
    state.note(ALL_NOTES_OFF, 0, 0.0, 0.0)
    assert state.restore_events() == []


def test_the_bend_range_is_replayed_first_until_a_preset_load():
    state = PlayerState()
    state.note(PITCH_BEND, 0, 1.0, 0.0)
    state.note(BEND_RANGE, 3, 12.0, 0.0)
    events = state.restore_events()
    assert events[0] == (BEND_RANGE, 0, 12.0, 0.0)  # before the bend it scales
    assert (PITCH_BEND, 0, 1.0, 0.0) in events
    state.preset_loaded()
    assert all(e[0] != BEND_RANGE for e in state.restore_events())


# ---- recording across restarts -------------------------------------------------------------
def test_two_processes_append_and_the_host_writes_one_wav(tmp_path):
    wav = tmp_path / "take.wav"
    raw = raw_path_for(wav)
    a = np.full((480, 2), 0.25, dtype=np.float32)
    b = np.full((480, 2), -0.5, dtype=np.float32)
    first = RawRecorder(raw)
    first.write(a)
    first.file.write(b"\x01\x02\x03")  # killed halfway through a frame
    first.close()
    trim_partial_frame(raw)
    second = RawRecorder(raw)
    second.write(b)
    second.close()
    assert finish_recording(raw, wav, 48000) == 960
    x, sr = read_wav(wav)
    assert sr == 48000 and x.shape == (960, 2)
    assert np.allclose(x[:480], 0.25, atol=1e-6) and np.allclose(x[480:], -0.5, atol=1e-6)
    assert not raw.exists()


def test_a_raw_file_left_by_a_killed_host_is_kept_as_recovered(tmp_path):
    wav = tmp_path / "take.wav"
    raw = raw_path_for(wav)
    recorder = RawRecorder(raw)
    recorder.write(np.zeros((48, 2), dtype=np.float32))
    recorder.close()
    kept = recover_leftover(raw, wav, 48000)
    assert kept == tmp_path / "take.recovered.wav" and kept.exists() and not raw.exists()
    assert recover_leftover(raw, wav, 48000) is None
