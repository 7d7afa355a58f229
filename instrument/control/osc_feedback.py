"""OSC feedback: every client sees the instrument's real state, whoever changed it.

A thread compares, about 30 times a second, the parameter table and the macro positions with
what each client last saw, and sends what differs. So every source of change is covered by
one mechanism (a MIDI knob, another client, a preset load, a macro's fan-out), each address is
sent at most once per tick (latest value wins: at most ~30 Hz per address, whatever the flood),
and the feedback never runs on the audio side: it reads the shared table the host writes.

Per client:
- what it sent counts as what it has seen, so a value is never echoed to the client that set
  it (its display text is: ``/text`` goes to everyone); an address it is touching is held back: ``<address>/touch 1`` until ``/touch 0``, and
  for ``HOLD_S`` after each of its own messages to that address (a fader being dragged must
  not jump back under the finger);
- known from its first message (replies go to its source port, or to ``reply_port`` when the
  surface listens on a fixed port of its own, as TouchOSC does), or by ``/hello [port]``;
  forgotten after ``lease_s`` without a message (any message renews it); ``/sync`` or first
  contact sends a full dump;
- static targets (``--osc-send HOST:PORT``) never expire.

Sent: ``/param/<node>/<param> f`` (normalized), ``/param/<node>/<param>/text s`` (display
text with unit, "1.20 kHz"), ``/macro/<n> f`` and ``/macro/<name> f``, ``/preset/name s``, and
once a second ``/status/voices i``, ``/status/load f`` (callback p99.9, % of the deadline),
``/status/xruns i``, ``/status/tempo f`` (BPM: MIDI clock or /tempo).

Ghosts (soft takeover): while a MIDI knob with ``takeover = "pickup"`` or ``"scale"`` is away
from its target's value (it has not taken over yet, or something else moved the value since),
``<address>/ghost f`` tells where the knob is, normalized like the value (``<address>`` is the
parameter's ``/param/<node>/<param>`` or the macro's two addresses), preceded by
``<address>/ghost/visible i 1`` when the ghost appears. Once the knob has taken over (or a
preset load forgot it), ``<address>/ghost f`` is the value itself and
``<address>/ghost/visible i 0``: a layout can draw the ghost as a second marker and hide it.
Ghosts are diff-based like the values, at most once per tick.

Queries: ``/q <address>`` answers with the address's value, its text and ``<address>/doc``;
``/doc`` answers every parameter's ``/doc/param`` (see ``param_doc``).
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

log = logging.getLogger(__name__)

TICK_S = 1 / 30
HOLD_S = 0.3
STATUS_EVERY_S = 1.0
MAX_CLIENTS = 16  # beyond this the least recently heard client is forgotten
MAX_DATAGRAM_BYTES = 1400  # bundles are cut to fit one Ethernet frame (no IP fragments)


@dataclass
class Client:
    ip: str
    port: int
    last_heard: float
    static: bool = False
    plan: object = None  # the plan its `known` values belong to
    known: np.ndarray = field(default_factory=lambda: np.zeros(0))
    known_text: np.ndarray = field(default_factory=lambda: np.zeros(0))  # values its text shows
    known_macros: list = field(default_factory=list)
    held_until: dict = field(default_factory=dict)  # address -> monotonic time (inf: touched)
    known_ghosts: dict = field(default_factory=dict)  # address -> the knob position it saw
    next_status: float = 0.0

    @property
    def target(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def forget_values(self) -> None:
        """Next tick sends everything (first contact, /sync, another preset)."""
        self.plan = None


@dataclass
class PlanAddresses:
    """The addresses of one plan's parameters and macros, by index."""

    plan: object
    params: list[str]
    macros: list[tuple[str, str]]
    index: dict[str, int]
    macro_index: dict[str, int]

    @classmethod
    def of(cls, plan) -> "PlanAddresses":
        params = []
        for slot in plan.params:
            node, _, name = slot.path.partition(".")
            params.append(f"/param/{node}/{name}")
        macros = [(f"/macro/{m.index + 1}", f"/macro/{m.name}") for m in plan.macros]
        macro_index = {a: i for i, pair in enumerate(macros) for a in pair}
        return cls(plan, params, macros, {a: i for i, a in enumerate(params)}, macro_index)


def param_doc(slot) -> tuple:
    """``/doc/param`` arguments: address-free metadata of one parameter: path, label, unit,
    min, max, default (display units), curve, kind, choices joined by '|', doc."""
    spec = slot.spec
    return (slot.path, spec.label, spec.unit, float(spec.min), float(spec.max),
            float(spec.default), spec.curve.name.lower(), spec.kind.name.lower(),
            "|".join(spec.choices), spec.doc)


class OscFeedback:
    """``state`` provides ``plan_and_values()`` (the current Plan and the normalized values of
    its parameters, an array), ``macro_positions()`` (list), ``status_dict()``. ``sock`` is the
    server's UDP socket (replies come from the port clients send to)."""

    def __init__(self, state, sock, reply_port: int | None = None, lease_s: float = 600.0,
                 static_targets=()):
        self.state = state
        self.sock = sock
        self.reply_port = reply_port
        self.lease_s = lease_s
        self.clients: dict[tuple[str, int], Client] = {}
        self.lock = threading.Lock()
        self.addresses: PlanAddresses | None = None
        self.sent_messages = 0
        self.running = False
        for host, port in static_targets:
            self.clients[(host, port)] = Client(host, port, math.inf, static=True)
        self.thread = threading.Thread(target=self._run, name="osc-feedback", daemon=True)

    # ---- input side (the OSC receiver's thread) -------------------------------------------
    def on_message(self, ip: str, port: int, address: str, args) -> bool:
        """Note who sent what. True when the message was for the feedback itself (/hello,
        /sync, /q, /doc, .../touch) and needs no routing."""
        now = time.monotonic()
        with self.lock:
            client = self._client(ip, port, now)
            if address == "/hello":
                if args and isinstance(args[0], int) and 0 < args[0] < 65536:
                    self._move(client, args[0])
                client.forget_values()
                return True
            if address == "/sync":
                client.forget_values()
                return True
            if address.endswith("/touch"):
                target = address[:-len("/touch")]
                touching = bool(args) and _truthy(args[0])
                client.held_until[target] = math.inf if touching else now + HOLD_S
                return True
        if address == "/q" and args and isinstance(args[0], str):
            self._answer_query(client, args[0])
            return True
        if address == "/doc":
            self._answer_doc(client)
            return True
        return False

    def on_applied(self, ip: str, port: int, address: str, norm: float) -> None:
        """A client's value was applied: it has seen it (no echo), and the address is held
        for it a moment (its fader is moving)."""
        now = time.monotonic()
        with self.lock:
            client = self._client(ip, port, now)
            client.held_until[address] = max(client.held_until.get(address, 0.0), now + HOLD_S)
            amap = self.addresses
            if amap is None or client.plan is not amap.plan:
                return
            index = amap.index.get(address)
            if index is not None and index < client.known.size:
                client.known[index] = norm
                return
            index = amap.macro_index.get(address)
            if index is not None and index < len(client.known_macros):
                client.known_macros[index] = norm

    def _client(self, ip: str, port: int, now: float) -> Client:
        key = (ip, self.reply_port or port)
        client = self.clients.get(key)
        if client is None:
            if len(self.clients) >= MAX_CLIENTS:
                oldest = min((c for c in self.clients.values() if not c.static),
                             key=lambda c: c.last_heard, default=None)
                if oldest is not None:
                    del self.clients[(oldest.ip, oldest.port)]
            client = Client(ip, key[1], now)
            self.clients[key] = client
            log.info("OSC: client %s:%d (feedback on)", ip, key[1])
        client.last_heard = max(client.last_heard, now)
        return client

    def _move(self, client: Client, port: int) -> None:
        del self.clients[client.target]
        client.port = port
        self.clients[client.target] = client

    # ---- output side (this module's thread) -------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while self.running:
            try:
                self.tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - feedback must never take the host down
                log.debug("OSC feedback: %s", exc)
            next_tick += TICK_S
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()

    def tick(self, now: float) -> None:
        if getattr(self.state, "plan", None) is None:
            return
        plan, values = self.state.plan_and_values()
        if self.addresses is None or self.addresses.plan is not plan:
            self.addresses = PlanAddresses.of(plan)
        amap = self.addresses
        macros = list(self.state.macro_positions())
        ghosts = self._ghosts(amap)
        status = None
        with self.lock:
            for key in [k for k, c in self.clients.items()
                        if not c.static and now - c.last_heard > self.lease_s]:
                log.info("OSC: client %s:%d silent for %.0f s, feedback off", key[0], key[1],
                         self.lease_s)
                del self.clients[key]
            clients = list(self.clients.values())
        for client in clients:
            messages = []
            with self.lock:
                if client.plan is not plan:
                    client.plan = plan
                    client.known = np.full(values.size, np.nan)
                    client.known_text = np.full(values.size, np.nan)
                    client.known_macros = [math.nan] * len(macros)
                    messages.append(("/preset/name", [plan.name]))
                held = {a for a, t in client.held_until.items() if t > now}
                for address in [a for a, t in client.held_until.items() if t <= now]:
                    del client.held_until[address]
                changed = np.flatnonzero(~(np.abs(values - client.known) <= 1e-9))
                for i in changed:
                    address = amap.params[i]
                    if address in held:
                        continue
                    client.known[i] = values[i]
                    messages.append((address, [float(values[i])]))
                # The display text goes to every client, the sender and a touching one too:
                # it is not the control's value, and the finger on the fader wants to read it.
                for i in np.flatnonzero(~(np.abs(values - client.known_text) <= 1e-9)):
                    client.known_text[i] = values[i]
                    messages.append((amap.params[i] + "/text", [_text(plan.params[i], values[i])]))
                for i, value in enumerate(macros):
                    if not (abs(value - client.known_macros[i]) <= 1e-9):
                        by_number, by_name = amap.macros[i]
                        if by_number in held or by_name in held:
                            continue
                        client.known_macros[i] = value
                        messages.append((by_number, [float(value)]))
                        messages.append((by_name, [float(value)]))
                messages += _ghost_messages(client, ghosts, amap, values, macros)
            if now >= client.next_status:
                client.next_status = now + STATUS_EVERY_S
                status = status or self.state.status_dict()
                messages += [("/status/voices", [int(status["active_voices"])]),
                             ("/status/load", [float(status["callback_p999_pct"])]),
                             ("/status/xruns", [int(status["xruns"])]),
                             ("/status/tempo", [float(status["tempo_bpm"])])]
            if messages:
                self.send(client.target, messages)

    def _ghosts(self, amap: PlanAddresses) -> dict[str, float]:
        """Address -> knob position of every ghost (see the module's docstring)."""
        positions = getattr(self.state, "ghost_positions", None)
        ghosts: dict[str, float] = {}
        if positions is None:
            return ghosts
        for (kind, index), knob in positions().items():
            if kind == "param" and index < len(amap.params):
                ghosts[amap.params[index]] = float(knob)
            elif kind == "macro" and index < len(amap.macros):
                for address in amap.macros[index]:
                    ghosts[address] = float(knob)
        return ghosts

    def send(self, target: tuple[str, int], messages: list[tuple[str, list]]) -> None:
        """Messages as bundles of at most one Ethernet frame each."""
        for datagram in _bundles(messages):
            try:
                self.sock.sendto(datagram, target)
                self.sent_messages += 1
            except OSError:
                return  # unreachable, or the socket closed at shutdown: next tick tries again

    # ---- queries -----------------------------------------------------------------------------
    def _answer_query(self, client: Client, address: str) -> None:
        plan, values = self.state.plan_and_values()
        amap = self.addresses if self.addresses and self.addresses.plan is plan else (
            PlanAddresses.of(plan))
        index = amap.index.get(address)
        if index is None:
            self.send(client.target, [("/q/unknown", [address[:200]])])
            return
        value = float(values[index])
        slot = plan.params[index]
        self.send(client.target, [(address, [value]), (address + "/text", [_text(slot, value)]),
                                  (address + "/doc", list(param_doc(slot)))])

    def _answer_doc(self, client: Client) -> None:
        plan, _ = self.state.plan_and_values()
        messages = [("/doc/preset", [plan.name, len(plan.params), len(plan.macros)])]
        amap = PlanAddresses.of(plan)
        for slot, address in zip(plan.params, amap.params):
            messages.append(("/doc/param", [address, *param_doc(slot)]))
        for macro, (by_number, by_name) in zip(plan.macros, amap.macros):
            messages.append(("/doc/macro", [by_number, by_name, macro.label]))
        self.send(client.target, messages)


def _ghost_messages(client: Client, ghosts: dict, amap: PlanAddresses, values,
                    macros: list) -> list[tuple[str, list]]:
    """What ``client`` has not seen of ``ghosts``: new and moved ghosts, and cleared ones."""
    messages = []
    known = client.known_ghosts
    for address, knob in ghosts.items():
        old = known.get(address)
        if old is None:
            messages.append((address + "/ghost/visible", [1]))
        if old is None or abs(old - knob) > 1e-9:
            known[address] = knob
            messages.append((address + "/ghost", [knob]))
    for address in [a for a in known if a not in ghosts]:
        del known[address]
        index = amap.index.get(address)
        if index is not None:
            messages.append((address + "/ghost", [float(values[index])]))
        else:
            index = amap.macro_index.get(address)
            if index is not None and index < len(macros):
                messages.append((address + "/ghost", [float(macros[index])]))
        messages.append((address + "/ghost/visible", [0]))
    return messages


def _truthy(value) -> bool:
    return isinstance(value, (bool, int, float)) and not isinstance(value, str) and value > 0.5


def _text(slot, norm: float) -> str:
    try:
        return slot.spec.format(slot.spec.from_norm(float(norm)))
    except Exception:  # noqa: BLE001 - a display text must never stop the feedback
        return ""


def _message(address: str, args: list) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(arg)
        elif isinstance(arg, int):
            builder.add_arg(arg, "i")
        elif isinstance(arg, float):
            builder.add_arg(arg, "f")
        else:
            builder.add_arg(str(arg), "s")
    return builder.build().dgram


def _bundles(messages: list[tuple[str, list]]):
    """Yield datagrams: single messages alone, several packed into bundles of at most
    MAX_DATAGRAM_BYTES (a message bigger than that goes alone)."""
    encoded = [_message(a, args) for a, args in messages]
    if len(encoded) == 1:
        yield encoded[0]
        return
    batch: list[bytes] = []
    size = 16  # "#bundle\0" + time tag
    for dgram in encoded:
        if batch and size + 4 + len(dgram) > MAX_DATAGRAM_BYTES:
            yield _bundle(batch)
            batch, size = [], 16
        batch.append(dgram)
        size += 4 + len(dgram)
    if batch:
        yield _bundle(batch) if len(batch) > 1 else batch[0]


_BUNDLE_HEAD = b"#bundle\0" + struct.pack(">Q", 1)  # time tag 1: "immediately"


def _bundle(dgrams: list[bytes]) -> bytes:
    return _BUNDLE_HEAD + b"".join(struct.pack(">i", len(d)) + d for d in dgrams)
