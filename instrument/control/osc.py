"""OSC in: an address map built once per preset, and a UDP server.

Addresses (every value is clipped to its range; ints and floats are both accepted):

=========================  ======  ==================================================
address                    args    effect
=========================  ======  ==================================================
/param/<node>/<param>      f       parameter, normalized 0..1
/macro/<n> or /macro/<name> f      macro n (1-based) or by name, 0..1
/note/on                   i f     note 0..127, velocity 0..1 (an int above 1: MIDI 1..127)
/note/off                  i       note
/preset/load               s       preset file name (in the preset folder) or path
/panic                     -       all sound off
=========================  ======  ==================================================

Addresses are resolved to parameter indices when a preset loads (a dict lookup per message, no
pattern matching). Unknown addresses, wrong argument types, malformed datagrams: counted in
``counts`` and dropped, never an exception into the server.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from dataclasses import dataclass, field

from pythonosc import osc_packet

log = logging.getLogger(__name__)


@dataclass
class OscCounts:
    messages: int = 0
    unknown: int = 0
    malformed: int = 0


@dataclass
class OscAddressMap:
    """Address -> action, for one preset."""

    params: dict[str, int] = field(default_factory=dict)
    macros: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan) -> "OscAddressMap":
        amap = cls()
        for slot in plan.params:
            node, _, name = slot.path.partition(".")
            amap.params[f"/param/{node}/{name}"] = slot.index
        for slot in plan.macros:
            amap.macros[f"/macro/{slot.index + 1}"] = slot.index
            amap.macros[f"/macro/{slot.name}"] = slot.index
        return amap


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class OscRouter:
    """Turns OSC messages into host actions. ``host`` provides set_param_norm(index, norm),
    set_macro(index, norm), note_on(note, velocity), note_off(note), panic(),
    load_preset(name)."""

    def __init__(self, host):
        self.host = host
        self.map = OscAddressMap()
        self.counts = OscCounts()

    def handle(self, address: str, args) -> bool:
        """Apply one message; False (and counted) when it is unknown or malformed."""
        self.counts.messages += 1
        ok = self._apply(address, args)
        if not ok:
            if address in self.map.params or address in self.map.macros or address in _FIXED:
                self.counts.malformed += 1
            else:
                self.counts.unknown += 1
        return ok

    def _apply(self, address, args) -> bool:
        index = self.map.params.get(address)
        if index is not None:
            value = _number(args[0]) if len(args) == 1 else None
            if value is None:
                return False
            self.host.set_param_norm(index, min(max(value, 0.0), 1.0))
            return True
        index = self.map.macros.get(address)
        if index is not None:
            value = _number(args[0]) if len(args) == 1 else None
            if value is None:
                return False
            self.host.set_macro(index, min(max(value, 0.0), 1.0))
            return True
        if address == "/note/on" and len(args) == 2:
            note, vel = _number(args[0]), _number(args[1])
            if note is None or vel is None:
                return False
            if isinstance(args[1], int) and vel > 1:
                vel /= 127.0
            self.host.note_on(int(min(max(note, 0), 127)), min(max(vel, 0.0), 1.0))
            return True
        if address == "/note/off" and len(args) in (1, 2):
            note = _number(args[0])
            if note is None:
                return False
            self.host.note_off(int(min(max(note, 0), 127)))
            return True
        if address == "/panic" and not args:
            self.host.panic()
            return True
        if address == "/preset/load" and len(args) == 1 and isinstance(args[0], str):
            self.host.load_preset(args[0])
            return True
        return False


_FIXED = {"/note/on", "/note/off", "/panic", "/preset/load"}


class OscServer:
    """UDP receiver on ``bind:port`` in a daemon thread. python-osc parses each datagram
    (messages and bundles); routing is ours (a dict per preset, not a regex per message).

    A plain socket loop rather than python-osc's socketserver: that one builds a handler object
    per datagram, and under a 2 000 messages/s flood on two busy cores it lost most of them.
    The receive buffer is enlarged so bursts wait in the kernel instead of being dropped.
    """

    RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

    def __init__(self, router: OscRouter, bind: str, port: int):
        self.router = router
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RECEIVE_BUFFER_BYTES)
        self.sock.bind((bind, port))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.running = False
        self.thread = threading.Thread(target=self._serve, name="osc-in", daemon=True)

    def start(self) -> None:
        self.running = True
        self.thread.start()

    def _serve(self) -> None:
        handle = self.router.handle
        counts = self.router.counts
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                packet = osc_packet.OscPacket(data)
            except Exception:  # noqa: BLE001 - ParseError and whatever a broken datagram causes
                counts.malformed += 1
                continue
            for timed in packet.messages:
                msg = timed.message
                try:
                    handle(msg.address, msg.params)
                except Exception as exc:  # noqa: BLE001 - a bug must not kill the receiver
                    counts.malformed += 1
                    log.debug("OSC %s failed: %s", msg.address, exc)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.sock.close()
