"""MIDI feedback out: controllers with LED rings or motor faders show the parameters' real values.

For every MIDI input port whose mapping has ``feedback`` controls (see
``instrument.control.mapping``), the instrument opens the controller's own input (its output
port, paired by name: ``pair_output``) and sends each such control's target value there, as the
message the control itself sends: a 7-bit CC, a 14-bit MSB/LSB pair, or NRPN/RPN selection and
data entry, at the knob position the value is at (``CcRouter.positions``: through the control's
``from``/``to`` and curve). The host's own mapping, the one of the virtual input
``instrument:in``, has a virtual output for that: ``instrument-feedback:out`` (patch it to the
controller that is patched to ``instrument:in``).

When (``FeedbackSchedule``, per control and output):
- only when the value on the wire changes (a value the controller already shows, because it
  sent it or was sent it, is not sent again), whatever moved the parameter (OSC, another knob, a
  macro, a preset load);
- at most once per ``MIN_INTERVAL_S`` (30 updates a second), coalesced to the latest value;
- not while the control is being moved: until ``HOLD_S`` after its last incoming message (a
  motor fader must not fight the finger, an LED ring must not flicker), then once, if the
  parameter's value differs from where the knob left it (a pickup knob that did not take over;
  a knob position in the same zone of an integer or choice parameter counts as the value).
  Any NRPN/RPN message of a port (selection, data entry, increment) holds all its NRPN/RPN
  controls on that channel: which one it moves is not known until its data comes;
- for every feedback control on preset load, when the port is opened (plugged in), and, on
  JACK, when something connects to ``instrument-feedback:out``.

All of this runs on a host thread of its own (``TICK_S``), never in the audio process; it reads
the parameter table the host writes, like the OSC feedback.

Pairing a controller's input with its output (``pair_output``): the same name (ALSA: a USB
controller's port is readable and writable, "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0"), the
``(capture)`` name with ``(playback)`` (JACK through a2jmidid), or the only input port of the
same JACK client (a JACK client renamed ``name-01`` counts as ``name``). A controller whose
output cannot be paired gets no feedback of its own: patch ``instrument-feedback:out`` by hand.

Echo: a controller that sends back what it receives (MIDI thru) moves the knob's target to the
knob step nearest the value it has (at most half a step of the control's travel) and holds that
control's feedback for ``HOLD_S`` as if it were moved; it does not loop, because the value on
the wire does not change again. Do not patch ``instrument-feedback:out`` to ``instrument:in``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass

from instrument.control.mapping import (
    CC_DATA_LSB, CC_DATA_MSB, CC_NRPN_LSB, CC_NRPN_MSB, CC_RPN_LSB, CC_RPN_MSB, PN_CCS,
    CcControl,
)

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1 / 30  # at most 30 updates per control per second, latest value wins
HOLD_S = 0.3             # a control is "being moved" until this long after its last message
TICK_S = 0.01            # the sending thread's period
OPEN_SETTLE_S = 0.2      # a fresh connection can lose what is sent at once (seen on JACK)
HIRES_MAX = 16383
_KEEP = object()


@dataclass
class _ControlState:
    shown: int | None = None     # the wire value the controller shows (None: unknown)
    sent_t: float = -math.inf
    touched_t: float = -math.inf
    channel: int | None = None   # the channel its messages came on (for "any channel")


class FeedbackSchedule:
    """When to send each control's value to one output (pure logic: the caller gives the
    time). ``touched`` records an incoming message of a control, ``due`` says whether its
    current wire value should go out now (and records it as shown), ``forget`` makes every
    value go out again (preset load, a new connection)."""

    def __init__(self, min_interval_s: float = MIN_INTERVAL_S, hold_s: float = HOLD_S):
        self.min_interval_s = min_interval_s
        self.hold_s = hold_s
        self.controls: dict[str, _ControlState] = {}

    def state(self, key: str) -> _ControlState:
        state = self.controls.get(key)
        if state is None:
            state = self.controls[key] = _ControlState()
        return state

    def touched(self, key: str, now: float, shown=_KEEP, channel: int | None = None) -> None:
        """The control sent a message at ``now``; ``shown``: the wire value it now shows
        (absolute controls), else unchanged."""
        state = self.state(key)
        state.touched_t = now
        if shown is not _KEEP:
            state.shown = shown
        if channel is not None:
            state.channel = channel

    def due(self, key: str, wire: int, now: float) -> bool:
        state = self.state(key)
        if wire == state.shown or now - state.touched_t < self.hold_s \
                or now - state.sent_t < self.min_interval_s:
            return False
        state.shown = wire
        state.sent_t = now
        return True

    def forget(self) -> None:
        for state in self.controls.values():
            state.shown = None


def wire_top(control: CcControl) -> int:
    """The largest value a control's message carries: 127, or 16383 for a 14-bit control and
    NRPN/RPN."""
    return HIRES_MAX if control.mode == "14bit" or control.source != "cc" else 127


def wire_value(control: CcControl, position: float) -> int:
    """The value a control's message carries at ``position`` 0..1."""
    return int(round(min(max(position, 0.0), 1.0) * wire_top(control)))


def feedback_messages(control: CcControl, wire: int, channel: int) -> list[list[int]]:
    """The MIDI messages that show ``wire`` on ``control`` (on ``channel`` 0..15)."""
    status = 0xB0 | (channel & 15)
    if control.source == "cc":
        if control.mode == "14bit":
            return [[status, control.cc, wire >> 7], [status, control.cc + 32, wire & 127]]
        return [[status, control.cc, wire]]
    msb_cc, lsb_cc = (CC_NRPN_MSB, CC_NRPN_LSB) if control.source == "nrpn" else \
        (CC_RPN_MSB, CC_RPN_LSB)
    return [[status, msb_cc, control.pn >> 7], [status, lsb_cc, control.pn & 127],
            [status, CC_DATA_MSB, wire >> 7], [status, CC_DATA_LSB, wire & 127]]


def _client(name: str) -> str:
    """A port's client, without a JACK rename suffix ("fbctl-01:out" -> "fbctl")."""
    return re.sub(r"-\d\d$", "", name.split(":", 1)[0])


def pair_output(input_name: str, outputs: list[str], own_prefix: str = "instrument") -> str | None:
    """The output port (from ``outputs``, the ports one can send to) of the controller whose
    input port is ``input_name``; None when there is no clear one."""
    outputs = [o for o in outputs if _client(o) != own_prefix and
               not _client(o).startswith(own_prefix + "-")]
    if input_name in outputs:
        return input_name
    if "(capture)" in input_name:
        playback = input_name.replace("(capture)", "(playback)")
        return playback if playback in outputs else None
    same = [o for o in outputs if _client(o) == _client(input_name)]
    return same[0] if len(same) == 1 else None


class _Target:
    """One output: where to send, for which input port's mapping, and its schedule."""

    def __init__(self, name: str, out, mapping, ready_at: float, wait_jack: bool = False):
        self.name = name        # the output port's name
        self.out = out          # rtmidi MidiOut
        self.mapping = mapping
        self.schedule = FeedbackSchedule()
        self.ready_at = ready_at
        self.wait_jack = wait_jack  # until jack_lsp shows our connection to it
        self.plan = None        # the plan its values were sent for
        self.sent_messages = 0


class MidiFeedback:
    """Sends feedback for the ports of ``inputs`` (``MidiInputs``). ``state`` provides
    ``plan_and_values()`` and ``macro_positions()`` (the host); ``mapping_of(port_name)`` the
    mapping a port uses (None: none); ``own_mapping`` the one of the virtual input."""

    def __init__(self, state, inputs, mapping_of, own_mapping=None):
        self.state = state
        self.inputs = inputs
        self.mapping_of = mapping_of
        self.own_mapping = own_mapping
        self.rtmidi = inputs.rtmidi
        self.api = inputs.api
        self.client_name = f"{inputs.client_name}-feedback"
        self.targets: dict[str, _Target] = {}  # by the name of the input port they serve
        self.lock = threading.Lock()
        self.routers: dict[int, tuple] = {}  # id(mapping) -> (plan, CcRouter)
        self.touch_index: dict[int, dict[int, list[tuple[CcControl, str]]]] = {}
        self.virtual = None
        self.virtual_name: str | None = None  # on JACK, as JACK named it
        self.virtual_peers: set[str] = set()
        self.errors = 0
        self.running = False
        self.thread = threading.Thread(target=self._run, name="midi-feedback", daemon=True)

    # ---- ports (the host's main loop) --------------------------------------------------------
    def start(self) -> None:
        if self.own_mapping is not None and self.own_mapping.feedback:
            try:
                before = set(self.inputs._jack_connections())
                out = self.rtmidi.MidiOut(rtapi=self.api, name=self.client_name)
                out.open_virtual_port("out")
                ours = [p for p in set(self.inputs._jack_connections()) - before
                        if p.startswith(self.client_name)]
                self.virtual_name = ours[0] if len(ours) == 1 else f"{self.client_name}:out"
                self.virtual = out
                with self.lock:
                    self.targets[self.inputs.virtual_name] = _Target(
                        self.virtual_name, out, self.own_mapping, 0.0)
                log.info("MIDI feedback: %s (for %s)", self.virtual_name,
                         self.inputs.virtual_name)
            except Exception as exc:  # noqa: BLE001 - no feedback port is not fatal
                log.warning("MIDI feedback: no output port: %s", exc)
        for name in list(self.inputs.ports):
            self.port_event(name, True)
        self.running = True
        self.thread.start()

    def port_event(self, name: str, opened: bool) -> None:
        """An input port was opened (pair and open its controller's output) or is gone."""
        if not opened:
            with self.lock:
                target = self.targets.pop(name, None)
            if target is not None:
                self._close(target.out)
            return
        mapping = self.mapping_of(name)
        if mapping is None or not mapping.feedback or name in self.targets:
            return
        try:
            out = self.rtmidi.MidiOut(rtapi=self.api, name=self.client_name)
            outputs = out.get_ports()
            pair = pair_output(name, outputs, self.inputs.client_name)
            if pair is None:
                out.delete()
                log.info("MIDI feedback: no output port found for %s%s", name,
                         f" (patch {self.virtual_name} to it by hand)" if self.virtual_name
                         and mapping is self.own_mapping else "")
                return
            out.open_port(outputs.index(pair), "out")
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            log.warning("MIDI feedback: cannot open the output for %s: %s", name, exc)
            return
        with self.lock:
            self.targets[name] = _Target(pair, out, mapping, time.monotonic() + OPEN_SETTLE_S,
                                         wait_jack=bool(self.inputs.jack_lsp))
        log.info("MIDI feedback: %s -> %s", name, pair)

    def stop(self) -> None:
        self.running = False
        if self.thread.is_alive():
            self.thread.join(timeout=1.0)
        with self.lock:
            targets, self.targets = list(self.targets.values()), {}
        for target in targets:
            self._close(target.out)

    @staticmethod
    def _close(out) -> None:
        try:
            out.close_port()
            out.delete()
        except Exception:  # noqa: BLE001 - closing a vanished port
            pass

    def status(self) -> dict:
        """For ``instrument status``: the messages sent to each output, and errors (a port
        gone, a failed tick)."""
        with self.lock:
            sent = {t.name: t.sent_messages for t in self.targets.values()}
        return {"sent": sent, "errors": self.errors}

    # ---- incoming (the MIDI polling thread) --------------------------------------------------
    def on_midi(self, port: str, message, t: float) -> None:
        """A message from input ``port``: a control change marks its control as being moved."""
        if len(message) != 3 or message[0] & 0xF0 != 0xB0:
            return
        target = self.targets.get(port)
        if target is None:
            return
        channel, cc, value = message[0] & 15, message[1], message[2]
        with self.lock:
            schedule = target.schedule
            for control, role in self._touch_index(target.mapping).get(cc, ()):
                if control.channel is not None and control.channel != channel:
                    continue
                key = control.where
                if role == "abs":
                    schedule.touched(key, t, value, channel)
                elif role == "msb":
                    schedule.touched(key, t, value << 7, channel)
                elif role == "lsb":
                    shown = schedule.state(key).shown or 0
                    schedule.touched(key, t, (shown & ~127) | value, channel)
                else:  # relative ticks, NRPN/RPN data entry: moving, value unknown here
                    schedule.touched(key, t, channel=channel)

    def _touch_index(self, mapping) -> dict[int, list[tuple[CcControl, str]]]:
        index = self.touch_index.get(id(mapping))
        if index is None:
            index = {}
            for c in mapping.controls:
                if not c.feedback:
                    continue
                if c.source != "cc":
                    for cc in PN_CCS:
                        index.setdefault(cc, []).append((c, "pn"))
                elif c.mode == "14bit":
                    index.setdefault(c.cc, []).append((c, "msb"))
                    index.setdefault(c.cc + 32, []).append((c, "lsb"))
                else:
                    index.setdefault(c.cc, []).append((c, "rel" if c.relative else "abs"))
            self.touch_index[id(mapping)] = index
        return index

    # ---- sending (this module's thread) ------------------------------------------------------
    def _run(self) -> None:
        while self.running:
            try:
                self.tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - feedback must never take the host down
                self.errors += 1
                log.debug("MIDI feedback: %s", exc)
            time.sleep(TICK_S)

    def tick(self, now: float) -> None:
        if not self.targets or getattr(self.state, "plan", None) is None:
            return
        self._watch_virtual_peers()
        plan, values = self.state.plan_and_values()
        macros = self.state.macro_positions()
        with self.lock:
            targets = list(self.targets.values())
        for target in targets:
            if not self._ready(target, now):
                continue
            positions = self._router(target.mapping, plan).positions(values, macros)
            with self.lock:
                if target.plan is not plan:  # a preset load: every value again
                    target.plan = plan
                    target.schedule.forget()
                messages = []
                for control, position, norm, value_at in positions:
                    wire = wire_value(control, position)
                    key = control.where
                    shown = target.schedule.state(key).shown
                    if shown is not None and shown != wire and \
                            abs(value_at(shown / wire_top(control)) - norm) <= 1e-9:
                        continue  # the knob's position means this value (a choice's zone)
                    if target.schedule.due(key, wire, now):
                        channel = control.channel
                        if channel is None:
                            channel = target.schedule.state(key).channel or 0
                        messages += feedback_messages(control, wire, channel)
                for message in messages:
                    try:
                        target.out.send_message(message)
                        target.sent_messages += 1
                    except Exception as exc:  # noqa: BLE001 - a port gone under us
                        self.errors += 1
                        log.debug("MIDI feedback to %s: %s", target.name, exc)
                        break

    def _ready(self, target: _Target, now: float) -> bool:
        """Past its settling time and, on JACK, connected as the last port scan saw it (JACK
        drops what is sent before the connection is made: the first values would be lost)."""
        if now < target.ready_at:
            return False
        if target.wait_jack:
            peers = getattr(self.inputs, "connections", {}).get(target.name, ())
            if not any(p.startswith(self.client_name) for p in peers):
                return False
            target.wait_jack = False
        return True

    def _router(self, mapping, plan):
        """A router of ``mapping`` for ``plan``, for its bindings only (never handles)."""
        entry = self.routers.get(id(mapping))
        if entry is None or entry[0] is not plan:
            from instrument.control.cc_router import CcRouter

            entry = (plan, CcRouter(mapping, plan.params, plan.macros, lambda index: 0.0))
            self.routers[id(mapping)] = entry
        return entry[1]

    def _watch_virtual_peers(self) -> None:
        """On JACK: something newly connected to the virtual output gets every value."""
        if self.virtual_name is None:
            return
        connections = getattr(self.inputs, "connections", None)
        if not connections:
            return
        peers = set(connections.get(self.virtual_name, ()))
        new = peers - self.virtual_peers
        self.virtual_peers = peers
        if new:
            with self.lock:
                target = self.targets.get(self.inputs.virtual_name)
                if target is not None:
                    target.schedule.forget()
                    target.ready_at = time.monotonic() + OPEN_SETTLE_S


def start_midi_feedback(host) -> MidiFeedback | None:
    """A started ``MidiFeedback`` for ``host`` (``runtime.host.Host``) when it has MIDI and a
    mapping with feedback (its own or a controller profile's); else None."""
    midi = host.midi
    if midi is None or not midi.available:
        return None
    mappings = [host.mapping] + [mapping for _, mapping in host.profiles]
    if not any(m is not None and m.feedback for m in mappings):
        return None
    feedback = MidiFeedback(host, midi, lambda name: host._midi_port(name).mapping or
                            host.mapping, host.mapping)
    feedback.start()
    return feedback
