"""Small Standard MIDI Files written for tests, each with hand-checkable timing.

Provenance: generated here with mido 1.3 (or assembled byte by byte where the exact encoding is
the point, e.g. running status), not captured from gear. Real-world files live in
``/work/shared/data/midi`` (see its README) and are tested when present.

Timing used below: ``TICKS_PER_BEAT = 480``; at the default 120 BPM one tick is 0.5 / 480 s,
i.e. 50 frames at 48 kHz; at 240 BPM it is 25 frames.
"""

from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_BEAT = 480
TEMPO_120_BPM = 500_000
TEMPO_240_BPM = 250_000


def _save(tracks: list[list], path: Path, midi_type: int, ticks_per_beat: int = TICKS_PER_BEAT):
    """Save tracks given as absolute-tick message lists ``[(tick, msg), ...]``."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, msg in sorted(messages, key=lambda item: item[0]):
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def note(tick_on: int, tick_off: int, note_number: int, velocity: int = 100, channel: int = 0):
    return [
        (tick_on, mido.Message("note_on", note=note_number, velocity=velocity, channel=channel)),
        (tick_off, mido.Message("note_off", note=note_number, velocity=0, channel=channel)),
    ]


def write_type0(directory: Path) -> Path:
    """Type 0, 120 BPM: C4 at ticks 0..480, E4 at 480..960 with release velocity 64.

    Frames at 48 kHz: 0, 24000 (C4 off and E4 on, in that file order), 48000; duration 1.0 s.
    """
    track = [(0, mido.MetaMessage("set_tempo", tempo=TEMPO_120_BPM))]
    track += note(0, 480, 60)
    track += [
        (480, mido.Message("note_on", note=64, velocity=127)),
        (960, mido.Message("note_off", note=64, velocity=64)),
        (960, mido.MetaMessage("end_of_track")),
    ]
    return _save([track], directory / "type0.mid", 0)


def write_type1_tempo_change(directory: Path) -> Path:
    """Type 1, three tracks on channels 0, 1 and 9; tempo 120 -> 240 BPM at tick 960 (1.0 s).

    The tempo map lives only in track 0 and must move the notes of tracks 1 and 2.
    Notes (tick on/off -> frames at 48 kHz):
    - ch 0, note 60: 0/480 -> 0/24000; note 62: 1440/1920 -> 60000/72000
    - ch 1, note 64: 1/1200 -> 50/54000 (crosses the tempo change)
    - ch 9, note 36: 960/2400 -> 48000/84000 (starts on the change)
    End of track 2 at tick 2880 -> 96000 frames, 2.0 s.
    """
    conductor = [
        (0, mido.MetaMessage("set_tempo", tempo=TEMPO_120_BPM)),
        (960, mido.MetaMessage("set_tempo", tempo=TEMPO_240_BPM)),
    ]
    conductor += note(0, 480, 60, channel=0) + note(1440, 1920, 62, channel=0)
    second = note(1, 1200, 64, velocity=90, channel=1)
    drums = note(960, 2400, 36, velocity=120, channel=9)
    drums.append((2880, mido.MetaMessage("end_of_track")))
    return _save([conductor, second, drums], directory / "type1_tempo.mid", 1)


def write_all_kinds(directory: Path) -> Path:
    """Type 0, one message of every mapped kind on channel 3, 10 ticks apart (500 frames)."""
    kinds = [
        mido.Message("program_change", program=42, channel=3),
        mido.Message("control_change", control=7, value=127, channel=3),
        mido.Message("pitchwheel", pitch=-8192, channel=3),
        mido.Message("pitchwheel", pitch=8191, channel=3),
        mido.Message("aftertouch", value=64, channel=3),
        mido.Message("note_on", note=70, velocity=1, channel=3),
        mido.Message("polytouch", note=70, value=127, channel=3),
        mido.Message("note_off", note=70, velocity=127, channel=3),
    ]
    track = [(10 * i, msg) for i, msg in enumerate(kinds)]
    return _save([track], directory / "all_kinds.mid", 0)


def write_velocity0_note_off(directory: Path) -> Path:
    """Type 0: note 48 on at tick 0 (velocity 80), ``note_on`` velocity 0 at tick 240 (12000)."""
    track = [
        (0, mido.Message("note_on", note=48, velocity=80)),
        (240, mido.Message("note_on", note=48, velocity=0)),
    ]
    return _save([track], directory / "velocity0.mid", 0)


def write_smpte(directory: Path) -> Path:
    """Type 0 with SMPTE division 25 fps x 40 ticks = 1000 ticks/s: note on at tick 1000 (1.0 s).

    A set_tempo is present and must be ignored (SMPTE time is absolute).
    """
    division = -((25 << 8) - 40)  # high byte -25 (two's complement), low byte 40
    track = [(0, mido.MetaMessage("set_tempo", tempo=TEMPO_240_BPM))]
    track += note(1000, 1500, 60)
    return _save([track], directory / "smpte.mid", 0, ticks_per_beat=division)


def smf_bytes(track_body: bytes, ticks_per_beat: int = 96, midi_type: int = 0) -> bytes:
    """A one-track SMF around raw track bytes, so tests control the encoding exactly."""
    header = b"MThd" + (6).to_bytes(4, "big")
    header += midi_type.to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += ticks_per_beat.to_bytes(2, "big")
    return header + b"MTrk" + len(track_body).to_bytes(4, "big") + track_body


# 96 ticks per beat, 120 BPM: one tick = 250 frames at 48 kHz.
SYSEX_RUNNING_STATUS_TRACK = bytes.fromhex(
    "00 F0 05 7E 7F 09 01 F7"  # t=0   SysEx (GM system on): skipped
    "00 FF 03 04 6C 65 61 64"  # t=0   meta track name "lead": skipped
    "00 90 3C 64"  # t=0   note on ch0 60 vel 100
    "00 40 50"  # t=0   running status: note on 64 vel 80
    "60 3C 00"  # t=96  running status: note 60 vel 0 -> NOTE_OFF at 24000
    "00 40 00"  # t=96  running status: note 64 vel 0 -> NOTE_OFF
    "00 B1 07 64"  # t=96  CC ch1 7 = 100
    "00 0A 40"  # t=96  running status: CC ch1 10 = 64
    "83 00 FF 2F 00"  # t=480 (two-byte delta 384): end of track -> 2.5 s
)


def write_sysex_running_status(directory: Path) -> Path:
    """Raw bytes (mido writes running status itself, but here the encoding is the test)."""
    path = directory / "sysex_running_status.mid"
    path.write_bytes(smf_bytes(SYSEX_RUNNING_STATUS_TRACK))
    return path


def write_garbage(directory: Path) -> Path:
    path = directory / "garbage.mid"
    path.write_bytes(b"this is not a MIDI file\n" * 8)
    return path


def write_truncated(directory: Path) -> Path:
    """The type 1 fixture cut 7 bytes before its end, inside the last track."""
    data = write_type1_tempo_change(directory).read_bytes()
    path = directory / "truncated.mid"
    path.write_bytes(data[:-7])
    return path


def write_bad_data_byte(directory: Path) -> Path:
    """A note on whose velocity byte is 0x80 (data bytes must be < 0x80)."""
    path = directory / "bad_data_byte.mid"
    path.write_bytes(smf_bytes(bytes.fromhex("00 90 3C 80 00 FF 2F 00")))
    return path


def write_type2(directory: Path) -> Path:
    track = note(0, 480, 60)
    return _save([track, track], directory / "type2.mid", 2)
