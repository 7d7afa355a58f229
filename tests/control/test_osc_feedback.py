"""OSC feedback through the real path: ``instrument run`` (null output, or the test JACK
server for MIDI), clients as UDP sockets on 127.0.0.1 and ``oscdump``/``oscsend``."""

import shutil
import socket
import subprocess
import sys
import time

import pytest

from instrument.control.osc_datagram import decode_datagram
from live import (
    REPO, JackMidiOut, LiveInstrument, free_udp_port, osc_dgram, stop_checked, wait_status,
)

CUTOFF = "/param/filt/cutoff_hz"


class Client:
    """A surface: one UDP socket that sends from, and listens on, the same port."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]

    def send(self, address, *args):
        self.sock.sendto(osc_dgram(address, *args), self.target)

    def receive(self, seconds=0.6):
        got = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            got += decode_datagram(data)
        return got

    def values(self, address, seconds=0.6):
        return [args for a, args in self.receive(seconds) if a == address]

    def close(self):
        self.sock.close()


class Instance:
    def __init__(self, *extra):
        self.port = free_udp_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "instrument.cli.main", "run", "presets/poly16.toml", "--null",
             "--no-midi", "--osc-port", str(self.port), "--osc-bind", "127.0.0.1", *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_status(self.port, lambda d: d.get("callbacks", 0) > 0, 60)

    def stop(self):
        return stop_checked(self.proc)


@pytest.fixture(scope="module")
def instance():
    inst = Instance()
    yield inst
    inst.stop()


@pytest.fixture
def pair(instance):
    a, b = Client(instance.port), Client(instance.port)
    a.send("/hello")
    b.send("/hello")
    a.receive(0.5)  # the first-contact dumps
    b.receive(0.5)
    yield a, b
    a.close()
    b.close()


def test_first_contact_gets_a_full_dump_with_text_and_preset_name(instance):
    c = Client(instance.port)
    c.send("/hello")
    got = dict((a, args) for a, args in c.receive())
    c.close()
    assert got["/preset/name"] == ["Poly 16"]
    assert CUTOFF in got and 0.0 <= got[CUTOFF][0] <= 1.0
    assert got[CUTOFF + "/text"][0].endswith("Hz")
    assert "/macro/1" in got and "/macro/cutoff" in got
    assert "/status/voices" in got


def test_a_moves_a_parameter_b_sees_it_and_a_is_not_echoed(pair):
    a, b = pair
    a.send(CUTOFF, 0.8)
    seen_by_b = b.values(CUTOFF)
    assert seen_by_b and abs(seen_by_b[-1][0] - 0.8) < 1e-6
    assert a.values(CUTOFF, 0.3) == []


def test_a_fader_storm_reaches_others_rate_limited_latest_value_last(pair):
    a, b = pair
    for i in range(200):  # 200 messages in ~0.1 s
        a.send(CUTOFF, i / 400.0)
    seen = b.values(CUTOFF, 0.8)
    assert seen and abs(seen[-1][0] - 199 / 400.0) < 1e-6
    assert len(seen) < 30  # ~30 Hz per address, not one per message


def test_a_touched_address_is_held_until_released(pair):
    a, b = pair
    a.send(CUTOFF + "/touch", 1)
    b.send(CUTOFF, 0.25)
    assert a.values(CUTOFF, 0.8) == []  # A's finger is on it
    a.send(CUTOFF + "/touch", 0)
    seen = a.values(CUTOFF, 0.8)  # released: A follows (after the short hold)
    assert seen and abs(seen[-1][0] - 0.25) < 1e-6


def test_a_macro_moves_its_parameters_on_every_client(pair):
    a, b = pair
    a.send("/macro/cutoff", 1.0)
    got_a = dict((addr, args) for addr, args in a.receive())
    got_b = dict((addr, args) for addr, args in b.receive(0.1))
    assert CUTOFF in got_a  # the macro's target moved under A's cutoff fader too
    assert "/macro/cutoff" not in got_a  # ... but A's macro fader is not echoed
    assert got_b.get("/macro/cutoff") == [1.0] or got_b.get("/macro/1") == [1.0]


def test_a_preset_load_sends_every_client_a_dump(pair):
    a, b = pair
    a.send("/preset/load", "pad")
    got = dict((addr, args) for addr, args in b.receive(1.5))
    assert got.get("/preset/name") == ["Warm Pad"]
    assert len([k for k in got if k.startswith("/param/")]) > 20
    a.send("/preset/load", "poly16")
    a.receive(1.5)


def test_q_and_doc_answer_with_metadata(pair):
    a, _ = pair
    a.send("/q", CUTOFF)
    got = dict(a.receive())
    path, label, unit, lo, hi, default, curve, kind, choices, doc = got[CUTOFF + "/doc"]
    assert (path, unit, lo, hi, curve, kind) == ("filt.cutoff_hz", "Hz", 20.0, 20000.0, "log",
                                                 "continuous")
    assert CUTOFF in got and got[CUTOFF + "/text"][0].endswith("Hz")
    a.send("/doc")
    docs = [args for addr, args in a.receive() if addr == "/doc/param"]
    assert any(d[0] == CUTOFF for d in docs) and len(docs) > 10


def test_oscdump_registered_with_hello_receives_feedback(instance):
    if shutil.which("oscdump") is None:
        pytest.fail("oscdump missing (Debian package liblo-tools)")
    listen = free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(listen)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        subprocess.run(["oscsend", "127.0.0.1", str(instance.port), "/hello", "i", str(listen)],
                       check=True, timeout=5)
        time.sleep(0.5)
        sender = Client(instance.port)
        sender.send(CUTOFF, 0.5)
        time.sleep(0.6)
        sender.close()
    finally:
        dump.terminate()
        out, _ = dump.communicate(timeout=5)
    assert "/preset/name" in out
    assert any(f"{CUTOFF} f 0.5" in line for line in out.splitlines()), out[-2000:]


def test_a_silent_client_expires_and_a_static_target_does_not():
    static = Client(free_udp_port())  # only listens
    inst = Instance("--osc-lease-s", "1.5", "--osc-send", f"127.0.0.1:{static.port}")
    try:
        quiet, mover = Client(inst.port), Client(inst.port)
        quiet.send("/hello")
        quiet.receive(0.5)
        static.receive(0.1)
        time.sleep(2.5)  # longer than the lease
        mover.send(CUTOFF, 0.9)
        assert quiet.values(CUTOFF, 0.8) == []
        assert static.values(CUTOFF, 0.1)[-1][0] == pytest.approx(0.9, abs=1e-6)
        quiet.send("/sync")  # any message makes it known again, with a dump
        assert quiet.values(CUTOFF)[-1][0] == pytest.approx(0.9, abs=1e-6)
        for c in (quiet, mover, static):
            c.close()
    finally:
        out = inst.stop()
    assert "silent for" in out


@pytest.mark.integration
def test_a_midi_knob_reaches_every_client(jack_server):
    """CC74 (brightness in mappings/generic.toml) swept on a JACK MIDI port: both clients'
    cutoff-related faders follow."""
    inst = LiveInstrument(jack_server.env, "presets/poly16.toml")
    try:
        inst.wait_ports()
        wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, 30)
        a, b = Client(inst.osc_port), Client(inst.osc_port)
        a.send("/hello")
        b.send("/hello")
        a.receive(0.5)
        b.receive(0.5)
        keys = JackMidiOut()
        for value in range(0, 128, 2):
            keys.send(0xB0, 74, value)
            time.sleep(0.004)
        got_a, got_b = a.receive(1.0), b.receive(0.2)
        keys.close()
        moved = {addr for addr, _ in got_a if addr.startswith(("/param/", "/macro/"))}
        assert moved and moved == {addr for addr, _ in got_b
                                   if addr.startswith(("/param/", "/macro/"))}
        a.close()
        b.close()
    finally:
        assert inst.stop() == 0, inst.output()


def test_the_sender_gets_the_display_text_of_its_own_move(pair):
    """The fader value is not echoed, but the label beside it must show the new text."""
    a, _ = pair
    a.send(CUTOFF, 0.7)
    got = dict(a.receive())
    assert CUTOFF not in got
    assert got[CUTOFF + "/text"][0].endswith("Hz")
