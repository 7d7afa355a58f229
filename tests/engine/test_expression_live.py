"""Velocity curves and MPE through the real path: ``instrument run`` on the test JACK server
with a mapping of its own, MIDI through JACK (python-rtmidi), the output recorded with
``jack_rec`` and measured by FFT and RMS."""

import os
import signal
import time

import numpy as np
import pytest

from helpers import cents, fft_pitch, midi_hz
from instrument.audio.wav import read_wav
from live import (JackMidiOut, LiveInstrument, rms, send_osc, start_recording,
                  status_file, wait_status)

pytestmark = pytest.mark.integration

LOW, HIGH = 60, 67
PARTS = 16  # a recording is measured in this many slices, and the median taken
# One sine per note (each note's partial measured on its own), its level set by velocity and
# raised by pressure (gain 0.5 at no pressure, 1.5 at full).
PRESET = """
format = 1
name = "MPE sine"
[voice]
polyphony = 8
connect = ["osc.out -> amp.in", "env.out -> amp.cv", "amp.out -> out.in",
           "ctl.pressure -> amp.gain * 0.5"]
[voice.nodes.ctl]
type = "controls"
[voice.nodes.osc]
type = "sine"
level = 0.2
[voice.nodes.env]
type = "adsr"
attack_ms = 2
decay_ms = 10
sustain = 1.0
release_ms = 20
[voice.nodes.amp]
type = "vca"
gain = 0.5
velocity_amount = 1.0
[voice.nodes.out]
type = "output"
"""
MAPPING = """
format = 1
name = "fixed velocity keys"
[velocity]
curve = "fixed"
fixed_value = 127
[mpe]
lower = 7
[[cc]]
cc = 20
target = "macro#1"
"""


@pytest.fixture(scope="module")
def inst(jack_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("expression")
    (folder / "mpe-sine.toml").write_text(PRESET)
    (folder / "keys.toml").write_text(MAPPING)
    live = LiveInstrument(jack_server.env, str(folder / "mpe-sine.toml"),
                          "--mapping", str(folder / "keys.toml"))
    try:
        live.wait_ports()
        wait_status(live.osc_port, lambda d: d.get("callbacks", 0) > 0, 30)
        yield live
    finally:
        assert live.stop() == 0, live.output()


def _mcm(keys, inst, members):
    """Send the MPE Configuration Message for the lower zone and wait for the host's log line
    about it."""
    seen = inst.output().count("MPE: ")
    keys.send_confirmed(inst.osc_port, (0xB0, 101, 0), (0xB0, 100, 6), (0xB0, 6, members))
    end = time.monotonic() + 5
    while inst.output().count("MPE: ") == seen and time.monotonic() < end:
        time.sleep(0.05)
    assert inst.output().count("MPE: ") > seen, f"no MPE log line after the MCM:\n{inst.output()}"


@pytest.fixture(autouse=True)
def _silence_after(inst):
    """A test that failed with notes held leaves none to the next one: /panic over OSC."""
    yield
    if status_file(inst.osc_port).get("active_voices", 0):
        send_osc(inst.osc_port, "/panic")
        wait_status(inst.osc_port, lambda d: d.get("active_voices") == 0, 5)


def _record(jack_server, inst, path, seconds=2.0):
    """``seconds`` of the instrument's output, mono. Recorded again (once) when jack_rec
    left no file: seen once on a loaded machine, with the recorder exiting at once."""
    for attempt in range(2):
        rec = start_recording(jack_server.env, inst.out_ports(), path, seconds)
        rec.wait(timeout=10 + seconds)
        if path.exists():
            break
    x, sr = read_wav(path)
    return x.mean(axis=1), sr


def _voices(inst, n):
    return wait_status(inst.osc_port, lambda d: d.get("active_voices") == n, 10)


def _pitch_near(x, sr, note):
    """The median of the pitches found near ``note`` in 16 slices of ``x`` (125 ms each in
    2 s): a recording on this loaded machine may have dropouts (xruns), and a phase jump
    inside a window pulls that window's estimate by cents; the median leaves such windows
    out."""
    f = midi_hz(note)
    return float(np.median([fft_pitch(part, sr, f * 2 ** (-3 / 12), f * 2 ** (3 / 12))
                            for part in np.array_split(x, PARTS)]))


def test_mpe_per_note_bend_changes_only_its_notes_pitch(inst, jack_server, tmp_path):
    """The mapping's ``[mpe] lower = 7`` sets a zone as the port is first seen; the MCM (RPN
    6 = 15 on channel 1) widens it. C4 on channel 2 and G4 on channel 3, then channel 2 bent
    by 341/8192 of its 48-semitone range (2.0 semitones): C4 moves there, G4 does not move
    (within 1 cent live; offline, test_mpe.py holds it to 0.1 cent)."""
    keys = JackMidiOut()
    try:
        keys.send_confirmed(inst.osc_port, (0x91, LOW, 100), (0x92, HIGH, 100))
        assert _voices(inst, 2).get("active_voices") == 2, inst.output()
        assert "MPE: lower zone: master channel 1, members 2-8" in inst.output()
        _mcm(keys, inst, 15)
        assert "MPE: lower zone: master channel 1, members 2-16" in inst.output()
        before, sr = _record(jack_server, inst, tmp_path / "before.wav")
        bend = 8192 + 341
        keys.send_confirmed(inst.osc_port, (0xE1, bend & 0x7F, bend >> 7))
        time.sleep(0.3)
        after, sr = _record(jack_server, inst, tmp_path / "after.wav")
        keys.send_confirmed(inst.osc_port, (0x81, LOW, 0), (0x82, HIGH, 0), (0xE1, 0, 0x40))
        assert _voices(inst, 0).get("active_voices") == 0
    finally:
        keys.close()
    # Tolerances for a live recording on a loaded machine (dropouts move a 125 ms window's
    # estimate; 0.73 cent was seen once in a clean-clone suite run): a bend on the wrong note
    # or channel is 200 cents off. The 0.1-cent figures are measured offline in test_mpe.py.
    bent_st = 341 / 8192 * 48
    assert abs(cents(_pitch_near(before, sr, LOW), midi_hz(LOW))) < 2.0
    assert abs(cents(_pitch_near(after, sr, LOW + bent_st), midi_hz(LOW + bent_st))) < 2.0
    high_moved = cents(_pitch_near(after, sr, HIGH), _pitch_near(before, sr, HIGH))
    assert abs(high_moved) < 1.0
    assert abs(cents(_pitch_near(after, sr, HIGH), midi_hz(HIGH))) < 2.0
    print(f"MPE live: bent note {cents(_pitch_near(after, sr, LOW + bent_st), midi_hz(LOW)):.2f}"
          f" cents up (asked {bent_st * 100:.2f}), other note moved {high_moved:+.4f} cents")


def test_the_mappings_velocity_curve_sets_the_level_of_notes_from_the_port(inst, jack_server,
                                                                         tmp_path):
    """The mapping's ``curve = "fixed"``, 127: a note struck at velocity 20 plays as loud as
    one struck at 127 (vca level proportional to velocity: linear would be 16 dB softer)."""
    keys = JackMidiOut()
    levels = []
    try:
        _mcm(keys, inst, 0)  # no MPE zone here
        for velocity in (20, 127):
            keys.send_confirmed(inst.osc_port, (0x90, 69, velocity))
            assert _voices(inst, 1).get("active_voices") == 1, inst.output()
            x, sr = _record(jack_server, inst, tmp_path / f"v{velocity}.wav")
            assert rms(x) > 1e-3
            levels.append(_band_db(x, sr, 69))
            keys.send_confirmed(inst.osc_port, (0x80, 69, 0))
            assert _voices(inst, 0).get("active_voices") == 0
    finally:
        keys.close()
    assert "velocity fixed 127" in inst.output()
    assert abs(levels[0] - levels[1]) < 0.1, levels  # dB


def _band_db(x, sr, note):
    """Level (dB) of the spectrum's peak within a semitone of ``note``: the median over 16
    slices of ``x`` (see ``_pitch_near``)."""
    def level(part):
        spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
        freqs = np.fft.rfftfreq(len(part), 1.0 / sr)
        f = midi_hz(note)
        return 20 * np.log10(spectrum[np.abs(freqs - f) < f * (2 ** (1 / 12) - 1)].max())
    return float(np.median([level(part) for part in np.array_split(x, PARTS)]))


def test_poly_aftertouch_raises_only_its_note_and_channel_aftertouch_every_note(inst,
                                                                               jack_server,
                                                                               tmp_path):
    """``controls.pressure`` into the vca gain (0.5 + 1.0 * pressure): poly pressure 127 on
    G4 lifts G4's partial by 20*log10(1.5/0.5) = 9.5 dB against C4's, and C4's stays (within
    1 dB: the absolute level of a recording here moves with the machine's dropouts, the levels
    of two notes against each other do not); then channel pressure 127 lifts C4's as much."""
    keys = JackMidiOut()
    try:
        _mcm(keys, inst, 0)  # no MPE zone here
        keys.send_confirmed(inst.osc_port, (0x90, LOW, 100), (0x90, HIGH, 100))
        assert _voices(inst, 2).get("active_voices") == 2, inst.output()
        plain, sr = _record(jack_server, inst, tmp_path / "plain.wav")
        keys.send_confirmed(inst.osc_port, (0xA0, HIGH, 127))
        time.sleep(0.2)
        poly, _ = _record(jack_server, inst, tmp_path / "poly.wav")
        keys.send_confirmed(inst.osc_port, (0xD0, 127))
        time.sleep(0.2)
        channel, _ = _record(jack_server, inst, tmp_path / "channel.wav")
        keys.send_confirmed(inst.osc_port, (0xD0, 0), (0x80, LOW, 0), (0x80, HIGH, 0))
        assert _voices(inst, 0).get("active_voices") == 0
    finally:
        keys.close()
    lift = 20 * np.log10(3.0)

    def high_over_low(x):
        return _band_db(x, sr, HIGH) - _band_db(x, sr, LOW)

    assert high_over_low(poly) - high_over_low(plain) == pytest.approx(lift, abs=0.2)
    assert abs(_band_db(poly, sr, LOW) - _band_db(plain, sr, LOW)) < 1.0
    assert high_over_low(channel) - high_over_low(plain) == pytest.approx(0.0, abs=0.2)
    assert _band_db(channel, sr, LOW) - _band_db(plain, sr, LOW) == pytest.approx(lift, abs=1.0)
    measured = high_over_low(poly) - high_over_low(plain)
    print(f"aftertouch live: poly pressure lifts its note {measured:.2f} dB against the "
          f"other (expected {lift:.2f})")


def test_an_audio_restart_brings_back_each_mpe_notes_own_bend(inst, jack_server, tmp_path):
    """MPE notes held through a crash of the audio process (SIGKILL) come back on their
    channels with their own bends: the host replays the zone, then each channel's bend, then
    the notes (``runtime/player_state.py``)."""
    keys = JackMidiOut()
    bend = 8192 + 512  # channel 3: +3 semitones at 48
    try:
        _mcm(keys, inst, 15)
        keys.send_confirmed(inst.osc_port, (0xE2, bend & 0x7F, bend >> 7), (0x91, LOW, 100),
                  (0x92, HIGH, 100))
        before = _voices(inst, 2)
        assert before.get("active_voices") == 2, inst.output()
        os.kill(before["audio_pid"], signal.SIGKILL)
        after = wait_status(inst.osc_port, lambda d: d["audio_pid"] != before["audio_pid"]
                            and d["callbacks"] > 0 and d["active_voices"] == 2, 20)
        assert after.get("active_voices") == 2, inst.output()
        x, sr = _record(jack_server, inst, tmp_path / "restarted.wav")
        keys.send_confirmed(inst.osc_port, (0x81, LOW, 0), (0x82, HIGH, 0), (0xE2, 0, 0x40))
        assert _voices(inst, 0).get("active_voices") == 0
    finally:
        keys.close()
    bent = HIGH + 512 / 8192 * 48  # live tolerances: see the per-note bend test
    assert abs(cents(_pitch_near(x, sr, bent), midi_hz(bent))) < 2.0
    assert abs(cents(_pitch_near(x, sr, LOW), midi_hz(LOW))) < 2.0
