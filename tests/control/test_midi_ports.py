"""MIDI input ports in depth: notes held from an unplugged port are released (and a port that
comes back under its name is opened again), no double delivery from a sender patched to
instrument:in, bank select + program change, controller profiles chosen by port name.

Integration tests run a real ``instrument run`` on the test JACK server; keyboards are
python-rtmidi JACK MIDI ports (a virtual output is what a USB keyboard looks like to the scan).
"""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest

from instrument.cli.check import check_file
from instrument.control.midi_messages import MidiPort, dispatch_midi
from instrument.control.profiles import (
    ProfilesError, load_profiles, match_profile, profiles_beside,
)
from live import REPO, JackMidiOut, LiveInstrument, free_udp_port, osc_dgram, status_json, \
    stop_checked, wait_connected, wait_status

PROFILES = REPO / "mappings" / "profiles.toml"


# ---- units ----------------------------------------------------------------------------------

class _Host:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


@pytest.mark.parametrize("port, expected", [
    ("nanoKONTROL2:nanoKONTROL2 _CTRL 20:0", "korg-nanokontrol2.toml"),  # ALSA
    ("a2j:nanoKONTROL2 [20] (capture): nanoKONTROL2 _CTRL", "korg-nanokontrol2.toml"),  # a2j
    ("Minilab3:Minilab3 Minilab3 MIDI 24:0", "arturia-minilab3.toml"),
    ("Launch Control XL:Launch Control XL MIDI 1 28:0", "novation-launchcontrol-xl.toml"),
    ("MPK mini 3:MPK mini 3 MIDI 1 32:0", "akai-mpk-mini3.toml"),
    ("x-touch mini:X-TOUCH MINI MIDI 1 36:0", "behringer-x-touch-mini.toml"),  # any case
    ("USB Keystation 61es:USB Keystation 61es MIDI 1 40:0", None),
])
def test_profiles_match_port_names(port, expected):
    found = match_profile(load_profiles(PROFILES), port)
    assert (found.file.name if found else None) == expected


def test_profiles_apply_only_beside_the_default_mapping(tmp_path):
    loaded = profiles_beside(REPO / "mappings" / "generic.toml")
    assert [p.file.name for p, _ in loaded][:1] == ["korg-nanokontrol2.toml"]
    assert all(m.controls for _, m in loaded)
    mine = tmp_path / "mine.toml"
    mine.write_text((REPO / "mappings" / "generic.toml").read_text())
    assert profiles_beside(mine) == []
    assert profiles_beside(REPO / "mappings" / "korg-nanokontrol2.toml") == []


def test_shipped_mappings_and_profiles_pass_check():
    for path in sorted((REPO / "mappings").glob("*.toml")):
        assert check_file(path) == "", path


@pytest.mark.parametrize("text, fragment", [
    ('[[profile]]\nfile = "nope.toml"\nports = ["x"]\n', "nope.toml does not exist"),
    ('[[profile]]\nfile = "generic.toml"\nports = []\n', "profile[1].ports"),
    ('[[profile]]\nfile = "generic.toml"\nports = ["x"]\nport = 1\n', "unknown key 'port'"),
    ('[[profile]]\nfile = "../generic.toml"\nports = ["x"]\n', "profile[1].file"),
    ('[[profile]]\nfile = "bad.toml"\nports = ["x"]\n', "bad.toml"),  # a broken mapping
])
def test_profiles_check_names_the_problem(tmp_path, text, fragment):
    shutil.copy(REPO / "mappings" / "generic.toml", tmp_path / "generic.toml")
    (tmp_path / "bad.toml").write_text('format = 1\nname = "b"\n[[cc]]\ncc = 500\ntarget = "x.y"\n')
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    problem = check_file(path)
    assert fragment in problem, problem
    if "exist" not in fragment and "bad" not in fragment:
        with pytest.raises(ProfilesError):
            load_profiles(path)


def test_a_port_releases_exactly_its_held_keys_and_its_pedal():
    host = _Host()
    port = MidiPort(host, "keys")
    for data in ([0x90, 60, 100], [0x90, 64, 100], [0x91, 67, 90], [0xB0, 64, 127],
                 [0x80, 64, 0], [0x90, 72, 0]):
        assert dispatch_midi(data, port, 0.0)
    host.calls.clear()
    assert port.release() == 2
    assert host.calls == [("note_off", 60, 0), ("note_off", 67, 1),
                          ("control_change", 0, 64, 0, None, None)]
    host.calls.clear()
    assert port.release() == 0 and host.calls == []


def test_bank_select_picks_the_program_of_that_bank_per_channel():
    host = _Host()
    port = MidiPort(host, "keys")
    for data in ([0xC0, 5], [0xB0, 0, 0], [0xB0, 32, 1], [0xC0, 3], [0xC1, 3],
                 [0xB0, 0, 1], [0xB0, 32, 0], [0xC0, 0]):
        dispatch_midi(data, port, 0.0)
    programs = [c[1] for c in host.calls if c[0] == "program_change"]
    assert programs == [5, 131, 3, 128 * 128]


def test_the_status_lists_the_last_16_messages_heard_without_the_clock():
    """``midi_recent``: index, port and bytes (hex, 16 at most) of the last 16 messages; the
    MIDI clock (24 a beat) is counted but not listed, or it would push everything else out."""
    from collections import deque

    from instrument.runtime.host import MIDI_RECENT, Host, midi_recent_text

    fake = SimpleNamespace(midi_messages=0, midi_junk=0, midi_feedback=None, midi_ports={},
                           midi_recent=deque(maxlen=MIDI_RECENT))
    port = MidiPort(_Host(), "keys")
    fake._midi_port = lambda name: port
    for note in range(20):
        Host.on_midi(fake, [0x90, 40 + note, 100], 0.0, "keys:out")
        Host.on_midi(fake, [0xF8], 0.0, "keys:out")
    Host.on_midi(fake, [0xF0] + [0x01] * 40 + [0xF7], 0.0, "keys:out")
    assert fake.midi_messages == 41
    recent = midi_recent_text(fake.midi_recent)
    assert len(recent) == 16
    assert recent[-2] == [39, "keys:out", "90 3b 64"]  # the last note: the 39th message
    assert recent[-1] == [41, "keys:out", "f0" + " 01" * 15]


# ---- integration ----------------------------------------------------------------------------

def _virtual_keys(client: str, port: str = "out"):
    import rtmidi

    keys = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=client)
    keys.open_virtual_port(port)
    return keys


def _voices(inst, ok, timeout_s=8.0):
    return wait_status(inst.osc_port, lambda d: ok(d.get("active_voices", -1)), timeout_s)


@pytest.fixture
def inst(jack_server, request):
    extra = getattr(request, "param", ())
    live = LiveInstrument(jack_server.env, "presets/poly16.toml", *extra)
    try:
        live.wait_ports()
        wait_status(live.osc_port, lambda d: d.get("callbacks", 0) > 0, 60)
        yield live
    finally:
        assert live.stop() == 0, live.output()


@pytest.mark.integration
def test_unplugged_port_releases_its_chord_and_comes_back_under_its_name(inst, jack_server):
    other = JackMidiOut()  # patched to instrument:in: a note that must keep sounding
    keys = _virtual_keys("unplug-keys")
    try:
        assert wait_connected(jack_server.env, "unplug-keys:out", "instrument"), inst.output()
        time.sleep(0.5)  # once, a chord sent at once after the connection went unheard
        other.send(0x90, 48, 100)
        for note in (60, 64, 67):
            keys.send_message([0x90, note, 100])
            time.sleep(0.01)  # a burst of 5 lost one message once in a full-suite run
        keys.send_message([0xB0, 64, 127])  # and its sustain pedal down
        data = _voices(inst, lambda v: v == 4)
        assert data.get("active_voices") == 4, (data.get("midi_messages"), inst.output())
        keys.close_port()
        keys.delete()  # unplugged mid-chord
        t0 = time.monotonic()
        data = _voices(inst, lambda v: v == 1, 10.0)
        assert data.get("active_voices") == 1, inst.output()  # the other port's note sounds
        print(f"chord released {time.monotonic() - t0:.2f} s after the port vanished")
        assert "MIDI input unplug-keys:out gone: releasing 3 held notes, sustain pedal up" \
            in inst.output()

        keys = _virtual_keys("unplug-keys")  # plugged in again: same name
        assert wait_connected(jack_server.env, "unplug-keys:out", "instrument"), inst.output()
        keys.send_message([0x90, 72, 100])
        assert _voices(inst, lambda v: v == 2).get("active_voices") == 2, inst.output()
        keys.send_message([0x80, 72, 0])
        other.send(0x80, 48, 0)
        assert _voices(inst, lambda v: v == 0, 10.0).get("active_voices") == 0
    finally:
        other.close()
        keys.delete()


@pytest.mark.integration
def test_a_sender_patched_to_instrument_in_is_not_opened_twice(inst):
    sender = JackMidiOut()  # connected to instrument:in before the scans see it
    try:
        time.sleep(2.5)  # at least two scans of the port list
        sender.send_confirmed(inst.osc_port, (0xB0, 20, 0))  # (sent again if JACK lost it)
        base = status_json(inst.osc_port)["midi_messages"]
        n = 16
        sender.send_confirmed(inst.osc_port, *[(0xB0, 20, i) for i in range(1, n + 1)],
                              spacing_s=0.005)
        time.sleep(1.5)
        data = status_json(inst.osc_port)
        assert data["midi_messages"] == base + n, inst.output()  # heard once each, not twice
        heard = [hexed for _, port, hexed in data["midi_recent"]]
        assert heard == [f"b0 14 {i:02x}" for i in range(1, n + 1)], heard
        assert {port for _, port, _ in data["midi_recent"]} == {"instrument:in"}
        assert "MIDI input: test-keys:out" not in inst.output()
    finally:
        sender.close()


@pytest.mark.integration
def test_bank_select_and_program_change_load_that_preset(jack_server, tmp_path):
    folder = tmp_path / "presets"
    folder.mkdir()
    for i in range(130):  # bank 1 program 1 = the 130th preset of the sorted folder
        source = "pad.toml" if i == 129 else "init.toml"
        (folder / f"p{i:03d}.toml").write_text((REPO / "presets" / source).read_text())
    live = LiveInstrument(jack_server.env, "presets/poly16.toml", "--preset-dir", str(folder))
    try:
        live.wait_ports()
        keys = JackMidiOut()
        try:
            for data in ([0xB0, 0, 0], [0xB0, 32, 1], [0xC0, 1]):
                keys.send(*data)
            data = wait_status(live.osc_port,
                               lambda d: d.get("preset", "").endswith("p129.toml"), 15)
            assert data.get("preset", "").endswith("p129.toml"), live.output()
        finally:
            keys.close()
    finally:
        assert live.stop() == 0, live.output()


def _query(osc_port: int, address: str) -> float:
    from instrument.control.osc_datagram import decode_datagram

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            s.sendto(osc_dgram("/q", address), ("127.0.0.1", osc_port))
            try:
                while True:
                    packet, _ = s.recvfrom(65536)
                    for addr, args in decode_datagram(packet):
                        if addr == address and args:
                            return float(args[0])
            except socket.timeout:
                continue
    raise AssertionError(f"no answer to /q {address}")


@pytest.mark.integration
def test_a_nanokontrol2_port_gets_its_profile_and_its_slider_moves_the_macro(inst, jack_server):
    cutoff = "/param/filt/cutoff_hz"  # macro 1 of poly16 (cutoff) moves it
    keys = _virtual_keys("nanoKONTROL2", "nanoKONTROL2 _CTRL")
    try:
        name = "nanoKONTROL2:nanoKONTROL2 _CTRL"
        assert wait_connected(jack_server.env, name, "instrument"), inst.output()
        assert f"MIDI input {name}: mapping korg-nanokontrol2.toml (profile)" in inst.output()
        before = _query(inst.osc_port, cutoff)
        for value in list(range(0, 128, 4)) + [127]:  # slider 1 (CC 0) up: picks up, follows
            keys.send_message([0xB0, 0, value])
            time.sleep(0.005)
        time.sleep(0.3)
        up = _query(inst.osc_port, cutoff)
        for value in range(127, -1, -4):
            keys.send_message([0xB0, 0, value])
            time.sleep(0.005)
        keys.send_message([0xB0, 0, 0])
        time.sleep(0.3)
        down = _query(inst.osc_port, cutoff)
        assert down < before < up, (down, before, up, inst.output())
        # CC 20 means macro 1 in generic.toml, but nothing on a nanoKONTROL2 port
        keys.send_message([0xB0, 20, 127])
        time.sleep(0.3)
        assert _query(inst.osc_port, cutoff) == down
    finally:
        keys.delete()


def test_units_do_not_need_a_host_namespace():  # MidiPort only needs the calls it forwards
    port = MidiPort(SimpleNamespace(note_on=lambda *a: None), "x")
    port.note_on(60, 0.5, 0, None)
    assert port.held() == ([(0, 60)], [])


@pytest.mark.integration
def test_jack_midi_opens_when_the_jack_server_comes_after_the_instrument(tmp_path):
    """``--midi-api jack`` with no JACK server yet: one warning, the instrument plays (null
    output); once a server runs, MIDI opens by itself (every 3 s) and notes arrive."""
    from jack_server import jack_env, start_jack_server

    name = f"instrument-late-{os.getpid()}"
    port = free_udp_port()
    env = jack_env(name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", str(REPO / "presets/init.toml"),
         "--null", "--midi-api", "jack", "--osc-port", str(port), "--osc-bind", "127.0.0.1",
         "--no-zeroconf", "--oscquery-port", "0", "--state-dir", "none"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        assert wait_status(port, lambda d: d.get("callbacks", 0) > 0, 60)
        server = start_jack_server(name)
        end = time.monotonic() + 20
        while time.monotonic() < end and "instrument:in" not in server.ports():
            time.sleep(0.2)
        assert "instrument:in" in server.ports()
        sender = textwrap.dedent("""
            import time, rtmidi
            out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="late-keys")
            out.open_port(out.get_ports().index("instrument:in"), "out")
            time.sleep(1.0)
            for _ in range(3):
                out.send_message([0x90, 60, 100]); time.sleep(0.05)
                out.send_message([0x80, 60, 0]); time.sleep(0.05)
            time.sleep(0.5)
        """)
        subprocess.run([sys.executable, "-c", sender], env=env, timeout=30, check=True)
        data = wait_status(port, lambda d: d.get("midi_messages", 0) >= 2, 10)
        assert data.get("midi_messages", 0) >= 2
    finally:
        out = stop_checked(proc)
        if server is not None:
            server.stop()
    assert out.count("no MIDI") == 1, out
    assert "JACK MIDI opened on a later try" in out
