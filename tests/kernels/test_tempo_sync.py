"""Tempo sync: LFO rate and delay time as note values at the tempo (``kernels.tempo``), the
TEMPO and TRANSPORT events that carry the tempo and MIDI start into the engine, and the MIDI
clock reader on the host side (``control.midi_clock``). Offline: measured on rendered signals
through the real engine; the live path (JACK MIDI clock into ``instrument run``) is in
tests/control/test_midi_clock_live.py."""

import random

import numpy as np
import pytest

from helpers import compile_toml, make_engine, note_on, render, rising_zero_crossings
from instrument.control.midi_clock import (
    CLOCK, CONTINUE, START, STOP, MidiClock, TempoEstimator,
)
from instrument.control.midi_messages import MidiPort, dispatch_midi
from instrument.engine.events import TEMPO, TRANSPORT
from instrument.kernels.tempo import SYNC_BEATS, SYNC_CHOICES
from instrument.modules.delay import Delay
from instrument.modules.modulation import Lfo

SR = 48000


def tempo(frame: int, bpm: float):
    return (frame, TEMPO, 0, bpm, 0.0)


def transport(frame: int, beats: float):
    return (frame, TRANSPORT, 0, beats, 0.0)


def lfo_text(params: str) -> str:
    return ('format = 1\nname = "sync"\n[voice]\npolyphony = 2\nconnect = ["lfo.out -> out.in"]\n'
            f'[voice.nodes.lfo]\ntype = "lfo"\ndepth = 0.5\n{params}\n'
            '[voice.nodes.out]\ntype = "output"\n')


def lfo_signal(params: str, n_frames: int, events=()) -> np.ndarray:
    plan = compile_toml(lfo_text(params), SR)
    return render(make_engine(plan), n_frames, [note_on(0, 60), *events])[:n_frames, 0] \
        .astype(np.float64)


def rate_hz(y: np.ndarray) -> float:
    z = rising_zero_crossings(y[1:]) + 1
    return SR * (len(z) - 1) / (z[-1] - z[0])


# ---- the choices --------------------------------------------------------------------------

def test_sync_choices_are_note_values_in_beats():
    beats = dict(zip(SYNC_CHOICES, SYNC_BEATS))
    assert beats["1/4"] == 1.0 and beats["1/1"] == 4.0 and beats["1/8"] == 0.5
    assert beats["1/8."] == 0.75 and beats["1/8T"] == pytest.approx(1 / 3)
    assert beats["4/1"] == 16.0 and beats["1/32"] == 0.125
    for cls in (Lfo, Delay):
        spec = cls.param("sync")
        assert spec.choices == SYNC_CHOICES and spec.default == 0.0  # Off: nothing changes
        assert spec.parse("1/8.") == SYNC_CHOICES.index("1/8.")
        assert spec.format(SYNC_CHOICES.index("1/16T")) == "1/16T"


# ---- LFO ----------------------------------------------------------------------------------

def test_lfo_synced_to_a_quarter_at_120_bpm_runs_at_2_hz():
    y = lfo_signal('sync = "1/4"\nrate_hz = 7.0', 6 * SR, [tempo(0, 120.0)])
    assert rate_hz(y) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("note, bpm, hz", [("1/8T", 150.0, 7.5), ("1/1", 96.0, 0.4),
                                           ("1/16.", 100.0, 100 / 60 / 0.375)])
def test_lfo_synced_rate_is_tempo_over_note_value(note, bpm, hz):
    y = lfo_signal(f'sync = "{note}"', int(max(6.0, 3.0 / hz) * SR), [tempo(0, bpm)])
    assert rate_hz(y) == pytest.approx(hz, rel=1e-6)


def test_lfo_follows_a_tempo_change_without_a_phase_jump():
    change = 3 * SR + 17
    y = lfo_signal('sync = "1/4"', 7 * SR, [tempo(0, 120.0), tempo(change, 90.0)])
    assert rate_hz(y[:change]) == pytest.approx(2.0, rel=1e-6)
    assert rate_hz(y[change + 1:]) == pytest.approx(1.5, rel=1e-5)
    # continuous: no step larger than the steepest slope of a 2 Hz sine of depth 0.5
    assert np.max(np.abs(np.diff(y))) < 0.5 * 2 * np.pi * 2.0 / SR * 1.01


def test_lfo_off_ignores_the_tempo():
    y = lfo_signal("rate_hz = 3.0", 4 * SR, [tempo(0, 200.0)])
    assert rate_hz(y) == pytest.approx(3.0, rel=1e-6)


def test_midi_start_puts_a_synced_lfo_at_the_song_position():
    """A TRANSPORT event (the downbeat of a MIDI start) restarts a 1/1 LFO at phase 0 (a sine
    starts rising through 0); at song position 2 beats it starts half a cycle in (falling)."""
    start = 30_011
    for beats, sign in ((0.0, 1.0), (2.0, -1.0), (4.0, 1.0)):
        y = lfo_signal('sync = "1/1"', start + 2000, [tempo(0, 120.0), transport(start, beats)])
        assert abs(y[start]) < 1e-6
        assert np.sign(y[start + 500]) == sign
    free = lfo_signal('rate_hz = 0.5', start + 2000, [tempo(0, 120.0), transport(start, 0.0)])
    assert abs(free[start]) > 0.1  # an unsynced LFO runs on


def test_bad_tempo_events_are_counted_and_ignored():
    plan = compile_toml(lfo_text('sync = "1/4"'), SR)
    engine = make_engine(plan)
    y = render(engine, 4 * SR, [note_on(0, 60), tempo(0, 120.0), tempo(100, float("nan")),
                                tempo(200, 0.0), tempo(300, 1000.0)])[:, 0].astype(np.float64)
    assert engine.bad_events == 3
    assert rate_hz(y) == pytest.approx(2.0, rel=1e-6)


def test_the_tempo_survives_a_plan_swap():
    plan = compile_toml(lfo_text('sync = "1/4"'), SR)
    engine = make_engine(plan)
    render(engine, 640, [tempo(0, 75.0)])
    engine.swap(compile_toml(lfo_text('sync = "1/4"\nphase_deg = 1'), SR))
    y = render(engine, 5 * SR, [note_on(0, 60)])[:, 0].astype(np.float64)
    assert rate_hz(y[SR:]) == pytest.approx(75.0 / 60.0, rel=1e-6)


# ---- delay --------------------------------------------------------------------------------

DELAY_TEXT = """format = 1
name = "echo"
[voice]
polyphony = 1
connect = ["osc.out -> amp.in", "env.out -> amp.cv", "amp.out -> out.in"]
[voice.nodes.osc]
type = "sine"
level = 0.5
[voice.nodes.env]
type = "ar"
attack_ms = 0
release_ms = 5
[voice.nodes.amp]
type = "vca"
[voice.nodes.out]
type = "output"
[global]
connect = ["voices.left -> dly.left", "voices.right -> dly.right", "dly.out_left -> main.left",
           "dly.out_right -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.dly]
type = "delay"
time_ms = 40
feedback = 0
mix = {mix}
sync = "{sync}"
[global.nodes.main]
type = "output"
"""


def delay_render(sync: str, mix: float, bpm: float, n_frames: int) -> np.ndarray:
    plan = compile_toml(DELAY_TEXT.format(sync=sync, mix=mix), SR)
    events = [tempo(0, bpm), note_on(640, 69), (700, 2, 0, 69, 0.0)]
    return render(make_engine(plan), n_frames, events)[:n_frames, 0].astype(np.float64)


def onset(x: np.ndarray) -> int:
    return int(np.nonzero(np.abs(x) > 1e-4)[0][0])


def test_delay_synced_to_an_eighth_at_100_bpm_echoes_300_ms_later():
    dry = delay_render("1/8", 0.0, 100.0, SR)
    wet = delay_render("1/8", 1.0, 100.0, SR)
    assert onset(wet) - onset(dry) == round(0.300 * SR)
    lag = np.argmax(np.correlate(wet[:SR], dry[:4000], mode="valid"))
    assert lag == round(0.300 * SR)


@pytest.mark.parametrize("sync, bpm, ms", [("1/4.", 90.0, 1000.0),
                                           ("1/16T", 140.0, 60000 / 140 / 6),
                                           ("1/1", 60.0, 2000.0)])  # 4 s, limited to 2 s
def test_delay_synced_time_is_the_note_value_at_the_tempo(sync, bpm, ms):
    dry = delay_render(sync, 0.0, bpm, int(2.2 * SR))
    wet = delay_render(sync, 1.0, bpm, int(2.2 * SR))
    assert abs((onset(wet) - onset(dry)) - ms * SR / 1000) <= 3  # the line's last few samples


# ---- MIDI clock on the host side -----------------------------------------------------------

def ticks(bpm: float, n: int, jitter_s: float = 0.0, period_s: float = 0.0, seed: int = 0,
          t0: float = 100.0):
    """Tick times at ``bpm``: each quantized to ``period_s`` (a JACK cycle) and late by up to
    ``jitter_s`` (uniform)."""
    rng = random.Random(seed)
    tick_s = 60.0 / (bpm * 24)
    for k in range(n):
        t = t0 + k * tick_s
        if period_s:
            t = (t // period_s + 1) * period_s
        yield t + rng.uniform(0.0, jitter_s)


def estimate(times) -> float | None:
    est, last = TempoEstimator(), None
    for t in times:
        bpm = est.tick(t)
        last = bpm if bpm is not None else last
    return last


@pytest.mark.parametrize("bpm", [20.0, 60.0, 120.0, 137.5, 174.0, 300.0])
def test_tempo_from_jittered_ticks_within_a_tenth_of_a_bpm(bpm):
    """JACK timestamps: ticks quantized to 64-frame cycles (1.33 ms) plus up to 0.5 ms."""
    for seed in range(5):
        got = estimate(ticks(bpm, 24 * 4, jitter_s=0.0005, period_s=64 / 48000, seed=seed))
        assert got == pytest.approx(bpm, abs=0.1)


def test_tempo_survives_lost_ticks_and_a_late_one():
    times = list(ticks(128.0, 24 * 6, jitter_s=0.0003, seed=3))
    del times[50], times[90]  # two ticks lost
    times[70] += 0.008  # one polled 8 ms late
    assert estimate(times) == pytest.approx(128.0, abs=0.05)


def test_tempo_survives_a_sender_that_stalls_and_catches_up():
    """Ticks 3 periods late, then the ones due meanwhile in a burst (a sender on a schedule
    that was descheduled): not lost ticks."""
    times = list(ticks(150.0, 24 * 4, jitter_s=0.0003, seed=5))
    tick_s = 60.0 / (150.0 * 24)
    for first, last, wake in ((60, 62, 63.0), (75, 77, 77.5), (88, 95, 95.2)):
        for k in range(first, last + 1):  # sent one after the other when the sender woke
            times[k] = 100.0 + wake * tick_s + 0.0001 * (k - first)
    assert estimate(times) == pytest.approx(150.0, abs=0.05)


def test_tempo_follows_a_change_and_restarts_after_a_stop():
    times = list(ticks(120.0, 24 * 4)) + list(ticks(60.0, 24 * 4, t0=102.0))  # slower at once
    assert estimate(times) == pytest.approx(60.0, abs=0.01)
    times = list(ticks(90.0, 24 * 4)) + list(ticks(180.0, 24 * 4, t0=110.0))  # after a pause
    assert estimate(times) == pytest.approx(180.0, abs=0.01)
    times = list(ticks(90.0, 24 * 4)) + list(ticks(100.0, 24 * 4, t0=100 + 96 * 60 / 90 / 24))
    assert estimate(times) == pytest.approx(100.0, abs=0.01)  # a faster tempo, no gap


class _Engine:
    def __init__(self):
        self.tempi, self.downbeats = [], []


def _clock():
    sink = _Engine()
    clock = MidiClock(lambda bpm, t: sink.tempi.append((bpm, t)),
                      lambda beats, t: sink.downbeats.append((beats, t)))
    return clock, sink


def test_clock_publishes_the_tempo_holds_it_and_yields_to_set_tempo():
    clock, sink = _clock()
    assert clock.tempo_bpm == 120.0 and clock.source == "default"
    assert clock.set_tempo(95.5) and sink.tempi == [(95.5, None)] and clock.source == "set"
    assert clock.set_tempo(1000.0) and clock.tempo_bpm == 300.0  # clipped
    assert not clock.set_tempo(float("nan")) and not clock.set_tempo("fast")
    before = len(sink.tempi)
    for t in ticks(140.0, 24 * 4, jitter_s=0.0005, period_s=64 / 48000):
        clock.realtime(CLOCK, t)
    assert clock.source == "midi clock" and clock.tempo_bpm == pytest.approx(140.0, abs=0.05)
    published = len(sink.tempi) - before
    assert 2 <= published <= 6  # the first fits, then only moves of 0.05 BPM or more
    status = clock.status(200.0)
    assert status["clock_ticks"] == 96 and status["tempo_bpm"] == pytest.approx(140.0, abs=0.05)
    assert clock.tempo_bpm == pytest.approx(140.0, abs=0.05)  # no ticks: the tempo holds
    clock.set_tempo(100.0)  # the clock stopped: /tempo applies
    assert clock.tempo_bpm == 100.0 and clock.source == "set"


def test_transport_downbeats_come_with_the_first_tick_after_start_and_continue():
    clock, sink = _clock()
    clock.realtime(CLOCK, 1.0)  # a clock while stopped moves nothing
    clock.realtime(START, 1.01)
    assert sink.downbeats == []
    clock.realtime(CLOCK, 1.02)
    assert sink.downbeats == [(0.0, 1.02)]
    for k in range(47):
        clock.realtime(CLOCK, 1.03 + k * 0.01)
    clock.realtime(STOP, 2.0)
    assert clock.status(2.0)["song_position_beats"] == 2.0 and not clock.running
    clock.realtime(CLOCK, 2.01)
    clock.realtime(CONTINUE, 2.02)
    clock.realtime(CLOCK, 2.03)
    assert sink.downbeats[-1] == (2.0, 2.03)
    clock.realtime(STOP, 2.1)
    clock.song_position(10)  # 10 sixteenths: 2.5 beats
    clock.realtime(CONTINUE, 2.2)
    clock.realtime(CLOCK, 2.21)
    assert sink.downbeats[-1] == (2.5, 2.21)


class _Host:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_real_time_bytes_and_song_position_reach_the_host_through_a_port():
    host = _Host()
    port = MidiPort(host, "clock")
    for data in ([0xF8], bytes([0xFA]), [0xFB], [0xFC], [0xF2, 0x10, 0x01], [0xFE]):
        assert dispatch_midi(data, port, 3.0)
    assert host.calls == [("midi_realtime", 0xF8, 3.0), ("midi_realtime", 0xFA, 3.0),
                          ("midi_realtime", 0xFB, 3.0), ("midi_realtime", 0xFC, 3.0),
                          ("song_position", 0x10 + 128), ("midi_realtime", 0xFE, 3.0)]


def test_api_time_keeps_the_api_spacing_when_polls_are_late():
    """rtmidi's deltas (the API's own spacing) placed on the poll clock with the smallest delay
    seen: a late poll does not move a message's time; the first message anchors."""
    from instrument.control.midi_in import ApiTime

    clock = ApiTime()
    assert clock.time(0.0, 10.000) == 10.000  # first message: anchored at its poll
    assert clock.time(0.020, 10.025) == pytest.approx(10.020)  # polled 5 ms late
    assert clock.time(0.020, 10.0401) == pytest.approx(10.040)
    assert clock.time(0.020, 10.0590) == pytest.approx(10.059)  # earlier than expected: anchor
    assert clock.time(0.020, 10.0800) == pytest.approx(10.079)
    assert clock.time(2.0, 13.0) == pytest.approx(13.0)  # more than RESYNC_S behind: again
