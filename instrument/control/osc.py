"""OSC in: an address map built once per preset, and a UDP server.

Addresses (every value is clipped to its range; ints and floats are both accepted):

=========================  ======  ==================================================
address                    args    effect
=========================  ======  ==================================================
/param/<node>/<param>      f       parameter, normalized 0..1
/macro/<n> or /macro/<name> f      macro n (1-based) or by name, 0..1
/note/on                   i f     note 0..127, velocity 0..1 (an int above 1: MIDI 1..127)
/note/off                  i       note 0..127
/preset/load               s       preset name in the preset folder ('pad'); never a path
/snapshot/save             i       save what plays now as snapshot 0..127 (the state folder)
/snapshot/load             i       load snapshot 0..127: its preset, then its values
/panic                     -       all sound off
/learn/..., /unlearn/...   -       MIDI learn (see ``instrument.control.midi_learn``)
/tempo                     f       tempo in BPM (20..300) while no MIDI clock comes
=========================  ======  ==================================================

Note numbers outside 0..127 are dropped, not clipped: a note is an identity, and note 300
played (or released) as 127 would be a wrong note.

Addresses are resolved to parameter indices when a preset loads (a dict lookup per message, no
pattern matching). Unknown addresses, wrong argument types or counts, NaN and infinities,
malformed and oversize datagrams, datagrams from senders outside ``--osc-allow``: counted in
``counts`` and dropped, never an exception into the server and never a log line per datagram
(one summary line at most every ``DROP_SUMMARY_S``). Datagrams are decoded by
``osc_datagram.decode_datagram``; senders are checked by ``osc_allow.SenderAllowlist``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field

from instrument.control.osc_allow import SenderAllowlist, parse_osc_allow
from instrument.control.osc_datagram import MAX_DATAGRAM_BYTES, MalformedDatagram, decode_datagram

log = logging.getLogger(__name__)

DROP_SUMMARY_S = 5.0  # at most one "OSC: dropped ..." line per this many seconds


@dataclass
class OscCounts:
    """Totals since start. ``messages``: decoded messages handed to the router (applied or
    not); ``unknown``: of those, addresses we do not know; ``malformed``: datagrams that are
    not acceptable OSC plus known addresses with unusable arguments; ``oversize``: datagrams
    over MAX_DATAGRAM_BYTES; ``denied``: datagrams from senders outside the allowlist."""

    messages: int = 0
    unknown: int = 0
    malformed: int = 0
    oversize: int = 0
    denied: int = 0


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


def _note_number(value) -> int | None:
    """A MIDI note 0..127 (a float is truncated: TouchOSC sends floats); None otherwise."""
    number = _number(value)
    return int(number) if number is not None and 0 <= number <= 127 else None


class OscRouter:
    """Turns OSC messages into host actions. ``host`` provides set_param_norm(index, norm),
    set_macro(index, norm), note_on(note, velocity), note_off(note), panic(), set_tempo(bpm),
    load_preset(name), snapshot_save(n), snapshot_load(n)."""

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
            note, vel = _note_number(args[0]), _number(args[1])
            if note is None or vel is None:
                return False
            if isinstance(args[1], int) and vel > 1:
                vel /= 127.0
            self.host.note_on(note, min(max(vel, 0.0), 1.0))
            return True
        if address == "/note/off" and len(args) in (1, 2):
            note = _note_number(args[0])
            if note is None:
                return False
            self.host.note_off(note)
            return True
        if address.startswith(("/learn/", "/unlearn/")):
            learn = getattr(self.host, "learn", None)
            return learn is not None and learn.osc(address, args)
        if address == "/tempo" and len(args) == 1:
            bpm = _number(args[0])
            if bpm is None:
                return False
            self.host.set_tempo(bpm)  # clipped to 20..300 there; a running MIDI clock wins
            return True
        if address == "/panic" and not args:
            self.host.panic()
            return True
        if address == "/preset/load" and len(args) == 1 and isinstance(args[0], str):
            self.host.load_preset(args[0])
            return True
        if address in ("/snapshot/save", "/snapshot/load") and len(args) == 1:
            n = _note_number(args[0])  # 0..127 like a program change; a float is truncated
            if n is None:
                return False
            (self.host.snapshot_save if address == "/snapshot/save" else
             self.host.snapshot_load)(n)
            return True
        return False


_FIXED = {"/note/on", "/note/off", "/panic", "/tempo", "/preset/load", "/snapshot/save",
          "/snapshot/load"}


class OscServer:
    """UDP receiver on ``bind:port`` in a daemon thread: sender check, size check, our own
    validating decoder (``osc_datagram``), then the router. Each rejected datagram costs a
    counter increment and no log line; ``DropSummary`` logs the totals at most every
    ``DROP_SUMMARY_S``.

    A plain socket loop rather than python-osc's socketserver: that one builds a handler object
    per datagram, and under a 2 000 messages/s flood on two busy cores it lost most of them.
    The receive buffer is enlarged so bursts wait in the kernel instead of being dropped.
    """

    RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
    # One byte more than the limit: a datagram that fills it was longer (the kernel truncates
    # to the buffer), and is counted as oversize without being looked at.
    RECV_BYTES = MAX_DATAGRAM_BYTES + 1
    SENDER_CACHE_SIZE = 256  # decisions kept per sender address; cleared when full

    def __init__(self, router: OscRouter, bind: str, port: int,
                 allow: str | SenderAllowlist = "local"):
        self.router = router
        self.allowlist = parse_osc_allow(allow) if isinstance(allow, str) else allow
        self.sender_decisions: dict[str, bool] = {}
        self.drops = DropSummary(router.counts)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RECEIVE_BUFFER_BYTES)
        self.sock.bind((bind, port))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.running = False
        self.feedback = None  # an OscFeedback: told who sent what (control/osc_feedback.py)
        self.thread = threading.Thread(target=self._serve, name="osc-in", daemon=True)

    def start(self) -> None:
        log.info("OSC: accepting datagrams from %s (--osc-allow)", self.allowlist.describe())
        self.running = True
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, (sender, port) = self.sock.recvfrom(self.RECV_BYTES)
            except socket.timeout:
                self.drops.log_if_due(time.monotonic())
                continue
            except OSError:
                break
            self.receive(data, sender, port)
            self.drops.log_if_due(time.monotonic())

    def receive(self, data: bytes, sender: str, port: int = 0) -> None:
        """Count, check and route one datagram from ``sender`` (dotted IPv4 text)."""
        counts = self.router.counts
        if not self.sender_allowed(sender):
            counts.denied += 1
            return
        if len(data) > MAX_DATAGRAM_BYTES:
            counts.oversize += 1
            return
        try:
            messages = decode_datagram(data)
        except MalformedDatagram as exc:
            counts.malformed += 1
            self.drops.last_reason = exc.reason
            return
        handle = self.router.handle
        feedback = self.feedback
        for address, args in messages:
            try:
                if feedback is not None and feedback.on_message(sender, port, address, args):
                    counts.messages += 1
                    continue
                if handle(address, args) and feedback is not None and \
                        address.startswith(("/param/", "/macro/")):
                    feedback.on_applied(sender, port, address, min(max(float(args[0]), 0.0),
                                                                    1.0))
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the receiver
                counts.malformed += 1
                log.debug("OSC %s failed: %s", address, exc)

    def sender_allowed(self, sender: str) -> bool:
        """The allowlist's decision for ``sender``, remembered per address so a flood costs a
        dict lookup per datagram. A refusal under ``local`` re-reads the interfaces first (at
        most every few seconds): the network may have come up after we started, and a sender
        refused then must be heard now."""
        decision = self.sender_decisions.get(sender)
        if decision is None:
            decision = self._decide(sender)
        if not decision and self.allowlist.refresh_local(time.monotonic()):
            self.sender_decisions.clear()
            decision = self._decide(sender)
        return decision

    def _decide(self, sender: str) -> bool:
        decision = self.allowlist.allows(ipaddress.IPv4Address(sender))
        if len(self.sender_decisions) >= self.SENDER_CACHE_SIZE:
            self.sender_decisions.clear()
        self.sender_decisions[sender] = decision
        return decision

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.sock.close()


class DropSummary:
    """One log line for everything dropped in the last ``DROP_SUMMARY_S``, only when
    something was: "OSC: dropped 1234 malformed, 0 oversize, 56 unknown, 7 from disallowed
    senders in the last 5 s (last malformed: ...)". ``last_reason`` is a fixed text from the
    decoder, never bytes from the datagram."""

    FIELDS = ("malformed", "oversize", "unknown", "denied")

    def __init__(self, counts: OscCounts, interval_s: float = DROP_SUMMARY_S):
        self.counts = counts
        self.interval_s = interval_s
        self.last_reason = ""
        self.snapshot = self._totals()
        self.due_at_s = time.monotonic() + interval_s

    def _totals(self) -> tuple[int, ...]:
        return tuple(getattr(self.counts, name) for name in self.FIELDS)

    def log_if_due(self, now_s: float) -> None:
        if now_s < self.due_at_s:
            return
        totals = self._totals()
        malformed, oversize, unknown, denied = (a - b for a, b in zip(totals, self.snapshot))
        if malformed or oversize or unknown or denied:
            reason = f" (last malformed: {self.last_reason})" if self.last_reason else ""
            log.warning("OSC: dropped %d malformed, %d oversize, %d unknown, %d from disallowed "
                        "senders in the last %.0f s%s", malformed, oversize, unknown, denied,
                        self.interval_s, reason)
        self.snapshot = totals
        self.last_reason = ""
        self.due_at_s = now_s + self.interval_s
