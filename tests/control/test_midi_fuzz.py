"""Junk MIDI through a real JACK MIDI port: ``instrument run`` must stay up, quiet in its log,
and playable, with no voice left sounding.

A seeded stream of a few thousand JACK MIDI events mixes valid note-on/note-off pairs (a third
of them zero-length: the note-off is the very next event) with what a broken cable, a confused
controller or a buggy sender produces: running-status fragments (data bytes without a status;
JACK MIDI events must be complete messages, so these are junk), truncated messages, SysEx bursts,
SysEx without its end byte, data bytes first, real-time and undefined status bytes, data bytes
above 127. A sender cannot put more than 3 bytes in a message that does not start with F0 (the
python-rtmidi output refuses it), so longer junk is SysEx-shaped.

Kept out of the junk on purpose, because they would hold notes legitimately: program changes
(another preset), the sustain pedal (CC64) and, so as not to mask a stuck voice, all notes/sound
off (CC120/123).

What this found: after a SysEx without its end byte, rtmidi's JACK input holds back every
event until one ends in F7, and with SysEx ignored it then dropped them all: the note-offs in
between were lost and their voices stuck (13 of them with this stream). Now the held-back events
arrive glued to the SysEx and their note-offs are applied (``instrument/control/midi_in.py``,
``midi_messages.py``). The port stays deaf until an event ends in F7 (rtmidi's limitation, see
``midi_in``), so the stream ends with a complete SysEx, as a device's next one would.
"""

import os
import random
import time

import pytest

from live import JackMidiOut, LiveInstrument, status_json, wait_connected, wait_status

pytestmark = pytest.mark.integration

SEED = 20240611
N_EVENTS = 3000
CHUNK = 25  # events sent back to back, then a pause: the sender's JACK ring buffer holds 16 KB
PAUSE_S = 0.004


def _data(rng, n):
    return [rng.randrange(128) for _ in range(n)]


def _channel_status(rng, high=(0x8, 0x9, 0xA, 0xB, 0xE)):
    """A channel-message status byte that is never a program change."""
    return (rng.choice(high) << 4) | rng.randrange(16)


def _harmless_valid(rng):
    """A valid message that changes no voice allocation: bend, mod wheel, pressure, CC."""
    ch = rng.randrange(16)
    kind = rng.randrange(4)
    if kind == 0:
        return [0xE0 | ch, *_data(rng, 2)]
    if kind == 1:
        return [0xD0 | ch, rng.randrange(128)]
    if kind == 2:
        return [0xA0 | ch, *_data(rng, 2)]
    cc = rng.choice([1, 2, 7, 10, 11, 71, 74, 91, 93])
    return [0xB0 | ch, cc, rng.randrange(128)]


def _junk(rng):
    """One junk event (a list of ints 0..255) of a random kind."""
    kind = rng.randrange(8)
    if kind == 0:  # running status: data bytes of a message whose status came before
        return _data(rng, rng.choice([1, 2, 2, 3]))
    if kind == 1:  # truncated channel or system-common message
        status = rng.choice([_channel_status(rng), 0xC0 | rng.randrange(16),
                             0xD0 | rng.randrange(16), 0xF1, 0xF2, 0xF3])
        need = 2 if (status >> 4) in (0xC, 0xD) or status in (0xF1, 0xF3) else 3
        return [status, *_data(rng, rng.randrange(need - 1))]
    if kind == 2:  # a SysEx burst, well formed
        return [0xF0, *_data(rng, rng.randrange(0, 120)), 0xF7]
    if kind == 3:  # SysEx without its end byte
        return [0xF0, *_data(rng, rng.randrange(0, 120))]
    if kind == 4:  # real-time bytes, and the undefined ones
        return [rng.choice([0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF])]
    if kind == 5:  # undefined system common, a lone end of SysEx
        return [rng.choice([0xF4, 0xF5, 0xF7]), *_data(rng, rng.randrange(3))]
    if kind == 6:  # out-of-range data bytes in an otherwise complete message
        status = _channel_status(rng)
        a, b = rng.randrange(256), rng.randrange(256)
        if a < 128 and b < 128:
            a |= 0x80
        return [status, a, b]
    return _harmless_valid(rng)


def _stream(seed=SEED, n=N_EVENTS):
    """Junk interleaved with valid note pairs; every note-on gets its note-off, some at once
    (zero-length), the others a few events later. Returns (events, number of pairs)."""
    rng = random.Random(seed)
    events = []
    pending = []  # (events left before the note-off, note-off message)
    pairs = 0
    while len(events) < n or pending:
        due = [p for p in pending if p[0] <= 0]
        pending = [(k - 1, m) for k, m in pending if k > 0]
        events.extend(m for _, m in due)
        if len(events) >= n:
            continue
        if rng.random() < 0.15:
            ch = rng.randrange(16)
            note = rng.randrange(128)
            events.append([0x90 | ch, note, 1 + rng.randrange(127)])
            off = rng.choice([[0x80 | ch, note, rng.randrange(128)], [0x90 | ch, note, 0]])
            pairs += 1
            if rng.random() < 0.35:
                events.append(off)  # zero-length: on and off in one JACK period
            else:
                pending.append((rng.randrange(1, 30), off))
        else:
            events.append(_junk(rng))
    return events, pairs


def _settle(osc_port, timeout_s=30.0):
    """The status once the MIDI count has stopped moving and no voice is active (the status
    file is rewritten once a second); the last one read if that never happens."""
    end = time.monotonic() + timeout_s
    last = status_json(osc_port)
    while time.monotonic() < end:
        time.sleep(1.2)
        now = status_json(osc_port)
        if (now and last and now["midi_messages"] == last["midi_messages"] > 0
                and now["active_voices"] == 0):
            return now
        last = now
    return last


def _brief(status):
    keys = ("active_voices", "midi_messages", "midi_junk", "callbacks", "xruns", "bad_events",
            "dropped_events", "audio_restarts")
    return {k: status.get(k) for k in keys}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def test_junk_midi_leaves_the_instrument_running_quiet_and_playable(jack_server):
    inst = LiveInstrument(jack_server.env, "presets/poly16.toml", "--mapping", "none")
    keys = None
    try:
        inst.wait_ports()
        first = wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, timeout_s=60)
        assert first.get("callbacks", 0) > 0, inst.output()
        keys = JackMidiOut()
        assert wait_connected(jack_server.env, "test-keys:out", "instrument"), inst.output()
        events, pairs = _stream()
        assert pairs > 300 and len(events) >= N_EVENTS
        for start in range(0, len(events), CHUNK):
            for message in events[start:start + CHUNK]:
                keys.send(*message)
            time.sleep(PAUSE_S)
        keys.send(0xF0, 0x7D, 0x01, 0xF7)  # a complete SysEx ends a held-back one (docstring)

        # Every pair has had its note-off: once the host has taken in the whole stream (its
        # count stops moving), the voices run out of release and are freed.
        settled = _settle(inst.osc_port)
        assert settled.get("active_voices") == 0, (_brief(settled), inst.output()[-3000:])
        assert settled["midi_messages"] > 0 and settled["midi_junk"] > 0, settled

        # Still playable: a note sounds, and after its note-off no voice is left.
        keys.send(0x90, 69, 100)
        on = wait_status(inst.osc_port, lambda d: d["active_voices"] > 0, timeout_s=15)
        assert on.get("active_voices", 0) > 0, (_brief(on), inst.output()[-3000:])
        keys.send(0x80, 69, 0)
        off = wait_status(inst.osc_port, lambda d: d["active_voices"] == 0, timeout_s=15)
        assert off.get("active_voices") == 0, (_brief(off), inst.output()[-3000:])

        assert inst.proc.poll() is None, inst.output()
        assert _alive(off["audio_pid"]) and off.get("audio_restarts", 0) == 0, (off, inst.output())
        print(f"\n{len(events)} events ({pairs} note pairs): host counted "
              f"{off['midi_messages']} MIDI messages, {off['midi_junk']} junk; "
              f"bad engine events {off.get('bad_events')}, dropped {off.get('dropped_events')}")
    finally:
        if keys is not None:
            keys.close()
        code = inst.stop()
    log = inst.output()
    assert code == 0, log
    assert "Traceback" not in log, log
    lines = log.splitlines()
    print(f"log: {len(lines)} lines, {len(log)} characters")
    assert len(lines) < 60 and len(log) < 8000, f"{len(lines)} lines:\n{log[:4000]}"


# ---- the byte-stream reading behind it (no JACK needed) -------------------------------------

class _Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_a_sysex_with_the_events_glued_to_it_gives_back_what_ends_sound():
    """What rtmidi's JACK input hands over after a SysEx without its end byte: the events that
    followed, glued on, up to the first one ending in F7. Their boundaries are lost, so only
    what ends sound is applied: here a junk program change (C8 05, from a data byte above 127),
    a note-on and a bend are not; the note-off, the velocity-0 note-on, pedal up and CC123 are."""
    from instrument.control.midi_messages import dispatch_midi

    host = _Recorder()
    glued = [0xF0, 1, 2, 3, 0x90, 60, 100, 0xF8, 62, 0x95, 0xC8, 5, 0xE0, 0, 64,
             0x80, 60, 0, 0xB0, 1, 0x91, 61, 0, 0xB2, 64, 0, 0xB3, 123, 0, 0xF7]
    assert dispatch_midi(glued, host, 1.0) is False  # junk, whatever it carried
    assert host.calls == [("note_off", 60, 0, 1.0), ("note_off", 61, 1, 1.0),
                          ("control_change", 2, 64, 0, 1.0), ("control_change", 3, 123, 0, 1.0)]


def test_split_stream_follows_the_midi_1_rules():
    from instrument.control.midi_messages import split_stream

    assert split_stream([0xF0, 1, 2, 0xF7]) == ([], 0)
    assert split_stream([0xF0, 1, 0xFE, 2, 0xF7]) == ([[0xFE]], 0)  # real-time inside SysEx
    assert split_stream([0xF0, 1, 0x90, 60, 1]) == ([[0x90, 60, 1]], 1)  # status ends SysEx
    # cut SysEx, then no running status (6, 7 are loose), then a stray F7
    assert split_stream([0xF0, 0xC0, 5, 6, 7, 0xF7]) == ([[0xC0, 5]], 3)
    assert split_stream([0xF0, 0xF4, 0xF6, 0xF2, 1, 2, 0xF1]) == ([[0xF6], [0xF2, 1, 2]], 3)
    assert split_stream([0xF0, 1]) == ([], 1)  # still open at the end


def test_dispatch_takes_any_junk_without_raising():
    from instrument.control.midi_messages import dispatch_midi

    rng = random.Random(SEED)
    host = _Recorder()
    for _ in range(3000):
        junk = [rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 5, 40]))]
        if rng.random() < 0.3:
            junk = [0xF0, *junk]
        assert dispatch_midi(junk, host, 0.0) in (True, False)
        assert dispatch_midi(bytes(junk), host, 0.0) in (True, False)
