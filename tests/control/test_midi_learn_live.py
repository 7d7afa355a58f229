"""MIDI learn through a real ``instrument run``: armed over OSC UDP (127.0.0.1) or by the
controller's learn button, the controller is a python-rtmidi JACK MIDI port, the stored
``learned.toml`` is checked, and after a restart each learned control moves its parameter
(read back with OSC ``/q``)."""

from __future__ import annotations

import time

import pytest

from instrument.control.learned_store import LEARNED_FILE
from instrument.control.mapping import load_mapping

pytestmark = pytest.mark.integration

GAP_S = 0.012  # between MIDI messages: a burst can lose one on this loaded VM


def cc(ch, number, value):
    return (0xB0 | ch, number, value)


def hires(ch, msb, v):
    return [cc(ch, msb, v >> 7), cc(ch, msb + 32, v & 127)]


def nrpn(ch, number, v):
    return [cc(ch, 99, number >> 7), cc(ch, 98, number & 127), cc(ch, 6, v >> 7),
            cc(ch, 38, v & 127)]


# (target address, learn gesture, (source, channel, number, mode), status text)
KINDS = [
    ("param/filt/resonance", [cc(0, 21, v) for v in range(40, 50)],
     ("cc", 0, 21, "absolute"), "learned CC 21 channel 1 (7-bit) -> filt.resonance"),
    ("param/fenv/sustain", [m for v in (4000, 4300, 4600, 4900) for m in hires(1, 5, v)],
     ("cc", 1, 5, "14bit"), "learned CC 5/37 channel 2 (14-bit) -> fenv.sustain"),
    ("param/aenv/sustain", [m for v in (9000, 9200, 9400) for m in nrpn(2, 148, v)],
     ("nrpn", 2, 148, "absolute"), "learned NRPN 1/20 channel 3 (14-bit NRPN) -> aenv.sustain"),
    ("param/osc1/level", [cc(0, 30, v) for v in (1, 1, 2, 1, 127, 127, 126, 127)],
     ("cc", 0, 30, "relative_twos"),
     "learned CC 30 channel 1 (relative, two's complement) -> osc1.level"),
    ("param/osc2/level", [cc(0, 31, v) for v in (1, 1, 2, 1, 65, 65, 66, 65)],
     ("cc", 0, 31, "relative_signed"),
     "learned CC 31 channel 1 (relative, signed bit) -> osc2.level"),
    ("param/amp/gain", [cc(3, 33, v) for v in (65, 65, 66, 65, 63, 63, 62, 63)],
     ("cc", 3, 33, "relative_offset"),
     "learned CC 33 channel 4 (relative, binary offset) -> amp.gain"),
]


def send_all(keys, messages):
    for m in messages:
        keys.send(*m)
        time.sleep(GAP_S)


def wait_text(client, want, timeout_s=5.0, address="/learn/status") -> list[str]:
    """Every text on ``address`` until one contains ``want`` (AssertionError after timeout)."""
    seen = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for a, args in client.receive(0.1):
            if a == address and args:
                seen.append(str(args[0]))
                if want in seen[-1]:
                    return seen
    raise AssertionError(f"no {address} with {want!r}; got {seen}")


def query(client, address, timeout_s=2.0) -> float:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        client.send("/q", address)
        for a, args in client.receive(0.2):
            if a == address and args:
                return float(args[0])
    raise AssertionError(f"no answer to /q {address}")


def poll_value(client, address, want, timeout_s=4.0, abs_tol=2e-6) -> float:
    end = time.monotonic() + timeout_s
    value = float("nan")
    while time.monotonic() < end:
        value = query(client, address)
        if value == pytest.approx(want, abs=abs_tol):
            break
        time.sleep(0.1)
    return value


def move(client, keys, address, want, gesture):
    """``gesture(current value)``'s messages until ``address`` reads ``want`` (3 tries)."""
    value = float("nan")
    for _ in range(3):
        send_all(keys, gesture(query(client, address)))
        value = poll_value(client, address, want)
        if value == pytest.approx(want, abs=2e-6):
            return
    assert value == pytest.approx(want, abs=2e-6), address


def learn(client, keys, address, gesture, status):
    """Arm over OSC, make the gesture; once more if a lost MIDI message spoiled it."""
    for attempt in range(2):
        client.send("/learn/" + address)
        wait_text(client, "move a control")
        send_all(keys, gesture)
        try:
            return wait_text(client, "learned ", 3.0)
        except AssertionError:
            if attempt:
                raise
            client.send("/learn/cancel")
            time.sleep(0.3)


def start(jack_server, *extra):
    from live import LiveInstrument, wait_status
    from test_osc_feedback import Client

    inst = LiveInstrument(jack_server.env, "presets/poly16.toml", *extra)
    inst.wait_ports()
    wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, 60)
    client = Client(inst.osc_port)
    client.send("/hello")
    client.receive(0.5)  # the first-contact dump
    return inst, client


def test_learn_each_kind_then_it_works_after_a_restart(jack_server, tmp_path):
    from live import JackMidiOut

    state = tmp_path / "state"
    extra = ("--mapping", "none", "--state-dir", str(state))
    inst, client = start(jack_server, *extra)
    keys = None
    try:
        keys = JackMidiOut()
        for address, gesture, _, status in KINDS:
            seen = learn(client, keys, address, gesture, status)
            assert seen[-1] == status
    finally:
        if keys is not None:
            keys.close()
        client.close()
        assert inst.stop() == 0, inst.output()
    log = inst.output()
    assert "MIDI learn: learned CC 21 channel 1 (7-bit) -> filt.resonance" in log
    assert "Traceback" not in log

    path = state / LEARNED_FILE
    controls = load_mapping(path).controls
    got = {(c.source, c.channel, c.cc if c.source == "cc" else c.pn, c.mode): c.target
           for c in controls}
    assert got == {kind: address.split("/", 1)[1].replace("/", ".")
                   for address, _, kind, _ in KINDS}
    from instrument.cli.main import main
    assert main(["check", str(path)]) == 0

    # restart: each learned control moves its parameter
    inst, client = start(jack_server, *extra)
    keys = None
    try:
        assert "MIDI learn: 6 learned controls from" in inst.output()
        keys = JackMidiOut()
        # Each move is tried up to 3 times: the async dummy JACK server loses about 0.3% of
        # MIDI events (a late client is skipped for a cycle; benchmarks/README.md).
        move(client, keys, "/param/filt/resonance", 100 / 127,  # 7-bit: pick up, then 100
             lambda now: [cc(0, 21, round(now * 127)), cc(0, 21, 100)])
        move(client, keys, "/param/fenv/sustain", 12000 / 16383,  # 14-bit: pick up, then 12000
             lambda now: hires(1, 5, round(now * 16383)) + hires(1, 5, 12000))
        move(client, keys, "/param/aenv/sustain", 3000 / 16383,  # NRPN: pick up, then 3000
             lambda now: nrpn(2, 148, round(now * 16383)) + nrpn(2, 148, 3000))
        # encoders: ticks 40 ms apart (no acceleration); two up, one down = one step of 128
        for address, ticks in (("/param/osc1/level", [cc(0, 30, v) for v in (1, 1, 127)]),
                               ("/param/osc2/level", [cc(0, 31, v) for v in (1, 1, 65)]),
                               ("/param/amp/gain", [cc(3, 33, v) for v in (65, 65, 63)])):
            moved = []
            for _ in range(3):
                start_value = query(client, address)
                for m in ticks:
                    keys.send(*m)
                    time.sleep(0.04)
                want = start_value + 1 / 128
                moved.append(poll_value(client, address, want) - start_value)
                if moved[-1] == pytest.approx(1 / 128, abs=2e-6):
                    break
            assert moved[-1] == pytest.approx(1 / 128, abs=2e-6), (address, moved)
    finally:
        if keys is not None:
            keys.close()
        client.close()
        assert inst.stop() == 0, inst.output()


def test_learn_button_next_unlearn_clear_and_timeout(jack_server, tmp_path):
    from live import JackMidiOut

    mapping = tmp_path / "box.toml"
    mapping.write_text('format = 1\n[[cc]]\ncc = 10\ntarget = "amp.gain"\n'
                       "[learn]\ncc = 102\n")
    state = tmp_path / "state"
    inst, client = start(jack_server, "--mapping", str(mapping), "--state-dir", str(state),
                         "--learn-timeout-s", "2")
    path = state / LEARNED_FILE
    keys = None
    try:
        keys = JackMidiOut()
        send_all(keys, [cc(0, 102, 127), cc(0, 102, 0)])  # the learn button
        wait_text(client, "learn next: macro#1 (Cutoff): move a control")
        send_all(keys, [cc(0, 40, v) for v in range(20, 30)])
        wait_text(client, "learned CC 40 channel 1 (7-bit) -> macro#1; next: macro#2 "
                          "(Resonance)")
        send_all(keys, [cc(0, 40, v) for v in range(30, 36)])  # knob 1 again: not learned
        send_all(keys, [cc(0, 41, v) for v in range(20, 30)])
        seen = wait_text(client, "-> macro#2")
        assert seen[-1] == "learned CC 41 channel 1 (7-bit) -> macro#2; next: " \
                           "macro#3 (Filter env)"
        assert not any("CC 40" in s and "macro#2" in s for s in seen)
        send_all(keys, [cc(0, 102, 127), cc(0, 102, 0)])
        wait_text(client, "learn off")
        assert [(c.cc, c.target) for c in load_mapping(path).controls] == [
            (40, "macro#1"), (41, "macro#2")]

        client.send("/unlearn/macro/1")
        wait_text(client, "unlearned macro#1 (1 control)")
        assert [c.target for c in load_mapping(path).controls] == ["macro#2"]

        client.send("/learn/clear")
        wait_text(client, "learn cleared: 1 learned control forgotten")
        assert not path.exists()

        client.send("/learn/param/filt/resonance")
        wait_text(client, "learn filt.resonance: move a control")
        wait_text(client, "learn timed out: nothing moved for 2 s, filt.resonance not learned",
                  6.0)
        assert not path.exists()
    finally:
        if keys is not None:
            keys.close()
        client.close()
        assert inst.stop() == 0, inst.output()
    log = inst.output()
    assert log.count("MIDI learn: learn timed out") == 1
    assert "Traceback" not in log
