"""MPE through the engine, rendered offline: zones from the MCM (``MPE_ZONE`` events), per-note
pitch bend measured by FFT on each note's own partial, per-note pressure and timbre read from
the voices' context and heard through a filter, note-offs by channel, and what stays as before
without a zone. See ``instrument.engine.expression``."""

import numpy as np
import pytest

from helpers import (
    bend, cc, cents, compile_toml, fft_pitch, make_engine, midi_hz, note_off, note_on, render,
    simple_toml, spectral_centroid,
)
from instrument.engine.events import BEND_RANGE, CHANNEL_PRESSURE, MPE_ZONE, POLY_PRESSURE
from instrument.layout import (
    CTX_PRESSURE, CTX_TIMBRE, E_BAD_EVENTS, E_MPE_LOWER, E_MPE_UPPER, ROW_PITCH, V_CHANNEL,
    V_KEY_DOWN, V_NOTE,
)

SR = 48000
BLOCK = 64
LOW, HIGH = 60, 67  # two notes a fifth apart: their partials are far from each other


def zone(frame, members, master=0):
    return (frame, MPE_ZONE, master, members, 0.0)


def _engine(polyphony=4, bend_range_st=2.0, steal="oldest"):
    return make_engine(compile_toml(simple_toml(
        "sine", polyphony=polyphony, bend_range_st=bend_range_st, steal=steal), SR, BLOCK))


def _pitch_near(x, note, cents_window=300.0):
    f = midi_hz(note)
    span = 2.0 ** (cents_window / 1200.0)
    return fft_pitch(x, SR, f / span, f * span)


def _two_notes_then(events, seconds=1.5, low_ch=1, high_ch=2, mpe=True):
    """Lower zone (15 members) if ``mpe``; LOW on ``low_ch``, HIGH on ``high_ch``; then
    ``events`` from 0.25 s. Returns the left channel of the last second."""
    engine = _engine()
    head = [zone(0, 15)] if mpe else []
    head += [note_on(10, LOW, 1.0, low_ch), note_on(20, HIGH, 1.0, high_ch)]
    out = render(engine, int(seconds * SR), head + list(events))[:, 0]
    return engine, out[-SR:]


def test_member_bend_moves_only_its_own_note():
    """Member channel 2 bent by 2/48 of its 48-semitone range: its note rises 2 semitones,
    the note on channel 3 stays within 0.1 cent."""
    _, out = _two_notes_then([bend(int(0.25 * SR), 2.0 / 48.0, channel=1)])
    assert abs(cents(_pitch_near(out, LOW + 2), midi_hz(LOW + 2))) < 0.1
    assert abs(cents(_pitch_near(out, HIGH), midi_hz(HIGH))) < 0.1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    freqs = np.fft.rfftfreq(len(out), 1.0 / SR)
    at = lambda f: spectrum[np.abs(freqs - f) < 2.0].max()  # noqa: E731
    assert at(midi_hz(LOW)) < 1e-3 * at(midi_hz(LOW + 2))  # nothing left at the old pitch


def test_without_a_zone_any_channel_bends_every_note_as_before():
    _, out = _two_notes_then([bend(int(0.25 * SR), 0.5, channel=1)], mpe=False)
    assert abs(cents(_pitch_near(out, LOW + 1), midi_hz(LOW + 1))) < 0.1  # range 2, half up
    assert abs(cents(_pitch_near(out, HIGH + 1), midi_hz(HIGH + 1))) < 0.1


def test_master_bend_adds_to_each_notes_own_bend():
    """Master channel 1 (range 2, the preset's) bends both notes; channel 3's own bend adds."""
    _, out = _two_notes_then([bend(int(0.25 * SR), 1.0, channel=0),
                              bend(int(0.3 * SR), -1.0 / 48.0, channel=2)])
    assert abs(cents(_pitch_near(out, LOW + 2), midi_hz(LOW + 2))) < 0.1
    assert abs(cents(_pitch_near(out, HIGH + 1), midi_hz(HIGH + 1))) < 0.1


def test_bend_sent_before_the_note_sets_its_start_pitch():
    """MPE controllers send a channel's bend before its note-on: the note starts bent."""
    engine = _engine()
    events = [zone(0, 15), bend(5, 7.0 / 48.0, channel=4), note_on(10, LOW, 1.0, 4)]
    out = render(engine, SR, events)[:, 0]
    assert abs(cents(_pitch_near(out[SR // 4:], LOW + 7), midi_hz(LOW + 7))) < 0.1


def test_rpn0_on_a_member_channel_sets_the_zones_member_range():
    _, out = _two_notes_then([(int(0.2 * SR), BEND_RANGE, 1, 12.0, 0.0),
                              bend(int(0.25 * SR), 0.25, channel=2)])
    assert abs(cents(_pitch_near(out, HIGH + 3), midi_hz(HIGH + 3))) < 0.1  # 12 * 0.25
    assert abs(cents(_pitch_near(out, LOW), midi_hz(LOW))) < 0.1


def test_member_bend_glides_over_the_bend_smoothing_time_not_in_one_step():
    """The per-note bend is smoothed like the global one (5 ms one-pole): 2 ms after a
    12-semitone jump the pitch is between the two notes."""
    engine = _engine()
    t = int(0.2 * SR)
    captured = []

    def watch(b, eng):
        if b * BLOCK == t + 128:  # the block before, 64..127 samples after the bend
            captured.append(eng.current.vbufs[ROW_PITCH, 31, 0])

    render(engine, int(0.3 * SR), [zone(0, 15), note_on(0, LOW, 1.0, 1),
                                   bend(t, 12.0 / 48.0, channel=1)], on_block=watch)
    assert midi_hz(LOW) * 1.02 < captured[0] < midi_hz(LOW + 12) * 0.98


def test_pressure_and_timbre_of_a_member_channel_reach_only_its_voice():
    engine = _engine()
    events = [zone(0, 15), note_on(0, LOW, 1.0, 1), note_on(5, HIGH, 1.0, 2),
              (100, CHANNEL_PRESSURE, 1, 0.75, 0.0), cc(110, 74, 0.6, channel=2)]
    render(engine, 4 * BLOCK, events)
    inst = engine.current
    lanes = {int(inst.voices[v, V_CHANNEL]): v for v in range(engine.active_voices)}
    assert inst.vctx[CTX_PRESSURE, lanes[1]] == 0.75 and inst.vctx[CTX_PRESSURE, lanes[2]] == 0.0
    assert inst.vctx[CTX_TIMBRE, lanes[2]] == 0.6 and inst.vctx[CTX_TIMBRE, lanes[1]] == 0.0
    # The master channel's pressure and CC74 go to the voices on no member channel only.
    render(engine, 4 * BLOCK, [note_on(0, 72, 1.0, 0), (10, CHANNEL_PRESSURE, 0, 0.3, 0.0),
                               cc(20, 74, 0.9, channel=0)])
    lanes = {int(inst.voices[v, V_CHANNEL]): v for v in range(engine.active_voices)}
    assert inst.vctx[CTX_PRESSURE, lanes[0]] == 0.3 and inst.vctx[CTX_TIMBRE, lanes[0]] == 0.9
    assert inst.vctx[CTX_PRESSURE, lanes[1]] == 0.75 and inst.vctx[CTX_TIMBRE, lanes[2]] == 0.6


def test_note_off_releases_only_the_note_on_its_channel():
    engine = _engine()
    render(engine, 8 * BLOCK, [zone(0, 15), note_on(0, LOW, 1.0, 1), note_on(5, LOW, 1.0, 2),
                               note_off(200, LOW, channel=1)])
    inst = engine.current
    down = {int(inst.voices[v, V_CHANNEL]): inst.voices[v, V_KEY_DOWN]
            for v in range(engine.active_voices)}
    assert down == {1: 0.0, 2: 1.0}


def test_same_note_stealing_keeps_one_voice_per_channel_with_mpe():
    engine = _engine(steal="same_note")
    render(engine, 4 * BLOCK, [zone(0, 15), note_on(0, LOW, 1.0, 1), note_on(5, LOW, 1.0, 2)])
    assert engine.active_voices == 2


def test_a_new_note_takes_over_its_channel_from_an_older_one():
    """Channel 2 reused while its old note still sounds: the bend goes to the new note."""
    engine = _engine()
    events = [zone(0, 15), note_on(0, LOW, 1.0, 1), note_on(100, HIGH, 1.0, 1),
              bend(int(0.25 * SR), 2.0 / 48.0, channel=1)]
    out = render(engine, int(1.5 * SR), events)[-SR:, 0]
    assert abs(cents(_pitch_near(out, HIGH + 2), midi_hz(HIGH + 2))) < 0.1
    assert abs(cents(_pitch_near(out, LOW), midi_hz(LOW))) < 0.1


@pytest.mark.parametrize("events, lower, upper", [
    ([zone(0, 15)], 15, 0),
    ([zone(0, 7), zone(0, 7, master=15)], 7, 7),
    ([zone(0, 10), zone(0, 8, master=15)], 6, 8),  # the newer zone shrinks the older
    ([zone(0, 5, master=15), zone(0, 15)], 15, 0),
    ([zone(0, 15), zone(0, 0)], 0, 0),  # 0 members: zone off
])
def test_mcm_sets_the_zones_as_the_mpe_spec_says(events, lower, upper):
    engine = _engine()
    render(engine, BLOCK, events)
    eng = engine.current.eng
    assert (eng[E_MPE_LOWER], eng[E_MPE_UPPER]) == (lower, upper)


def test_mcm_on_another_channel_or_out_of_range_is_counted_bad():
    engine = _engine()
    render(engine, BLOCK, [zone(0, 4, master=3), zone(1, 16), zone(2, float("nan"))])
    eng = engine.current.eng
    assert eng[E_BAD_EVENTS] == 3 and eng[E_MPE_LOWER] == 0 and eng[E_MPE_UPPER] == 0


def test_upper_zone_members_count_down_from_channel_15():
    engine = _engine()
    out = render(engine, int(1.5 * SR), [
        zone(0, 3, master=15), note_on(10, LOW, 1.0, 14), note_on(20, HIGH, 1.0, 11),
        bend(int(0.25 * SR), 2.0 / 48.0, channel=14), bend(int(0.25 * SR), 0.5, channel=11)])
    out = out[-SR:, 0]
    # channel 15 is a member (its own bend); channel 12 is not (global bend, range 2: +1).
    assert abs(cents(_pitch_near(out, LOW + 3), midi_hz(LOW + 3))) < 0.1
    assert abs(cents(_pitch_near(out, HIGH + 1), midi_hz(HIGH + 1))) < 0.1


def test_timbre_opens_a_filter_patched_from_expression_timbre():
    """``expression.timbre`` into a lowpass cutoff: CC74 on the note's member channel raises
    the spectral centroid of the output."""
    preset = """
format = 1
name = "timbre"
[voice]
polyphony = 4
connect = ["osc.out -> filt.in", "filt.out -> amp.in", "amp.out -> out.in",
           "expr.timbre -> filt.cutoff_hz * 0.6"]
[voice.nodes.expr]
type = "expression"
[voice.nodes.osc]
type = "saw"
level = 0.3
[voice.nodes.filt]
type = "svf_lowpass"
cutoff_hz = 300
[voice.nodes.amp]
type = "vca"
gain = 1.0
velocity_amount = 0.0
[voice.nodes.out]
type = "output"
"""
    engine = make_engine(compile_toml(preset, SR, BLOCK))
    events = [zone(0, 15), note_on(0, 48, 1.0, 3), cc(int(0.5 * SR), 74, 1.0, channel=3)]
    out = render(engine, SR, events)[:, 0]
    before = spectral_centroid(out[int(0.2 * SR):int(0.45 * SR)], SR)
    after = spectral_centroid(out[int(0.6 * SR):int(0.95 * SR)], SR)
    assert after > 2.0 * before


def test_poly_pressure_reaches_only_the_voice_of_its_note():
    engine = _engine()
    render(engine, 4 * BLOCK, [note_on(0, LOW), note_on(5, HIGH),
                               (100, POLY_PRESSURE, 0, HIGH, 0.8)])
    inst = engine.current
    lanes = {int(inst.voices[v, V_NOTE]): v for v in range(engine.active_voices)}
    assert inst.vctx[CTX_PRESSURE, lanes[HIGH]] == 0.8 and inst.vctx[CTX_PRESSURE, lanes[LOW]] == 0


def test_a_preset_swap_keeps_the_zone_and_each_held_notes_bend():
    """Hot reload / program change while MPE notes are held: the new plan strikes them again
    on their channels, so each keeps its own bend."""
    engine = _engine()
    plan2 = compile_toml(simple_toml("sine", polyphony=4, osc_params="level = 0.4"), SR, BLOCK)
    t_swap = int(0.5 * SR) // BLOCK

    def swap(b, eng):
        if b == t_swap:
            eng.swap(plan2)

    events = [zone(0, 15), note_on(0, LOW, 1.0, 1), note_on(5, HIGH, 1.0, 2),
              bend(int(0.25 * SR), 2.0 / 48.0, channel=1)]
    out = render(engine, int(2.0 * SR), events, on_block=swap)[-SR:, 0]
    assert engine.current.plan is plan2 and engine.current.eng[E_MPE_LOWER] == 15
    assert abs(cents(_pitch_near(out, LOW + 2), midi_hz(LOW + 2))) < 0.1
    assert abs(cents(_pitch_near(out, HIGH), midi_hz(HIGH))) < 0.1


def test_an_mpe_midi_file_renders_each_notes_bend(tmp_path):
    """``instrument render`` of a Standard MIDI File with an MCM, two notes on member channels
    and a bend on one: as live, only that note moves."""
    import mido

    from instrument.audio.wav import read_wav
    from instrument.cli.main import main

    track = mido.MidiTrack()
    for control, value in ((101, 0), (100, 6), (6, 15)):
        track.append(mido.Message("control_change", channel=0, control=control, value=value))
    track.append(mido.Message("note_on", channel=1, note=LOW, velocity=100))
    track.append(mido.Message("note_on", channel=2, note=HIGH, velocity=100))
    track.append(mido.Message("pitchwheel", channel=1, pitch=341, time=240))  # 2.0 st at 48
    track.append(mido.Message("note_off", channel=1, note=LOW, time=960))
    track.append(mido.Message("note_off", channel=2, note=HIGH))
    midi = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks = 1 s
    midi.tracks.append(track)
    midi.save(tmp_path / "mpe.mid")
    (tmp_path / "sine.toml").write_text(simple_toml("sine", polyphony=4))
    assert main(["render", str(tmp_path / "sine.toml"), "--midi", str(tmp_path / "mpe.mid"),
                 "-o", str(tmp_path / "mpe.wav"), "--quiet"]) == 0
    x, sr = read_wav(tmp_path / "mpe.wav")
    held = x[int(0.5 * sr):int(1.2 * sr), 0].astype(np.float64)
    bent = LOW + 341 / 8192 * 48
    assert abs(cents(_pitch_near(held, bent), midi_hz(bent))) < 0.1
    assert abs(cents(_pitch_near(held, HIGH), midi_hz(HIGH))) < 0.1
