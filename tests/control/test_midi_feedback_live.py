"""MIDI feedback and takeover ghosts through the real path: ``instrument run`` on the test JACK
server with a mapping that has ``feedback = true``; a test "controller" of two python-rtmidi JACK
ports (its knobs: an output the instrument opens as an input; its LED rings: an input the
instrument pairs with it and sends to), a listener on ``instrument-feedback:out``, and OSC
clients as UDP sockets on 127.0.0.1."""

import socket
import time

import pytest

from instrument.control.osc_datagram import decode_datagram
from live import LiveInstrument, osc_dgram, wait_connected, wait_status

pytestmark = pytest.mark.integration

CUTOFF = "/param/filt/cutoff_hz"
MAPPING = """format = 1
name = "Feedback test"
feedback = true

[[cc]]
cc = 20
target = "filt.cutoff_hz"   # full range, linear in its normalized value: CC = norm * 127
"""


class MidiListener:
    """A python-rtmidi JACK MIDI input; ``source``: a port to connect to it (else virtual)."""

    def __init__(self, client: str, source: str | None = None):
        import rtmidi

        self.port = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=client)
        if source is None:
            self.port.open_virtual_port("in")
        else:
            names = self.port.get_ports()
            self.port.open_port(names.index(source), "in")

    def messages(self, seconds: float) -> list[list[int]]:
        """What arrives in ``seconds``; ``self.arrived``: when each did (monotonic, polled
        every 2 ms)."""
        got, self.arrived = [], []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            item = self.port.get_message()
            if item is None:
                time.sleep(0.002)
                continue
            got.append(item[0])
            self.arrived.append(time.monotonic())
        return got

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()


class OscClient:
    def __init__(self, osc_port: int):
        self.target = ("127.0.0.1", osc_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)

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

    def close(self):
        self.sock.close()


def test_a_x_touch_mini_gets_its_encoder_rings_set_from_its_profile(jack_server):
    """The default mapping (no --mapping): a port named like a Behringer X-Touch Mini gets the
    shipped profile, which has feedback on its eight encoders (CC 1-8, the preset's macros)
    and none on its fader (CC 9): on connect, its rings get the eight macro positions."""
    import rtmidi

    from instrument.presets import compile_file
    from live import REPO

    inst = LiveInstrument(jack_server.env, "presets/poly16.toml")  # (before the module's)
    knobs = rings = None
    try:
        inst.wait_ports()
        knobs = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="X-TOUCH MINI")
        knobs.open_virtual_port("out")
        rings = MidiListener("X-TOUCH MINI")  # "X-TOUCH MINI-01:in"
        assert wait_connected(jack_server.env, "X-TOUCH MINI-01:in", "instrument-feedback"), \
            inst.output()
        got = {m[1]: m[2] for m in rings.messages(3.0) if m[0] == 0xB0}
        plan = compile_file(REPO / "presets" / "poly16.toml", 48000, 64)
        expected = {i + 1: round(m.initial_norm * 127) for i, m in enumerate(plan.macros[:8])}
        if got != expected:  # JACK MIDI lost one? A preset load sends them all again.
            osc = OscClient(inst.osc_port)
            osc.send("/preset/load", "poly16")
            osc.close()
            got.update({m[1]: m[2] for m in rings.messages(3.0) if m[0] == 0xB0})
        assert got == expected, (got, inst.output())
        assert "mapping behringer-x-touch-mini.toml (profile)" in inst.output()
    finally:
        if rings is not None:
            rings.close()
        if knobs is not None:
            knobs.close_port()
            knobs.delete()
        assert inst.stop() == 0, inst.output()


@pytest.fixture(scope="module")
def inst(jack_server, tmp_path_factory):
    mapping = tmp_path_factory.mktemp("fb") / "feedback.toml"
    mapping.write_text(MAPPING)
    live = LiveInstrument(jack_server.env, "presets/poly16.toml", "--mapping", str(mapping),
                          "--midi", "fbctl")  # not other tests' controllers
    try:
        live.wait_ports()
        wait_status(live.osc_port, lambda d: d.get("callbacks", 0) > 0, 60)
        yield live
    finally:
        assert live.stop() == 0, live.output()


def _cc20(messages):
    return [m[2] for m in messages if m[:2] == [0xB0, 20]]


def _sweep(knobs, values, gap_s=0.01):
    for value in values:
        knobs.send_message([0xB0, 20, value])
        time.sleep(gap_s)


RINGS = "fbctl-01:in"  # the test controller's input (JACK renames the 2nd client "fbctl")


def _feedback_sent(inst) -> int:
    """The messages the instrument says it sent to the test controller's input (its status)."""
    status = wait_status(inst.osc_port, lambda d: d.get("midi_feedback") is not None, 5)
    return (status.get("midi_feedback") or {}).get("sent", {}).get(RINGS, 0)


def _tries(step, inst, jack_server, n=5):
    """``step(i)`` returns (what arrived, what should have); tried again (each try with other
    values) when nothing arrived although the instrument sent it: on this loaded machine JACK
    MIDI loses a message now and then. Returns how many tries failed that way."""
    for i in range(n):
        sent_before = _feedback_sent(inst)
        got, expected = step(i)
        if got == expected:
            return i
        assert got == [], (got, expected, inst.output())  # something wrong arrived: no retry
        time.sleep(1.2)  # the status file is written once a second
        assert _feedback_sent(inst) > sent_before, \
            f"the instrument sent no feedback for {expected}:\n{inst.output()}"
    log = jack_server.log_path.read_text(errors="replace")[-2000:]
    raise AssertionError(f"sent, but nothing arrived in {n} tries:\n{inst.output()}\n"
                         f"jackd log:\n{log}")


def test_feedback_cc_arrives_on_an_output_port_and_not_while_the_knob_moves(inst, jack_server):
    import rtmidi

    env = jack_server.env
    listener = MidiListener("fblisten", "instrument-feedback:out")
    knobs = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="fbctl")
    knobs.open_virtual_port("out")  # fbctl:out, the controller's knobs
    rings = MidiListener("fbctl")  # fbctl-01:in, its LED rings (JACK renames the 2nd client)
    osc = OscClient(inst.osc_port)
    lost = 0
    try:
        assert wait_connected(env, "fbctl:out", "instrument"), inst.output()
        assert wait_connected(env, RINGS, "instrument-feedback"), inst.output()
        assert f"MIDI feedback: fbctl:out -> {RINGS}" in inst.output()
        # On connect: the current value, at the knob position it is at.
        initial = _cc20(rings.messages(3.0))
        assert len(initial) == 1, inst.output()

        # OSC moves the parameter: both outputs show it, at the knob position it means.
        def osc_move(i):
            listener.messages(0.0)
            sent = time.monotonic()
            osc.send(CUTOFF, (32 + i) / 127)
            got = _cc20(rings.messages(1.0))
            if rings.arrived:
                latency_ms.append((rings.arrived[0] - sent) * 1000)
            return got, [32 + i]
        latency_ms = []
        lost += _tries(osc_move, inst, jack_server)
        assert _cc20(listener.messages(0.1))

        # The knob sweeps up (picks the value up near 32, then follows): nothing goes back to
        # the controller being moved, during the move or after (the value is where the knob
        # is); the other output follows, rate-limited.
        listener.messages(0.05)
        t0 = time.monotonic()
        _sweep(knobs, list(range(0, 128, 4)) + [127])  # 33 messages, ~10 ms apart
        during = rings.messages(HOLD_WAIT_S)
        assert _cc20(during) == [], during
        seen = _cc20(listener.messages(0.2))
        move_s = time.monotonic() - t0
        assert seen and len(seen) < 33, seen
        print(f"knob sweep of 33 messages in {move_s:.2f} s: {len(seen)} updates on the other "
              f"output (last {seen[-1]}), 0 to the moving controller")

        # A pickup knob moved far from the value (OSC set it) does not take over: after the
        # move the controller is sent the value once, where its ring must go back to.
        def pickup_move(i):
            got, expected = osc_move(i)
            if got != expected:
                return got, expected
            _sweep(knobs, range(110 - i, 128 - i, 2))
            return _cc20(rings.messages(1.0)), expected
        lost += _tries(pickup_move, inst, jack_server)

        # A preset load sends every value again, also one the controller already shows.
        osc.send(CUTOFF, initial[0] / 127)
        assert _cc20(rings.messages(1.0)) in ([], initial)

        def preset_load(i):
            osc.send("/preset/load", "poly16")
            return _cc20(rings.messages(2.0)), initial
        lost += _tries(preset_load, inst, jack_server)
        print(f"{lost} tries with nothing arrived (JACK MIDI loss); OSC move -> feedback CC "
              f"on the controller's port: {', '.join(f'{x:.1f}' for x in latency_ms)} ms")
    finally:
        osc.close()
        rings.close()
        listener.close()
        knobs.close_port()
        knobs.delete()


HOLD_WAIT_S = 0.8  # longer than the hold (0.3 s) after the last knob message


def test_osc_clients_see_a_pickup_knobs_ghost_until_it_takes_over(inst):
    from live import JackMidiOut

    a = OscClient(inst.osc_port)
    keys = JackMidiOut()  # patched to instrument:in (the host's mapping: CC 20, pickup)
    try:
        a.send("/hello")
        a.receive(0.5)
        a.send(CUTOFF, 0.8)
        a.receive(0.3)
        keys.send(0xB0, 20, 10)  # far below 0.8: no takeover, a ghost at 10/127
        time.sleep(0.01)
        keys.send(0xB0, 20, 12)
        got = a.receive(0.6)
        ghost = [args[0] for address, args in got if address == CUTOFF + "/ghost"]
        visible = [args[0] for address, args in got if address == CUTOFF + "/ghost/visible"]
        assert ghost and abs(ghost[-1] - 12 / 127) < 1e-6, got
        assert visible == [1], got
        for value in range(20, 128, 8):  # crosses 0.8: takes over, the ghost clears
            keys.send(0xB0, 20, value)
            time.sleep(0.01)
        got = a.receive(0.6)
        visible = [args[0] for address, args in got if address == CUTOFF + "/ghost/visible"]
        ghost = [args[0] for address, args in got if address == CUTOFF + "/ghost"]
        value = [args[0] for address, args in got if address == CUTOFF]
        assert visible == [0], got
        # the ghost, last, is the value at the moment the knob took over
        assert ghost and any(abs(ghost[-1] - v) < 1e-6 for v in value), got
    finally:
        keys.close()
        a.close()

