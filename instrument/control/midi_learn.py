"""MIDI learn without a screen: arm a target, move a control, the binding is stored.

Arming, over OSC (any client; every client is told what happens). Each address takes no
argument, or one number: a TouchOSC button's press (above 0.5) acts, its release (0) is
ignored.

=================================  ====================================================
address                            effect
=================================  ====================================================
/learn/param/<node>/<param>        the next control that moves is bound to that parameter
/learn/macro/<n> or <name>         ... to macro n (1-based: ``macro#n``) or by name
/learn/next                        "learn next": each control that moves takes the next
                                   target in the learn order, until /learn/cancel
/learn/cancel                      stop learning (nothing is learned)
/unlearn/param/<node>/<param>      forget the learned control(s) of that parameter
/unlearn/macro/<n> or <name>       ... of that macro (its number and name both)
/learn/clear                       forget every learned control (learned.toml removed)
=================================  ====================================================

From the controller: a mapping's ``[learn]`` button (``instrument.control.mapping``). A press
starts "learn next", the next press stops it.

The learn order ("learn next"): the playing preset's macros in the order it declares them
(``macro#1``, ``macro#2``, ...), then its parameters in the order ``/doc`` lists them (the
preset's voice nodes, then its effect nodes, each node's parameters as the module declares
them). Learning starts at the first target of the order that has no learned control yet, and
each learned control moves on to the next one; a control learned in this session is not
learned again (turning knob 1 a bit more does not take target 2).

Feedback: ``/learn/status s`` (one line of text, the same line as the log: "learned CC 21
channel 1 (7-bit) -> filt.cutoff_hz") and ``/learn/armed s`` (the armed target, "" when
not armed) to every OSC feedback client. Arming times out after ``timeout_s`` (30 s; in
"learn next": 30 s after the last control learned) with one line, as everything else here.

What the moving control is (7-bit, 14-bit pair, NRPN/RPN, a relative encoding, a button)
is decided by ``learn_classify.ControlClassifier``. While armed, the messages the classifier
looks at are its own: they move nothing else. The binding is written to
``<state dir>/learned.toml`` and layered over the mapping in use (``learned_store``), and
works at once and after a restart.

Threads: ``intercept`` runs on the MIDI thread, ``osc`` on the OSC thread; arming and
classifying share ``lock``. Everything that touches the host's mappings and routers, and the
file, runs in ``tick`` on the host's main loop (every 50 ms), where preset loads also run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from instrument.control.learn_classify import SELECT_CCS, ControlClassifier, LearnedControl
from instrument.control.learned_store import (
    BROKEN_FILE, LEARNED_FILE, layered, learned_mapping, overlaps, read_tables, write_tables,
)
from instrument.errors import InstrumentError

log = logging.getLogger("instrument.learn")

TIMEOUT_S = 30.0
PRESS = 64  # a learn-button value at or above this is a press


@dataclass
class _Arm:
    """What learning is armed for: one ``target``, or the ``order`` ("learn next")."""

    target: str | None
    order: list[str] = field(default_factory=list)
    index: int = 0
    since: float = 0.0  # arming, or the last control learned in "learn next"

    @property
    def next(self) -> bool:
        return self.target is None

    def current(self) -> str:
        return self.target if self.target is not None else self.order[self.index]


class MidiLearn:
    """The learn session of one host. ``host`` provides ``plan``, ``mapping``, ``profiles``
    (``(Profile, Mapping)`` pairs), ``midi_ports``, ``feedback`` and ``_make_cc_router()``;
    ``state_dir`` None keeps learned bindings in memory only."""

    def __init__(self, host, state_dir: Path | None, timeout_s: float = TIMEOUT_S):
        self.host = host
        self.path = Path(state_dir) / LEARNED_FILE if state_dir is not None else None
        self.timeout_s = float(timeout_s)
        self.lock = threading.Lock()
        self.classifier = ControlClassifier()
        self.arm: _Arm | None = None
        self.listening = False  # arm is not None (read without the lock on the MIDI thread)
        self.todo: queue.SimpleQueue = queue.SimpleQueue()  # for the main loop
        self.base_mapping = host.mapping
        self.base_profiles = list(host.profiles)
        self.broken = False
        self.tables: list[dict] = []
        self.stored = 0  # bindings written (for status and benchmarks)
        if self.path is not None:
            try:
                self.tables = read_tables(self.path)
            except InstrumentError as exc:
                self.broken = True
                log.warning("learned controls not used: %s (the next learn moves it aside to "
                            "%s)", exc, BROKEN_FILE)
        self._install()
        if self.tables:
            log.info("MIDI learn: %d learned controls from %s", len(self.tables), self.path)

    # ---- MIDI thread ---------------------------------------------------------------------------
    def intercept(self, channel: int, cc: int, value: int, t: float | None, mapping) -> bool:
        """True when this Control Change is learn's (the learn button, or a message the
        classifier watches while armed) and must not be routed."""
        base = mapping if mapping is not None else self.host.mapping
        button = base.learn_button if base is not None else None
        if button is not None and cc == button[0] and button[1] in (None, channel):
            if value >= PRESS:
                self.todo.put(("button",))
            return True
        if cc in SELECT_CCS:  # NRPN/RPN selection: followed always, routed always
            with self.lock:
                self.classifier.feed(channel, cc, value, 0.0)
            return False
        if not self.listening:
            return False
        with self.lock:
            if self.arm is None:
                return False
            if self.classifier.ignored(channel, cc):
                return False  # learned in this "learn next" session: it plays its target
            takes = self.classifier.takes(channel, cc)
            found = self.classifier.feed(channel, cc, value,
                                         time.monotonic() if t is None else t)
            if found is not None:
                self._bound(found)
            return takes

    def _bound(self, found: LearnedControl) -> None:
        """(under lock) ``found`` is learned for the armed target: queue it, move on."""
        arm = self.arm
        target = arm.current()
        if arm.next and arm.index + 1 < len(arm.order):
            arm.index += 1
            arm.since = time.monotonic()
            self.classifier.ignore |= found.keys()
            self.classifier.reset()
            self.todo.put(("store", found, target, self.describe(arm.current())))
        else:
            self.todo.put(("store", found, target, ""))
            self._disarm()
            if arm.next:
                self.todo.put(("say", "learn next: that was the last target; learn off"))

    def _disarm(self) -> None:
        self.arm = None
        self.listening = False
        self.classifier.ignore = set()
        self.classifier.reset()

    # ---- OSC thread ----------------------------------------------------------------------------
    def osc(self, address: str, args) -> bool:
        """Apply one /learn/... or /unlearn/... message; False when it is not one we know
        (or names a target the playing preset does not have: said on /learn/status)."""
        if args:  # a TouchOSC button sends 1 on press, 0 on release: act on the press
            value = args[0] if len(args) == 1 else None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            if not value > 0.5:
                return True
        if address == "/learn/next":
            self.start(None)
            return True
        if address == "/learn/cancel":
            self.todo.put(("cancel",))
            return True
        if address == "/learn/clear":
            self.todo.put(("clear",))
            return True
        for prefix, action in (("/learn/", "arm"), ("/unlearn/", "unlearn")):
            if address.startswith(prefix):
                target = self._target(address[len(prefix):])
                if target is None:
                    self.todo.put(("say", f"{address[:80]}: no such parameter or macro in "
                                          f"{self.host.plan.name}"))
                    return False
                if action == "arm":
                    self.start(target)
                else:
                    self.todo.put(("unlearn", target))
                return True
        return False

    def _target(self, rest: str) -> str | None:
        """'param/filt/cutoff_hz' -> 'filt.cutoff_hz'; 'macro/2' -> 'macro#2'; 'macro/cutoff'
        -> 'macro:cutoff'; None when the playing preset has no such target."""
        plan = self.host.plan
        kind, _, name = rest.partition("/")
        if kind == "param":
            node, _, param = name.partition("/")
            path = f"{node}.{param}"
            return path if any(s.path == path for s in plan.params) else None
        if kind == "macro" and name:
            if name.isascii() and name.isdigit():
                n = int(name)
                return f"macro#{n}" if 1 <= n <= len(plan.macros) else None
            return f"macro:{name}" if any(m.name == name for m in plan.macros) else None
        return None

    # ---- arming (any thread) -------------------------------------------------------------------
    def start(self, target: str | None) -> None:
        """Arm for ``target``, or "learn next" for None."""
        now = time.monotonic()
        with self.lock:
            if target is None:
                order = self.order()
                learned = {t["target"] for t in self.tables}
                index = next((i for i, t in enumerate(order) if t not in learned), None)
                if index is None:
                    self.todo.put(("say", "learn next: every target has a learned control; "
                                          "/learn/clear or /unlearn first"))
                    return
                self.arm = _Arm(None, order, index, now)
            else:
                self.arm = _Arm(target, since=now)
            self.classifier.ignore = set()
            self.classifier.reset()
            self.listening = True
            what = self.describe(self.arm.current())
        self._say(f"learn next: {what}: move a control" if target is None else
                  f"learn {what}: move a control", armed=what)

    def order(self) -> list[str]:
        """The learn order of the playing preset (see the module docstring)."""
        plan = self.host.plan
        return [f"macro#{m.index + 1}" for m in plan.macros] + [s.path for s in plan.params]

    def describe(self, target: str) -> str:
        """'macro#1 (Cutoff)' for a macro number, else the target as written."""
        if target.startswith("macro#"):
            macros = self.host.plan.macros
            n = int(target[6:])
            if 1 <= n <= len(macros):
                return f"{target} ({macros[n - 1].label})"
        return target

    # ---- main loop -----------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Quiet-time decisions, timeouts, and everything queued for the main loop."""
        if self.listening:
            with self.lock:
                arm = self.arm
                if arm is not None:
                    found = self.classifier.poll(now)
                    if found is not None:
                        self._bound(found)
                    elif now - arm.since > self.timeout_s:
                        self._disarm()
                        self.todo.put(("say", f"learn timed out: nothing moved for "
                                              f"{self.timeout_s:.0f} s, "
                                              f"{self.describe(arm.current())} not learned"))
        while True:
            try:
                item = self.todo.get_nowait()
            except queue.Empty:
                return
            getattr(self, "_do_" + item[0])(*item[1:])

    def _do_say(self, text: str) -> None:
        self._say(text, armed=self.describe(self.arm.current()) if self.arm else "")

    def _do_button(self) -> None:
        if self.arm is not None and self.arm.next:
            self._do_cancel()
        else:
            self.start(None)

    def _do_cancel(self) -> None:
        with self.lock:
            was = self.arm
            self._disarm()
        self._say("learn off" if was is not None else "learn: nothing was armed", armed="")

    def _do_store(self, found: LearnedControl, target: str, next_target: str) -> None:
        new = found.table(target)
        replaced = [t for t in self.tables if t["target"] == target or overlaps(t, new)]
        self.tables = [t for t in self.tables if t not in replaced] + [new]
        text = f"learned {found.control_text()} ({found.kind_text()}) -> {target}"
        if found.guess:
            text += f" ({found.guess})"
        if next_target:
            text += f"; next: {next_target}"
        self._save_and_install(text, armed=next_target)

    def _do_unlearn(self, target: str) -> None:
        same = {target}
        plan = self.host.plan
        for i, macro in enumerate(plan.macros):  # a macro by number and by name
            if target in (f"macro#{i + 1}", f"macro:{macro.name}"):
                same |= {f"macro#{i + 1}", f"macro:{macro.name}"}
        gone = [t for t in self.tables if t["target"] in same]
        if not gone:
            self._say(f"unlearn: nothing learned for {target}")
            return
        self.tables = [t for t in self.tables if t not in gone]
        self._save_and_install(f"unlearned {target} ({len(gone)} control"
                               f"{'s' if len(gone) != 1 else ''})")

    def _do_clear(self) -> None:
        n = len(self.tables)
        self.tables = []
        self._save_and_install(f"learn cleared: {n} learned control{'s' if n != 1 else ''} "
                               "forgotten")

    def _save_and_install(self, text: str, armed: str | None = None) -> None:
        saved = self._save()
        self._install()
        self._say(text + ("" if saved else " (not saved: " + saved_why(self.path) + ")"),
                  armed)

    def _save(self) -> bool:
        if self.path is None:
            return False
        try:
            if self.broken:
                self.path.replace(self.path.with_name(BROKEN_FILE))
                self.broken = False
            write_tables(self.path, self.tables)
        except (InstrumentError, OSError) as exc:
            log.error("learned controls not saved: %s", exc)
            return False
        self.stored += 1
        return True

    def _install(self) -> None:
        """The host's mappings (its own and each profile's) with the learned layer on top,
        each port's mapping chosen again, and its routers rebuilt."""
        from instrument.control.profiles import match_profile

        host = self.host
        try:
            learned = learned_mapping(self.tables, self.path or LEARNED_FILE)
        except InstrumentError as exc:  # cannot happen for what learn writes; said, not raised
            log.error("learned controls not used: %s", exc)
            learned = None
        host.mapping = layered(self.base_mapping, learned)
        host.profiles = [(p, layered(m, learned)) for p, m in self.base_profiles]
        for name, port in list(host.midi_ports.items()):
            found = match_profile(host.profiles, name)
            port.mapping = found[1] if found else None
        if getattr(host, "plan", None) is not None:
            host._make_cc_router()

    def _say(self, text: str, armed: str | None = None) -> None:
        """One log line, and the same text to every OSC feedback client."""
        log.info("MIDI learn: %s", text)
        feedback = self.host.feedback
        if feedback is None:
            return
        messages = [("/learn/status", [text])]
        if armed is not None:
            messages.append(("/learn/armed", [armed]))
        with feedback.lock:
            targets = [client.target for client in feedback.clients.values()]
        for target in targets:
            feedback.send(target, messages)


def saved_why(path: Path | None) -> str:
    return "no state folder, --state-dir none" if path is None else "see the log"


__all__ = ["MidiLearn", "TIMEOUT_S"]
