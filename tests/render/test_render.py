"""``instrument render PRESET --midi FILE.mid -o OUT.wav``: the real command, in a subprocess.

What is measured: the WAV format (read from the header bytes), level (non-silent, peak at or
below the -0.3 dBFS limiter ceiling), pitch by FFT, timing through a tempo change, the length of
the release tail, byte-identical re-renders, sustain pedal and pitch bend from the file, and
one-line errors that leave no partial WAV behind. MIDI fixtures are written by
``tests/midi_fixtures.py`` (mido); real-world files from ``/work/shared/data/midi`` when present.

poly16 numbers used below: amp envelope release 500 ms (exponential, reaching silence exactly at
the end), two saws detuned -7/+7 cents (so a measured pitch may sit up to 7 cents off the note),
pitch bend range 2 semitones (the preset default).
"""

from __future__ import annotations

import math
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from instrument.audio.wav import read_wav

import midi_fixtures as mf
from live import REPO

POLY16 = REPO / "presets" / "poly16.toml"
REAL_MIDI = REPO.parent / "shared" / "data" / "midi"
TIMEOUT_S = 600  # a cold numba cache compiles the fused renderer first (~30 s)

CEILING = 10 ** (-0.3 / 20)
RELEASE_S = 0.5  # poly16 aenv.release_ms
PITCH_TOLERANCE_CENTS = 10.0  # the detuned saws are +-7 cents


# -- helpers -----------------------------------------------------------------------------------

def render(midi, out, *extra, preset=POLY16, cwd=REPO) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("instrument")
    args = [str(script), "render", str(preset), "--midi", str(midi), "-o", str(out), *extra]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)


def render_ok(midi, out, *extra, **kwargs) -> np.ndarray:
    result = render(midi, out, *extra, **kwargs)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    frames, _ = read_wav(out)
    return frames


def wav_format(path) -> dict:
    """fmt chunk fields and frame count, straight from the file's bytes."""
    raw = Path(path).read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    chunks, pos = {}, 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        chunks[cid] = raw[pos + 8:pos + 8 + size]
        pos += 8 + size + size % 2
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", chunks[b"fmt "])
    return {"tag": tag, "channels": channels, "rate": rate, "byte_rate": byte_rate,
            "align": align, "bits": bits, "frames": len(chunks[b"data"]) // align}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def window(frames: np.ndarray, rate: int, t0: float, t1: float) -> np.ndarray:
    return frames[int(t0 * rate):int(t1 * rate)]


def spectrum_peaks(mono: np.ndarray, rate: int, lo_hz: float, hi_hz: float, count: int):
    """The ``count`` strongest local maxima of the Hann-windowed, 8x zero-padded magnitude
    spectrum between lo_hz and hi_hz, as frequencies (parabolic interpolation), strongest first."""
    n = len(mono)
    size = 1 << int(math.ceil(math.log2(n * 8)))
    mag = np.abs(np.fft.rfft(mono * np.hanning(n), size))
    hz = np.arange(len(mag)) * rate / size
    lo, hi = np.searchsorted(hz, lo_hz), np.searchsorted(hz, hi_hz)
    k = np.arange(max(lo, 1), min(hi, len(mag) - 1))
    local = k[(mag[k] > mag[k - 1]) & (mag[k] >= mag[k + 1])]
    best = local[np.argsort(mag[local])[::-1][:count]]
    peaks = []
    for i in best:
        a, b, c = np.log(mag[i - 1:i + 2] + 1e-30)
        peaks.append((i + 0.5 * (a - c) / (a - 2 * b + c)) * rate / size)
    return peaks


def pitch_hz(frames: np.ndarray, rate: int, t0: float, t1: float, lo=50.0, hi=2000.0) -> float:
    return spectrum_peaks(window(frames, rate, t0, t1).mean(axis=1), rate, lo, hi, 1)[0]


def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def note_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def save_type0(path: Path, messages) -> Path:
    """A type 0 file from ``(tick, msg)`` pairs (120 BPM, 480 ticks per beat: 1 s = 960)."""
    track = [(0, mido.MetaMessage("set_tempo", tempo=mf.TEMPO_120_BPM))] + list(messages)
    return mf._save([track], path, 0)


def last_sound_s(frames: np.ndarray, rate: int, threshold: float = 1e-4) -> float:
    loud = np.flatnonzero(np.abs(frames).max(axis=1) > threshold)
    return (loud[-1] + 1) / rate if loud.size else 0.0


def no_part_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


# -- the multi-track type-1 fixture with a tempo change ---------------------------------------

# write_type1_tempo_change: notes 60 (0-0.5 s), 64 (ch 1, ~0-1.125 s), 62 (1.25-1.5 s),
# 36 (ch 9, 1.0-1.75 s); end of track at 2.0 s. Last note-off: 1.75 s.
TYPE1_LAST_NOTE_OFF_S = 1.75
TYPE1_END_S = 2.0


@pytest.fixture(scope="module")
def type1(tmp_path_factory):
    directory = tmp_path_factory.mktemp("type1")
    midi = mf.write_type1_tempo_change(directory)
    out = directory / "out.wav"
    result = render(midi, out)
    return directory, midi, out, result


def test_render_type1_exits_0_and_reports(type1):
    _, _, out, result = type1
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"wrote .*out\.wav: [\d.]+ s, 4 notes, peak -?[\d.]+ dBFS, \d+x real time",
                     result.stderr), result.stderr


def test_render_writes_48k_stereo_24_bit(type1):
    fmt = wav_format(type1[2])
    assert (fmt["tag"], fmt["channels"], fmt["rate"], fmt["bits"]) == (1, 2, 48000, 24)
    assert fmt["align"] == 6 and fmt["byte_rate"] == 48000 * 6


def test_render_is_non_silent_and_below_the_ceiling(type1):
    frames, rate = read_wav(type1[2])
    assert rate == 48000 and frames.shape[1] == 2
    assert rms(frames) > 0.01
    assert np.abs(frames).max() <= CEILING + 2.0**-23


def test_dense_chords_are_limited_to_minus_0_3_dbfs(tmp_path):
    """16 notes at full velocity sum far past full scale; the limiter must hold -0.3 dBFS."""
    messages = []
    for k, n in enumerate(range(36, 84, 3)):
        messages += mf.note(k, 1920, n, velocity=127)
    midi = save_type0(tmp_path / "dense.mid", messages)
    frames = render_ok(midi, tmp_path / "dense.wav")
    peak = np.abs(frames).max()
    assert peak > 0.9, "the chord should drive the output into the limiter"
    assert peak <= CEILING + 2.0**-23, f"peak {20 * math.log10(peak):.2f} dBFS"


def test_two_held_notes_have_their_pitches(type1):
    """0.1-0.5 s: note 60 (ch 0) and note 64 (ch 1) held. The detuned saw pair beats, which
    moves a short window's spectral peak by several cents, so compare levels instead: the
    spectrum at each note is at least 20 dB above it at the semitones around it."""
    frames, rate = read_wav(type1[2])
    mono = window(frames, rate, 0.1, 0.5).mean(axis=1)
    for note in (60, 64):
        at_note = band_level(mono, rate, note_hz(note))
        around = max(band_level(mono, rate, note_hz(note + d)) for d in (-2, -1, 1, 2))
        assert at_note > 10 * around, (note, at_note, around)


def band_level(mono: np.ndarray, rate: int, hz: float, width_cents: float = 30.0) -> float:
    """Largest Hann-windowed spectral magnitude within +-width_cents of ``hz``."""
    size = 1 << int(math.ceil(math.log2(len(mono) * 8)))
    mag = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), size))
    ratio = 2 ** (width_cents / 1200)
    lo, hi = (int(hz / ratio * size / rate), int(math.ceil(hz * ratio * size / rate)) + 1)
    return float(mag[lo:hi].max())


def test_file_covers_the_song_and_the_release_tail_but_no_more(type1):
    frames, rate = read_wav(type1[2])
    duration = len(frames) / rate
    assert duration >= TYPE1_END_S
    tail_end = last_sound_s(frames, rate)
    # The release of the last note rings out (not cut at the end of the song)...
    assert tail_end >= TYPE1_LAST_NOTE_OFF_S + 0.8 * RELEASE_S, tail_end
    # ...and the file stops soon after it has: no 30 s of silence (--max-tail-s) appended.
    assert duration <= TYPE1_LAST_NOTE_OFF_S + RELEASE_S + 0.05, duration
    assert np.abs(frames[-int(0.005 * rate):]).max() < 1e-4


def test_rendering_twice_gives_identical_bytes(type1):
    directory, midi, out, _ = type1
    again = directory / "again.wav"
    render_ok(midi, again, "--quiet")
    assert again.read_bytes() == out.read_bytes()


def test_float32_format(type1):
    directory, midi, out, _ = type1
    f32 = directory / "float.wav"
    frames = render_ok(midi, f32, "--format", "float32", "--quiet")
    fmt = wav_format(f32)
    assert (fmt["tag"], fmt["channels"], fmt["rate"], fmt["bits"]) == (3, 2, 48000, 32)
    pcm, _ = read_wav(out)
    assert frames.shape == pcm.shape
    # The same render: the 24-bit file is the float file rounded to 24 bits.
    np.testing.assert_allclose(frames, pcm, rtol=0, atol=2.0**-23)


def test_single_note_across_a_tempo_change(tmp_path):
    """Type 1: the tempo map (120 -> 240 BPM at tick 960 = 1.0 s) is in track 0 only, the note
    in track 1: A3 on at tick 480 (0.5 s), off at tick 1920 (1.0 + 960 ticks at 240 BPM =
    1.5 s; it would be 2.0 s if the tempo change were ignored)."""
    frames = render_ok(single_note_type1(tmp_path), tmp_path / "a3.wav", "--quiet")
    rate = 48000
    check_single_note(frames, rate)


def single_note_type1(directory: Path) -> Path:
    conductor = [(0, mido.MetaMessage("set_tempo", tempo=mf.TEMPO_120_BPM)),
                 (960, mido.MetaMessage("set_tempo", tempo=mf.TEMPO_240_BPM))]
    return mf._save([conductor, mf.note(480, 1920, 57, channel=2)],
                    directory / "single_a3.mid", 1)


def check_single_note(frames: np.ndarray, rate: int) -> None:
    assert np.abs(window(frames, rate, 0.0, 0.49)).max() < 1e-6, "sound before the note-on"
    assert rms(window(frames, rate, 0.51, 0.55)) > 0.01, "no sound right after the note-on"
    f = pitch_hz(frames, rate, 0.7, 1.45)
    assert abs(cents(f, note_hz(57))) < PITCH_TOLERANCE_CENTS, f"{f:.2f} Hz, want 220 Hz"
    held = rms(window(frames, rate, 1.35, 1.45))
    # Released at 1.5 s: fading through 1.5..2.0 s (still held until 2.0 s without the tempo map)
    assert rms(window(frames, rate, 1.85, 1.95)) < 0.25 * held
    # The tail's end measured 60 dB below the held level, so the preset's loudness (set by
    # its gain and velocity law) does not move it.
    end = last_sound_s(frames, rate, threshold=1e-3 * held)
    assert 1.5 + 0.8 * RELEASE_S <= end <= 1.5 + RELEASE_S + 0.02, end


def test_rate_44100_block_128(tmp_path):
    out = tmp_path / "a3_44k.wav"
    frames = render_ok(single_note_type1(tmp_path), out, "--rate", "44100", "--block", "128",
                       "--quiet")
    fmt = wav_format(out)
    assert (fmt["tag"], fmt["channels"], fmt["rate"], fmt["bits"]) == (1, 2, 44100, 24)
    check_single_note(frames, 44100)


# -- sustain pedal and pitch bend from the file ------------------------------------------------

def test_sustain_pedal_in_the_file_extends_notes(tmp_path):
    """A3 pressed for 0.25 s. Without the pedal it is silent by 0.75 s; with CC64 down from
    tick 0 to 1.5 s it keeps sounding until the pedal lifts, then releases."""
    key = mf.note(0, 240, 57)
    pedal = [(0, mido.Message("control_change", control=64, value=127)),
             (1440, mido.Message("control_change", control=64, value=0)),
             (1920, mido.MetaMessage("end_of_track"))]
    dry = render_ok(save_type0(tmp_path / "dry.mid", key), tmp_path / "dry.wav", "--quiet")
    wet = render_ok(save_type0(tmp_path / "pedal.mid", pedal[:1] + key + pedal[1:]),
                    tmp_path / "pedal.wav", "--quiet")
    rate = 48000
    attack = rms(window(wet, rate, 0.05, 0.2))
    np.testing.assert_array_equal(window(wet, rate, 0, 0.2), window(dry, rate, 0, 0.2))
    assert last_sound_s(dry, rate) <= 0.25 + RELEASE_S + 0.02
    assert rms(window(wet, rate, 0.8, 1.4)) > 0.3 * attack, "pedal did not hold the note"
    assert abs(cents(pitch_hz(wet, rate, 0.8, 1.45), note_hz(57))) < PITCH_TOLERANCE_CENTS
    assert 1.5 + 0.8 * RELEASE_S <= last_sound_s(wet, rate) <= 1.5 + RELEASE_S + 0.02


def test_pitch_bend_in_the_file_bends(tmp_path):
    """A4 held 3 s; bend +8191 at 1.0 s (+2 st * 8191/8192), -8192 at 2.0 s (-2 st)."""
    messages = mf.note(0, 2880, 69) + [
        (960, mido.Message("pitchwheel", pitch=8191)),
        (1920, mido.Message("pitchwheel", pitch=-8192)),
    ]
    frames = render_ok(save_type0(tmp_path / "bend.mid", messages), tmp_path / "bend.wav",
                       "--quiet")
    rate = 48000
    up = 440.0 * 2 ** (2.0 * 8191 / 8192 / 12)
    down = 440.0 * 2 ** (-2.0 / 12)
    for (t0, t1), want in (((0.2, 0.95), 440.0), ((1.1, 1.95), up), ((2.1, 2.95), down)):
        got = pitch_hz(frames, rate, t0, t1)
        assert abs(cents(got, want)) < PITCH_TOLERANCE_CENTS, f"{t0}-{t1} s: {got:.1f} Hz, " \
                                                              f"want {want:.1f} Hz"


# -- errors: one line, exit 2, no traceback, no partial WAV -------------------------------------

def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"


@pytest.fixture
def good_midi(tmp_path) -> Path:
    return mf.write_type0(tmp_path)


def test_missing_preset(tmp_path, good_midi):
    out = tmp_path / "out.wav"
    result = render(good_midi, out, preset=tmp_path / "no_such_preset.toml")
    assert_one_line_error(result, "no_such_preset.toml", "not found")
    assert not out.exists() and no_part_files(tmp_path) == []


@pytest.mark.parametrize("writer", [mf.write_garbage, mf.write_truncated, mf.write_type2,
                                    mf.write_bad_data_byte])
def test_bad_midi(tmp_path, writer):
    midi = writer(tmp_path)
    out = tmp_path / "out.wav"
    assert_one_line_error(render(midi, out), midi.name)
    assert not out.exists() and no_part_files(tmp_path) == []


def test_missing_midi(tmp_path):
    out = tmp_path / "out.wav"
    assert_one_line_error(render(tmp_path / "absent.mid", out), "absent.mid")
    assert not out.exists() and no_part_files(tmp_path) == []


def test_output_directory_missing(tmp_path, good_midi):
    out = tmp_path / "no" / "such" / "dir" / "out.wav"
    assert_one_line_error(render(good_midi, out), "out.wav", "does not exist")
    assert not out.parent.exists()


def test_output_path_below_a_file(tmp_path, good_midi):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    assert_one_line_error(render(good_midi, blocker / "out.wav"), "out.wav")
    assert blocker.read_text() == "not a directory"


def test_output_path_is_a_directory(tmp_path, good_midi):
    """A directory as the output: no temp file left behind, and one line that says so and how
    to fix it, before the render runs (no progress output first)."""
    target = tmp_path / "taken.wav"
    target.mkdir()
    result = render(good_midi, target)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert target.is_dir() and list(target.iterdir()) == []
    assert no_part_files(tmp_path) == []
    assert_one_line_error(result, "taken.wav", "directory")
    assert "disk space" not in result.stderr, "the fix points at disk space for a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_output_directory_read_only(tmp_path, good_midi):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert_one_line_error(render(good_midi, locked / "out.wav"), "out.wav",
                              "permission denied")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_failed_render_keeps_the_previous_file(tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous render")
    assert_one_line_error(render(mf.write_garbage(tmp_path), out), "garbage.mid")
    assert out.read_bytes() == b"previous render"
    assert no_part_files(tmp_path) == []


def test_bad_rate_and_block(tmp_path, good_midi):
    out = tmp_path / "out.wav"
    assert_one_line_error(render(good_midi, out, "--rate", "1000"), "--rate")
    assert_one_line_error(render(good_midi, out, "--block", "0"), "--block")
    assert not out.exists() and no_part_files(tmp_path) == []


# -- real-world files ----------------------------------------------------------------------------

@pytest.mark.skipif(not (REAL_MIDI / "magenta-english1.mid").exists(),
                    reason=f"real-world MIDI files not present in {REAL_MIDI}")
def test_real_world_song_renders_faster_than_real_time(tmp_path):
    """magenta-english1.mid: 36 s, 148 notes, one track (Magenta's test data)."""
    midi = REAL_MIDI / "magenta-english1.mid"
    out = tmp_path / "english1.wav"
    result = render(midi, out)
    assert result.returncode == 0, result.stderr
    frames, rate = read_wav(out)
    song_s = mido.MidiFile(midi).length
    assert song_s <= len(frames) / rate <= song_s + RELEASE_S + 0.1
    assert rms(frames) > 0.01
    assert np.abs(frames).max() <= CEILING + 2.0**-23
    factor = re.search(r"148 notes, .* (\d+)x real time", result.stderr)
    assert factor, result.stderr
    assert int(factor.group(1)) > 1
