"""Zero-length notes (note-on and note-off at the same sample, or in the same segment) release
and free their voice; nothing leaves an envelope sustaining with its key up.

The gate rule under test is in the docstring of ``instrument/kernels/envelopes.py``: a trigger
with the gate already low plays one sample of attack and releases from there, and a low gate
releases any envelope in attack, decay or sustain. Before, such a note rang until /panic.
"""

from pathlib import Path

import mido
import numpy as np
import pytest

from helpers import cc, compile_toml, make_engine, note_off, note_on, render, rms
from instrument.audio.wav import read_wav
from instrument.engine.engine import Engine
from instrument.engine.events import ALL_NOTES_OFF, CC_ALL_NOTES_OFF
from instrument.layout import V_KEY_DOWN, V_NOTE
from instrument.presets import compile_file
from instrument.render.offline import render_file
from live import REPO

SHIPPED = sorted((REPO / "presets").glob("*.toml"))
SR = 48000
BLOCK = 64
SILENT = 10 ** (-90 / 20)  # -90 dBFS
FREE_MARGIN_S = 0.5  # after the longest release: freeing needs two quiet blocks, filters ring


def _engine(preset: Path) -> Engine:
    engine = Engine(SR, BLOCK, max_events=4096)
    engine.load(compile_file(preset, SR, BLOCK))
    return engine


def _param_values(engine: Engine, suffix: str) -> list[float]:
    return [engine.get_param(p.path) for p in engine.current.plan.params
            if p.path.endswith(suffix)]


def _longest_release_s(engine: Engine) -> float:
    return max(_param_values(engine, ".release_ms"), default=0.0) / 1000.0


def _effect_tail_s(engine: Engine) -> float:
    """A bound on how long the global effects ring on after the voices stop, down to -90 dB
    from full scale: 1.5 RT60 of a reverb, the repeats of a delay until they are 90 dB down."""
    tail = 1.5 * max(_param_values(engine, ".decay_s"), default=0.0)
    for fb, ms in zip(_param_values(engine, ".feedback"), _param_values(engine, ".time_ms")):
        if fb > 0.0:
            tail += (np.log(SILENT) / np.log(fb) + 1) * ms / 1000.0
    return tail


def _render_counting(engine, n_frames, events):
    """Rendered audio and the active voice count after each block."""
    voices = []
    out = render(engine, n_frames, events,
                 on_block=lambda b, e: voices.append(e.active_voices) if b else None)
    voices.append(engine.active_voices)
    return out, np.array(voices)


def _freed_after_s(voices, start_frame):
    """Seconds after ``start_frame`` until the voice count is 0 for good (inf if never)."""
    busy = np.flatnonzero(voices > 0)
    if busy.size and busy[-1] == len(voices) - 1:
        return np.inf
    end_block = busy[-1] + 1 if busy.size else 0
    return max(end_block * BLOCK - start_frame, 0) / SR


# ---- every shipped preset -------------------------------------------------------------------

@pytest.mark.parametrize("at", [0, SR // 2 + 17], ids=["first-sample", "mid-block"])
@pytest.mark.parametrize("preset", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_zero_length_note_is_released_and_its_voice_freed(preset, at):
    engine = _engine(preset)
    release = _longest_release_s(engine)
    tail = _effect_tail_s(engine)
    n = at + int((release + FREE_MARGIN_S + tail + 0.5) * SR)
    out, voices = _render_counting(engine, n, [note_on(at, 57), note_off(at, 57)])
    assert voices[at // BLOCK] == 1  # the note did take a voice
    assert _freed_after_s(voices, at) <= release + FREE_MARGIN_S, (preset.stem, voices[-5:])
    assert rms(out[-SR // 10:]) < SILENT, (preset.stem, 20 * np.log10(rms(out[-SR // 10:])))


def test_zero_length_note_renders_to_a_short_file_from_a_midi_file(tmp_path):
    """The issue's reproduction: ``instrument render`` of a MIDI file with note 57 on and off
    at tick 0 (and again mid-file) rang to the 30 s tail limit; it ends after the release."""
    mid = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: a tick is 1/960 s
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=57, velocity=100, time=0))
    track.append(mido.Message("note_off", note=57, velocity=0, time=0))
    track.append(mido.Message("note_on", note=60, velocity=90, time=960))
    track.append(mido.Message("note_off", note=60, velocity=0, time=0))
    track.append(mido.Message("note_on", note=64, velocity=90, time=0))
    track.append(mido.Message("note_off", note=64, velocity=0, time=480))
    midi_path = tmp_path / "zero.mid"
    mid.save(midi_path)
    wav = tmp_path / "out.wav"
    result = render_file(REPO / "presets/poly16.toml", midi_path, wav, progress=False)
    release = _longest_release_s(_engine(REPO / "presets/poly16.toml"))
    assert result.duration_s < 1.5 + release + FREE_MARGIN_S
    x, sr = read_wav(wav)
    assert sr == SR and np.abs(x[-2 * BLOCK:]).max() < 1e-5  # it ended on silence
    assert rms(x[int(1.05 * SR):int(1.45 * SR)]) > 1e-3  # the real note in between sounds


# ---- what a zero-length note sounds like ----------------------------------------------------

ENVELOPES = {
    "adsr": 'type = "adsr"\nattack_ms = {att}\ndecay_ms = 30\nsustain = 0.5\nrelease_ms = 20',
    "adsr_curve": ('type = "adsr_curve"\nattack_ms = {att}\ndecay_ms = 30\nsustain = 0.5\n'
                   'release_ms = 20\ncurve = 0.6'),
    "ar": 'type = "ar"\nattack_ms = {att}\nrelease_ms = 20',
}


def _envelope_plan(kind, attack_ms):
    """The envelope itself, at half level (below the output limiter), on the output."""
    return compile_toml(f"""
format = 1
name = "env"
[voice]
polyphony = 4
connect = ["env.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.env]
{ENVELOPES[kind].format(att=attack_ms)}
[voice.nodes.amp]
type = "vca"
gain = 0.5
velocity_amount = 0.0
[voice.nodes.out]
type = "output"
""", SR, BLOCK)


@pytest.mark.parametrize("attack_ms", [0.0, 0.05, 5.0])
@pytest.mark.parametrize("kind", sorted(ENVELOPES))
def test_zero_length_note_plays_as_a_one_sample_note(kind, attack_ms):
    """No cliff in note length: a zero-length note is the limit of ever shorter notes. With an
    instant attack it is a pluck as long as the release, with a slow one next to silence."""
    at = 3 * BLOCK + 10
    plan = _envelope_plan(kind, attack_ms)
    zero = render(make_engine(plan), 40 * BLOCK, [note_on(at, 60), note_off(at, 60)])[:, 0]
    one = render(make_engine(plan), 40 * BLOCK, [note_on(at, 60), note_off(at + 1, 60)])[:, 0]
    np.testing.assert_array_equal(zero, one)
    assert np.all(zero[:at] == 0.0)
    if attack_ms == 0.0:
        assert zero[at] == 0.5  # the pluck sounds: full level (the vca's 0.5) at once...
        assert 0.4 < zero[at + 1] < 0.5  # ...then the release
    else:
        assert 0.0 < zero[at] < 0.5 and zero[at + 1] < zero[at]
    assert np.all(zero[at + 1 + int(0.020 * SR) + 1:] == 0.0)  # landed on 0 after release_ms


# ---- the kernels' fast path (engine rows) and patched path agree on zero-length notes ------

def _engine_like_rows(total, lanes, rng):
    """Gate and trigger as the engine writes them: the gate constant over each segment, a
    trigger only on a segment's first sample, many with the gate already low (zero-length
    notes), segments of 1 to 200 samples that never cross a block boundary."""
    cuts = set(range(0, total + 1, BLOCK))
    cuts |= set(rng.integers(0, total, total // 60).tolist())
    cuts |= {c + 1 for c in rng.integers(0, total - 1, total // 200).tolist()}  # 1-sample ones
    bounds = sorted(c for c in cuts if c <= total)
    gate = np.zeros((total, lanes))
    trig = np.zeros((total, lanes))
    for s, e in zip(bounds, bounds[1:]):
        g = (rng.random(lanes) < np.linspace(0.2, 0.7, lanes)) * 1.0
        gate[s:e] = g
        trig[s] = rng.random(lanes) < 0.3
    return gate, trig, list(zip(bounds, bounds[1:]))


def _drive_kernel(kernel, state, params, gate, trig, segments, patched):
    from instrument.layout import (
        CTX_SAMPLE_RATE, CTX_WIDTH, N_RESERVED_ROWS, ROW_GATE, ROW_ONE, ROW_TRIGGER,
    )

    lanes = gate.shape[1]
    rows = (N_RESERVED_ROWS + 1, N_RESERVED_ROWS + 2) if patched else (ROW_GATE, ROW_TRIGGER)
    io = np.array([*rows, N_RESERVED_ROWS], dtype=np.int64)
    bufs = np.zeros((N_RESERVED_ROWS + 3, BLOCK, lanes))
    bufs[ROW_ONE] = 1.0  # the ar's sustain
    P = np.zeros((len(params), BLOCK, lanes))
    for k, value in enumerate(params):
        P[k] = value
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = SR
    out = np.zeros_like(gate)
    for s, e in segments:
        s0, s1 = s % BLOCK, (e - 1) % BLOCK + 1
        bufs[rows[0], s0:s1] = gate[s:e]
        bufs[rows[1], s0:s1] = trig[s:e]
        kernel(bufs, io, P, np.arange(len(params), dtype=np.int64), state, ctx, s0, s1, lanes)
        out[s:e] = bufs[N_RESERVED_ROWS, s0:s1]
    return out


@pytest.mark.parametrize("kind", ["adsr", "adsr_curve", "adsr_curve_hard", "ar"])
def test_fast_path_equals_patched_path_and_reference_with_zero_length_notes(kind):
    import naive
    import naive_modulation
    from instrument.kernels.envelopes import (
        ADSR_STATE, AR_RELEASE_K, ENV_STATE, K_MAX, adsr_curve_kernel, adsr_kernel, ar_kernel,
        env_reset,
    )

    lanes, total = 3, 300 * BLOCK
    gate, trig, segments = _engine_like_rows(total, lanes, np.random.default_rng(7))
    times = dict(attack_ms=1.5, decay_ms=6.0, sustain=0.4, release_ms=1.0)
    if kind == "adsr":
        kernel, size, params = adsr_kernel, ADSR_STATE, list(times.values())

        def reference(v):
            return naive.adsr(gate[:, v], trig[:, v], sample_rate=SR, **times)
    elif kind == "ar":
        kernel, size, params = ar_kernel, ENV_STATE, [times["attack_ms"], times["release_ms"]]

        def reference(v):
            return naive_modulation.envelope(gate[:, v], trig[:, v], SR, times["attack_ms"],
                                             0.0, 1.0, times["release_ms"], 0.0, 0.0,
                                             AR_RELEASE_K)
    else:
        hard = 1.0 if kind.endswith("hard") else 0.0
        kernel, size, params = adsr_curve_kernel, ENV_STATE, [*times.values(), 0.6, hard]

        def reference(v):
            k = 0.6 * K_MAX
            return naive_modulation.envelope(gate[:, v], trig[:, v], SR, **times, k_att=k,
                                             k_dec=k, k_rel=k, hard=bool(hard))
    outs = []
    for patched in (False, True):
        state = np.zeros((size, lanes))
        if size == ENV_STATE:
            for v in range(lanes):
                env_reset(state[:, v])
        outs.append(_drive_kernel(kernel, state, params, gate, trig, segments, patched))
    fast, patched_out = outs
    assert np.max(np.abs(fast - patched_out)) < 1e-12
    for v in range(lanes):
        assert np.max(np.abs(fast[:, v] - reference(v))) < 1e-9
    zero_length = (trig > 0.5) & (gate < 0.5)
    assert zero_length.sum() > 20  # the rows did have zero-length notes
    # Nothing is left sounding: once the gate has been low, with no trigger, for longer than
    # the release (1 ms, 48 samples) the output is 0, zero-length notes or not.
    busy = (gate > 0.5) | (trig > 0.5)
    since = np.zeros_like(gate)
    for i in range(1, total):
        since[i] = np.where(busy[i], 0, since[i - 1] + 1)
    settled = since > 50
    assert settled.sum() > 1000 and np.all(fast[settled] == 0.0)


def test_note_off_in_the_same_segment_is_not_lost_with_other_notes_held():
    """A chord holds; a zero-length note lands among held notes: only it is released."""
    engine = _engine(REPO / "presets/poly16.toml")
    release = _longest_release_s(engine)
    events = [note_on(0, 48), note_on(0, 52), note_on(5000, 57), note_off(5000, 57)]
    out, voices = _render_counting(engine, 5000 + int((release + FREE_MARGIN_S) * SR), events)
    assert voices[5000 // BLOCK] == 3 and voices[-1] == 2
    n = engine.active_voices
    assert sorted(engine.current.voices[:n, V_NOTE].astype(int).tolist()) == [48, 52]
    assert rms(out[-SR // 10:]) > 1e-3  # the chord still sounds


# ---- a burst of notes -----------------------------------------------------------------------

def _burst(seed, rate_hz=10_000, seconds=1.0):
    """Note-on/note-off pairs at random frames, random notes, lengths 0 (a third of them),
    1-64 samples or up to 50 ms."""
    rng = np.random.default_rng(seed)
    n = int(rate_hz * seconds)
    starts = np.sort(rng.integers(0, int(seconds * SR), n))
    kind = rng.integers(0, 3, n)
    lengths = np.where(kind == 0, 0, np.where(kind == 1, rng.integers(1, 65, n),
                                              rng.integers(65, SR // 20, n)))
    notes = rng.integers(0, 128, n)
    velocity = rng.uniform(0.05, 1.0, n)
    events = []
    for t, length, note, vel in zip(starts, lengths, notes, velocity):
        events.append(note_on(int(t), int(note), float(vel)))
        events.append(note_off(int(t + length), int(note)))
    return events


@pytest.mark.parametrize("preset", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_burst_of_10k_notes_per_second_ends_with_every_voice_free(preset):
    engine = _engine(preset)
    events = _burst(seed=len(preset.stem))
    last = max(e[0] for e in events)
    release = _longest_release_s(engine)
    tail = _effect_tail_s(engine)
    n = last + int((release + FREE_MARGIN_S + tail + 0.5) * SR)
    out, voices = _render_counting(engine, n, events)
    assert voices[: last // BLOCK].min() >= 1  # the burst did play
    assert _freed_after_s(voices, last) <= release + FREE_MARGIN_S, (preset.stem, voices[-5:])
    assert rms(out[-SR // 10:]) < SILENT
    assert engine.bad_events == 0


# ---- all notes off and CC123 end a stranded envelope ----------------------------------------

def _stranded_engine(kind):
    """An engine whose one voice has its key up (for the allocator) while its envelope
    sustains with its previous gate low: the state a zero-length note left behind before the
    fix. Made by hand: a held note reaches sustain, then the allocator's key and the
    envelope's previous gate are lowered and the envelope is put back to sustaining."""
    from instrument.kernels.envelopes import SUSTAIN

    engine = make_engine(_envelope_plan(kind, 5.0))
    render(engine, 80 * BLOCK, [note_on(0, 57)])
    inst = engine.current
    assert engine.active_voices == 1
    inst.voices[0, V_KEY_DOWN] = 0.0
    inst.vstate[0, 0] = SUSTAIN  # stage (row 0 of every envelope's state)
    inst.vstate[2, 0] = 0.0  # previous gate (row 2): no falling edge will come
    return engine


@pytest.mark.parametrize("stop", ["all-notes-off", "cc123"])
@pytest.mark.parametrize("kind", sorted(ENVELOPES))
def test_all_notes_off_and_cc123_end_a_stranded_envelope(kind, stop):
    engine = _stranded_engine(kind)
    event = ((0, ALL_NOTES_OFF, 0, 0.0, 0.0) if stop == "all-notes-off"
             else cc(0, CC_ALL_NOTES_OFF, 1.0))
    out, voices = _render_counting(engine, int(0.3 * SR), [event])
    assert out[0, 0] > 0.2  # it was sounding when the message came
    assert _freed_after_s(voices, 0) <= 0.02 + FREE_MARGIN_S
    assert np.all(out[int(0.021 * SR) + BLOCK:] == 0.0)


@pytest.mark.parametrize("stop", ["all-notes-off", "cc123", "note-off"])
def test_zero_length_notes_then_all_notes_off_cc123_or_another_note_off(stop):
    """The messages the issue found powerless against a zero-length note (the allocator has
    its key up already) leave every voice free after the release, and a later note plays."""
    engine = _engine(REPO / "presets/poly16.toml")
    release = _longest_release_s(engine)
    events = [note_on(100, n) for n in (57, 60, 64)] + [note_off(100, n) for n in (57, 60, 64)]
    after = 100 + 10 * BLOCK
    events.append({"all-notes-off": (after, ALL_NOTES_OFF, 0, 0.0, 0.0),
                   "cc123": cc(after, CC_ALL_NOTES_OFF, 1.0),
                   "note-off": note_off(after, 57)}[stop])
    later = after + int((release + FREE_MARGIN_S) * SR)
    events += [note_on(later, 69), note_off(later + SR // 2, 69)]
    out, voices = _render_counting(engine, later + SR // 2 + int((release + FREE_MARGIN_S) * SR),
                                   events)
    assert voices[later // BLOCK - 1] == 0
    assert rms(out[later + SR // 4:later + SR // 2]) > 1e-3  # the next note sounds
    assert voices[-1] == 0
