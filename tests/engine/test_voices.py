"""Voice allocation measured through the engine: polyphony limit, stealing policies, release,
sustain pedal, all-notes-off / all-sound-off, mono and legato with glide, last-note priority.

Which notes sound is read two ways: from the lane table (``engine.current.voices``, columns in
``instrument.layout``) and from the spectrum of the output.
"""

import numpy as np
import pytest

from helpers import (
    cc, cents, compile_toml, fft_pitch, make_engine, midi_hz, note_off, note_on, render, rms,
    simple_toml, zero_crossing_freqs,
)
from instrument.engine.events import (
    ALL_NOTES_OFF, ALL_SOUND_OFF, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_SUSTAIN,
)
from instrument.layout import V_KEY_DOWN, V_NOTE, V_SUSTAINED
from instrument.params.smoothing import one_pole_coeff

SR = 48000
BLOCK = 64
ENV = "attack_ms = 2\ndecay_ms = 50\nsustain = 0.8\nrelease_ms = {release}"


def _plan(polyphony=3, steal="oldest", mode="poly", release=50, glide_ms=0.0,
          velocity_amount=0.0, env=None, osc="sine"):
    toml = simple_toml(osc, polyphony=polyphony, steal=steal, mode=mode, glide_ms=glide_ms,
                       osc_params="level = 0.2",
                       env=env if env is not None else ENV.format(release=release),
                       vca=f"gain = 1.0\nvelocity_amount = {velocity_amount}")
    return compile_toml(toml, SR, BLOCK)


def _sounding_notes(engine):
    n = engine.active_voices
    return sorted(int(x) for x in engine.current.voices[:n, V_NOTE])


def _band_level(x, f):
    """Magnitude of the spectrum near ``f`` (Hann window), relative to the strongest peak."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    near = np.abs(freqs - f) < 3.0
    return float(mag[near].max() / mag.max())


# ---- polyphony and stealing -----------------------------------------------------------------

@pytest.mark.parametrize("polyphony", [1, 3, 8])
def test_one_note_more_than_the_polyphony_keeps_polyphony_voices(polyphony):
    engine = make_engine(_plan(polyphony=polyphony))
    notes = [48 + 3 * k for k in range(polyphony + 1)]
    render(engine, 20 * BLOCK, [note_on(10 * k, n) for k, n in enumerate(notes)])
    assert engine.active_voices == polyphony
    assert len(_sounding_notes(engine)) == polyphony
    from instrument.layout import E_NOTES_STOLEN
    assert engine.current.eng[E_NOTES_STOLEN] == 1


def test_steal_oldest_drops_the_first_note_played():
    engine = make_engine(_plan(polyphony=3, steal="oldest"))
    events = [note_on(0, 60), note_on(BLOCK * 2, 64), note_on(BLOCK * 4, 67),
              note_on(BLOCK * 100, 72)]
    out = render(engine, BLOCK * 100 + SR // 2, events)[:, 0]
    assert _sounding_notes(engine) == [64, 67, 72]
    tail = out[-SR // 4:]
    assert _band_level(tail, midi_hz(60)) < 1e-3  # gone (< -60 dB)
    for n in (64, 67, 72):
        assert _band_level(tail, midi_hz(n)) > 0.3


def test_stealing_prefers_a_released_voice_over_the_oldest_held_one():
    engine = make_engine(_plan(polyphony=3, steal="oldest", release=2000))
    events = [note_on(0, 60), note_on(BLOCK, 64), note_on(2 * BLOCK, 67),
              note_off(50 * BLOCK, 64), note_on(60 * BLOCK, 72)]
    render(engine, 70 * BLOCK, events)
    assert _sounding_notes(engine) == [60, 67, 72]


@pytest.mark.parametrize("offset", [0, 40])
def test_steal_quietest_drops_the_softest_voice(offset):
    """Velocities 1.0, 0.2, 0.6 (level follows velocity): the 0.2 voice is stolen, whether
    the new note lands on a block's first sample or inside the block."""
    engine = make_engine(_plan(polyphony=3, steal="quietest", velocity_amount=1.0))
    steal_frame = 100 * BLOCK + offset
    events = [note_on(0, 60, 1.0), note_on(BLOCK, 64, 0.2), note_on(2 * BLOCK, 67, 0.6),
              note_on(steal_frame, 72, 0.8)]
    out = render(engine, steal_frame + SR // 2, events)[:, 0]
    assert _sounding_notes(engine) == [60, 67, 72]
    tail = out[-SR // 4:]
    assert _band_level(tail, midi_hz(64)) < 1e-3
    assert _band_level(tail, midi_hz(60)) > 0.5


def test_steal_same_note_restrikes_the_voice_already_playing_that_note():
    engine = make_engine(_plan(polyphony=4, steal="same_note"))
    render(engine, 40 * BLOCK, [note_on(0, 60), note_on(BLOCK, 64), note_on(20 * BLOCK, 60)])
    assert engine.active_voices == 2
    assert _sounding_notes(engine) == [60, 64]
    # Other policies give the repeated note a voice of its own.
    engine = make_engine(_plan(polyphony=4, steal="oldest"))
    render(engine, 40 * BLOCK, [note_on(0, 60), note_on(BLOCK, 64), note_on(20 * BLOCK, 60)])
    assert _sounding_notes(engine) == [60, 60, 64]


def test_steal_same_note_falls_back_to_oldest_when_the_note_is_new():
    engine = make_engine(_plan(polyphony=2, steal="same_note"))
    render(engine, 40 * BLOCK, [note_on(0, 60), note_on(BLOCK, 64), note_on(20 * BLOCK, 67)])
    assert _sounding_notes(engine) == [64, 67]


# ---- release, pedal, all notes / sound off ---------------------------------------------------

@pytest.mark.parametrize("release_ms", [20, 100])
def test_released_voices_are_freed_once_their_release_is_silent(release_ms):
    engine = make_engine(_plan(polyphony=4, release=release_ms))
    off = 40 * BLOCK
    counts = []

    def watch(b, eng):
        counts.append(eng.active_voices)

    events = [note_on(0, 60), note_on(0, 64), note_on(0, 67)]
    events += [note_off(off, n) for n in (60, 64, 67)]
    n = off + int((release_ms / 1000 + 0.1) * SR)
    out = render(engine, n, events, on_block=watch)[:, 0]
    counts.append(engine.active_voices)
    counts = np.array(counts)
    first_off = off // BLOCK
    # counts[b] is the count before block b: block b - 1 freed the voices.
    freed_block = first_off + int(np.flatnonzero(counts[first_off:] == 0)[0]) - 1
    freed_ms = (freed_block + 1) * BLOCK / SR * 1000 - off / SR * 1000
    assert counts[off // BLOCK] == 3
    assert release_ms * 0.95 <= freed_ms <= release_ms + 3 * BLOCK / SR * 1000, freed_ms
    assert np.all(out[(freed_block + 1) * BLOCK:] == 0.0)
    # Still sounding during the release (no early cut).
    mid = off + int(release_ms / 2 / 1000 * SR)
    assert rms(out[mid:mid + BLOCK]) > 1e-3


def test_sustain_pedal_holds_released_notes_until_pedal_up():
    engine = make_engine(_plan(polyphony=4, release=50))
    down, off, up = int(0.1 * SR), int(0.2 * SR), int(0.6 * SR)
    events = [note_on(0, 60), note_on(0, 67), cc(down, CC_SUSTAIN, 1.0),
              note_off(off, 60), note_off(off, 67), cc(up, CC_SUSTAIN, 0.0)]
    states = {}

    def watch(b, eng):
        states[b] = (eng.active_voices, eng.current.voices[:2, V_SUSTAINED].copy(),
                     eng.current.voices[:2, V_KEY_DOWN].copy())

    out = render(engine, int(0.8 * SR), events, on_block=watch)[:, 0]
    held = rms(out[int(0.12 * SR):off])
    assert rms(out[off + 2400:up]) == pytest.approx(held, rel=0.02)  # no release while held
    count, sustained, key_down = states[(up - BLOCK) // BLOCK + 1]
    assert count == 2 and np.all(sustained == 1.0) and np.all(key_down == 0.0)
    # Pedal up: the release runs (50 ms), then silence and free voices.
    assert rms(out[up + 240:up + 720]) < 0.9 * held
    assert np.all(out[up + int(0.06 * SR) + 3 * BLOCK:] == 0.0)
    assert engine.active_voices == 0


def test_a_key_still_down_is_not_released_by_pedal_up():
    engine = make_engine(_plan(polyphony=4, release=50))
    events = [note_on(0, 60), cc(BLOCK, CC_SUSTAIN, 1.0), note_on(2 * BLOCK, 64),
              note_off(3 * BLOCK, 64), cc(20 * BLOCK, CC_SUSTAIN, 0.0)]
    render(engine, int(0.3 * SR), events)
    assert _sounding_notes(engine) == [60]


@pytest.mark.parametrize("event", ["cc123", "all_notes_off"])
def test_all_notes_off_releases_every_voice_even_with_the_pedal_down(event):
    engine = make_engine(_plan(polyphony=4, release=50))
    t = int(0.2 * SR) + 17
    stop = cc(t, CC_ALL_NOTES_OFF, 0.0) if event == "cc123" else (t, ALL_NOTES_OFF, 0, 0, 0)
    events = [note_on(0, 60), note_on(0, 64), cc(10, CC_SUSTAIN, 1.0), note_off(BLOCK, 64),
              stop]
    out = render(engine, int(0.4 * SR), events)[:, 0]
    held = rms(out[int(0.1 * SR):t])
    assert rms(out[t:t + 240]) > 0.5 * held  # a release, not a cut
    assert rms(out[t + 1200:t + 1440]) < 0.5 * held
    assert np.all(out[t + int(0.05 * SR) + 3 * BLOCK:] == 0.0)
    assert engine.active_voices == 0


@pytest.mark.parametrize("event", ["cc120", "all_sound_off"])
def test_all_sound_off_silences_from_its_sample_on(event):
    engine = make_engine(_plan(polyphony=4, release=2000))
    t = int(0.2 * SR) + 29
    stop = cc(t, CC_ALL_SOUND_OFF, 0.0) if event == "cc120" else (t, ALL_SOUND_OFF, 0, 0, 0)
    events = [note_on(0, 60), note_on(0, 64), cc(10, CC_SUSTAIN, 1.0), note_off(BLOCK, 64),
              stop]
    out = render(engine, int(0.3 * SR), events)[:, 0]
    assert rms(out[t - BLOCK:t]) > 0.05
    assert np.all(out[t:] == 0.0)
    assert engine.active_voices == 0
    # And the engine plays the next note normally.
    out = render(engine, int(0.1 * SR), [note_on(0, 69)])[:, 0]
    assert rms(out[BLOCK:]) > 0.05


# ---- mono, legato, glide --------------------------------------------------------------------

MONO_ENV = "attack_ms = 20\ndecay_ms = 50\nsustain = 0.5\nrelease_ms = 50"


def _peak_after(out, t, ms):
    return float(np.abs(out[t:t + int(ms / 1000 * SR)]).max())


def test_mono_retriggers_the_envelope_and_legato_does_not():
    """Level 0.2 sine; the envelope sits at sustain 0.5 (peak 0.1) when the second key comes.
    Mono restarts the attack (peak back to 0.2); legato keeps the sustain level."""
    b_on = int(0.3 * SR)
    events = [note_on(0, 57), note_on(b_on, 64)]
    peaks = {}
    for mode in ("mono", "legato"):
        engine = make_engine(_plan(mode=mode, env=MONO_ENV))
        out = render(engine, int(0.6 * SR), events)[:, 0]
        assert engine.active_voices == 1
        assert _sounding_notes(engine) == [64]
        assert _peak_after(out, b_on - 4800, 50) == pytest.approx(0.1, rel=0.01)
        peaks[mode] = _peak_after(out, b_on, 60)
        f = fft_pitch(out[b_on + 4800:], SR)
        assert abs(cents(f, midi_hz(64))) < 1.0
    assert peaks["mono"] == pytest.approx(0.2, rel=0.01)
    assert peaks["legato"] == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize("mode", ["legato", "mono"])
def test_glide_moves_the_pitch_from_note_a_to_note_b_over_glide_ms(mode):
    """One-pole glide in semitones: 99% of the interval after glide_ms, 90% after half of it.
    The pitch is measured period by period from the zero crossings of a sine."""
    glide_ms = 100.0
    a_note, b_note = 57, 69  # 220 -> 440 Hz
    b_on = int(0.2 * SR)
    engine = make_engine(_plan(mode=mode, glide_ms=glide_ms,
                               env="attack_ms = 1\ndecay_ms = 1\nsustain = 1\nrelease_ms = 50"))
    out = render(engine, int(0.5 * SR), [note_on(0, a_note), note_on(b_on, b_note)])[:, 0]
    times, freqs = zero_crossing_freqs(out, SR)
    semis = 69.0 + 12.0 * np.log2(freqs / 440.0)
    before = (times > 0.05 * SR) & (times < b_on - 600)
    assert np.all(np.abs(semis[before] - a_note) < 0.01)
    a = one_pole_coeff(glide_ms, SR)
    after = times > b_on + 200
    t_rel = times[after] - b_on
    model = b_note + (a_note - b_note) * a ** t_rel
    assert np.all(np.abs(semis[after] - model) < 0.1), np.abs(semis[after] - model).max()
    progress = (semis[after] - a_note) / (b_note - a_note)
    t90 = t_rel[np.flatnonzero(progress >= 0.90)[0]] / SR * 1000
    t99 = t_rel[np.flatnonzero(progress >= 0.99)[0]] / SR * 1000
    assert t90 == pytest.approx(glide_ms / 2, rel=0.1), t90
    assert t99 == pytest.approx(glide_ms, rel=0.1), t99
    assert np.all(np.abs(semis[times > b_on + 0.2 * SR] - b_note) < 0.01)


def test_without_glide_mono_jumps_to_the_new_pitch_at_once():
    b_on = int(0.2 * SR)
    engine = make_engine(_plan(mode="mono", env="attack_ms = 1\nsustain = 1"))
    out = render(engine, int(0.3 * SR), [note_on(0, 57), note_on(b_on, 69)])[:, 0]
    times, freqs = zero_crossing_freqs(out, SR)
    after = times > b_on + 0.003 * SR
    assert np.all(np.abs(12 * np.log2(freqs[after] / 440.0)) < 0.01)


@pytest.mark.parametrize("mode", ["mono", "legato"])
def test_mono_last_note_priority_returns_to_the_held_lower_note(mode):
    seg = int(0.25 * SR)
    events = [note_on(0, 60), note_on(seg, 64), note_on(2 * seg, 67),
              note_off(3 * seg, 67), note_off(4 * seg, 64),
              note_off(5 * seg, 72),  # a key that is not down changes nothing
              note_off(6 * seg, 60)]
    engine = make_engine(_plan(mode=mode, env="attack_ms = 1\nsustain = 1\nrelease_ms = 20"))
    out = render(engine, 7 * seg, events)[:, 0]
    expected = [60, 64, 67, 64, 60, 60]
    for k, note in enumerate(expected):
        part = out[k * seg + 2400:(k + 1) * seg]
        assert abs(cents(fft_pitch(part, SR), midi_hz(note))) < 1.0, (k, note)
    assert rms(out[6 * seg + 2400:]) == 0.0
    assert engine.active_voices == 0


def test_releasing_a_lower_held_key_keeps_the_top_note_sounding_in_mono():
    engine = make_engine(_plan(mode="mono", env="attack_ms = 1\nsustain = 1"))
    seg = int(0.2 * SR)
    out = render(engine, 2 * seg, [note_on(0, 60), note_on(BLOCK, 67),
                                   note_off(seg, 60)])[:, 0]
    assert abs(cents(fft_pitch(out[seg + 2400:], SR), midi_hz(67))) < 1.0
    assert _sounding_notes(engine) == [67]
