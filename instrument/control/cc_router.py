"""``CcRouter``: MIDI Control Change messages -> parameter writes, for one mapping and one preset.

Pure logic, no MIDI library: the live runtime converts each message at the edge and calls
``handle(channel, cc, value)``; it gets ``(param_index, norm)`` pairs to write into the
parameter table, or ``[]``. Everything that depends on the preset is resolved once, in the
constructor: each control's parameter index or macro, its takeover mode and a table of the 128
normalized values its knob positions mean. ``handle`` is then one list index, one table lookup
and a few comparisons: under 2 us per message on a laptop (``test_handle_is_cheap`` measures
it). It runs on the host, off the audio thread, and never raises for int channel/cc/value.

Contract with the caller:
- Build a new router on every preset load (or plan swap): indices and macros belong to one
  plan, and a fresh router makes every pickup knob take over again.
- ``current_norm(param_index)`` returns the parameter's current normalized *target* (the
  parameter table), including the pairs this router returned, written before the next
  ``handle`` call. That is how the router notices that something else moved a parameter.
- When something other than this router moves a macro (OSC, a program), tell it with
  ``set_macro_value``: a macro's current value is the router's own record of it.

Soft takeover (``pickup``): a control is *in control* while the target still holds what it last
wrote; then it follows the knob exactly. Otherwise (fresh router, or the target was moved by
something else) a knob position more than 2/127 of the control's normalized travel from the
target's value does nothing, until the knob reaches that value or crosses it between two
messages. A value outside the control's ``from``..``to`` range counts as the nearest end of it,
so such a knob takes over at that end instead of never.

Scale takeover (``scale``): never a jump and no dead zone. While not in control, each knob move
from k0 to k1 moves the value v toward the end E of the travel beyond it (the end on v's side
of the knob): v' = E + (v - E) * (k1 - E) / (k0 - E). The value moves by at most the knob's
move and stays between the knob and E; they meet at E (or where the knob reaches or crosses
the value), and from there the knob follows exactly. A knob's first message only tells where
it is.

High resolution and encoders (see ``instrument.control.mapping``): a 14-bit control keeps its
MSB and LSB; NRPN/RPN selection and data entry are decoded per channel here (with RPN 0, the
pitch-bend sensitivity, passed to ``bend_range(channel, semitones)``); a relative control keeps
a position 0..1 along its travel, re-read from the target when something else moved it.
``handle`` takes the message time ``t`` (seconds, monotonic) for encoder acceleration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Sequence

from instrument.control.mapping import (
    CC_DATA_LSB, CC_DATA_MSB, CC_INCREMENT, CC_NRPN_LSB, CC_NRPN_MSB, CC_RPN_LSB,
    CC_RPN_MSB, PN_CCS, CcControl, Mapping, MappingError, TargetKind,
)
from instrument.graph.plan import MacroSlot, ParamSlot
from instrument.names import nearest

CC_VALUES = 128
PICKUP_STEPS = 2.0  # "close enough to take over": 2 CC steps of the control's travel
# Target still equal to what a control wrote (float64 table; 1e-9 is far below 1/127 steps).
_SAME = 1e-9
HIRES_MAX = 16383          # 14-bit values: x = value / 16383
ACCEL_WINDOW_S = 0.020     # encoder ticks closer than this count double the previous tick...
ACCEL_MAX = 8              # ... up to x8
BEND_RANGE_MAX_ST = 48.0   # as presets allow

_JUMP, _PICKUP, _SCALE = 0, 1, 2
_ABSOLUTE, _HIRES, _TWOS, _SIGNED, _OFFSET = range(5)
_MODES = {"absolute": _ABSOLUTE, "14bit": _HIRES, "relative_twos": _TWOS,
          "relative_signed": _SIGNED, "relative_offset": _OFFSET}
_TAKEOVERS = {"jump": _JUMP, "pickup": _PICKUP, "scale": _SCALE}


def relative_ticks(mode: str, value: int) -> int:
    """Signed ticks that a relative encoder's CC value means (0: none)."""
    if _MODES[mode] not in (_TWOS, _SIGNED, _OFFSET):
        raise ValueError(f"{mode} is not a relative mode")
    return _ticks(_MODES[mode], value)


def _ticks(m: int, value: int) -> int:
    if m == _TWOS:
        return value - 128 if value >= 64 else value
    if m == _SIGNED:
        return -(value - 64) if value > 64 else (0 if value == 64 else value)
    return value - 64


class _Binding:
    """One resolved control: what its 128 positions mean and its takeover state."""

    __slots__ = ("control", "text", "table", "value_at", "position_of", "param", "macro",
                 "takeover", "pickup", "mode", "lo", "hi", "threshold", "sent", "knob",
                 "engaged", "msb", "pos", "last_t", "factor")

    def __init__(self, control: CcControl, text: str, table: tuple[float, ...],
                 param: int, macro: MacroSlot | None, takeover: str,
                 value_at: Callable[[float], float], position_of: Callable[[float], float]):
        self.control = control
        self.text = text
        self.table = table            # knob position 0..127 -> normalized target
        self.value_at = value_at      # position x in [0, 1] -> normalized target
        self.position_of = position_of  # normalized target -> position (inverse, nearest)
        self.param = param            # parameter index, or -1 for a macro
        self.macro = macro
        self.takeover = _TAKEOVERS[takeover]
        self.pickup = self.takeover == _PICKUP
        self.mode = _MODES[control.mode]
        self.lo = min(table[0], table[-1])
        self.hi = max(table[0], table[-1])
        self.threshold = PICKUP_STEPS / 127.0 * (self.hi - self.lo)
        self.sent: float | None = None  # what this control last wrote (None: never)
        self.knob: float | None = None  # the target its previous message meant
        self.engaged = False            # scale takeover: knob and value have met
        self.msb = -1                   # 14-bit: the last MSB (-1: none yet)
        self.pos: float | None = None   # relative: position 0..1 along the travel
        self.last_t = -1.0              # relative: time of the previous tick
        self.factor = 1                 # relative: acceleration of the previous tick


class CcRouter:
    """Routes Control Change messages through ``mapping`` to the parameters of one plan.

    ``unresolved`` lists, one line each, the controls whose target this preset lacks (unknown
    parameter or macro, ``macro#N`` beyond its macros, ``from``/``to`` outside the parameter's
    range); those controls are ignored. ``str(router)`` is a readable table of the bindings.
    """

    def __init__(self, mapping: Mapping, params: Sequence[ParamSlot],
                 macros: Sequence[MacroSlot], current_norm: Callable[[int], float],
                 bend_range: Callable[[int, float], None] | None = None,
                 bend_range_st: float = 2.0):
        self.mapping = mapping
        self._bend_range = bend_range
        self.bend_range_st = float(bend_range_st)  # the last RPN 0 value (any channel)
        # NRPN/RPN decoding, per channel: selected kind ("nrpn", "rpn" or None), parameter
        # number MSB/LSB, data entry MSB (-1: none since the selection).
        self._pn_on = not any(c.source == "cc" and
                              ({c.cc, c.cc + 32} if c.mode == "14bit" else {c.cc}) &
                              set(PN_CCS) for c in mapping.controls)
        self._pn_kind: list[str | None] = [None] * 16
        self._pn_msb = [127] * 16
        self._pn_lsb = [127] * 16
        self._pn_data = [-1] * 16
        self._pn_bindings: dict[tuple[str, int | None, int], _Binding] = {}
        self._current_norm = current_norm
        self._macros = tuple(macros)
        self._macro_by_name = {m.name: m for m in self._macros}
        self._macro_norm = [float(m.initial_norm) for m in self._macros]
        self._lookup: list[_Binding | None] = [None] * (16 * CC_VALUES)
        bindings, unresolved = [], []
        by_path = {slot.path: slot for slot in params}
        for control in mapping.controls:
            try:
                binding = self._resolve(control, by_path)
            except MappingError as exc:
                where = f"{mapping.source}: {exc.where}"
                unresolved.append(MappingError(exc.what, where, exc.fix).one_line())
                continue
            bindings.append(binding)
            if control.source != "cc":
                self._pn_bindings[(control.source, control.channel, control.pn)] = binding
                continue
            channels = range(16) if control.channel is None else (control.channel,)
            for ch in channels:
                self._lookup[ch * CC_VALUES + control.cc] = binding
                if control.mode == "14bit":
                    self._lookup[ch * CC_VALUES + control.cc + 32] = binding
        self._bindings = tuple(bindings)
        self.unresolved: tuple[str, ...] = tuple(unresolved)

    # -- per message ------------------------------------------------------------------------------

    def handle(self, channel: int, cc: int, value: int,
               t: float | None = None) -> list[tuple[int, float]]:
        """The ``(param_index, norm)`` pairs that CC ``cc`` = ``value`` on ``channel`` (0..15)
        writes; ``[]`` for an unmapped or out-of-range message, a pickup knob that has not taken
        over yet, or a value the target already has. ``t``: the message time in seconds
        (monotonic; default now), for encoder acceleration."""
        if not (0 <= channel < 16 and 0 <= cc < CC_VALUES and 0 <= value < CC_VALUES):
            return []
        b = self._lookup[channel * CC_VALUES + cc]
        if b is None:
            if self._pn_on and cc in PN_CCS:
                return self._pn_message(channel, cc, value)
            return []
        mode = b.mode
        if mode == _ABSOLUTE:
            return self._absolute(b, b.table[value])
        if mode == _HIRES:
            if cc == b.control.cc:
                b.msb = value  # an MSB resets the LSB to 0
                return self._absolute(b, b.value_at(value * 128 / HIRES_MAX))
            if b.msb < 0:
                return []  # an LSB with no MSB yet: nothing to refine
            return self._absolute(b, b.value_at((b.msb * 128 + value) / HIRES_MAX))
        ticks = _ticks(mode, value)
        if ticks == 0:
            return []
        if b.control.accel:
            now = time.monotonic() if t is None else t
            fast = b.last_t >= 0.0 and 0.0 <= now - b.last_t < ACCEL_WINDOW_S
            b.factor = min(b.factor * 2, ACCEL_MAX) if fast else 1
            b.last_t = now
            ticks *= b.factor
        return self._step(b, ticks / b.control.steps)

    def _current(self, b: _Binding) -> float:
        macro = b.macro
        return self._macro_norm[macro.index] if macro is not None \
            else self._current_norm(b.param)

    def _write(self, b: _Binding, target: float, current: float) -> list[tuple[int, float]]:
        b.sent = target
        if target == current:
            return []
        macro = b.macro
        if macro is not None:
            self._macro_norm[macro.index] = target
            return macro.targets_for(target)
        return [(b.param, target)]

    def _absolute(self, b: _Binding, target: float) -> list[tuple[int, float]]:
        """A knob position that means ``target``, through the control's takeover."""
        current = self._current(b)
        knob, b.knob = b.knob, target
        if b.takeover == _PICKUP:
            if not _takes_over(b, current, target, knob):
                return []
        elif b.takeover == _SCALE:
            scaled = _scaled(b, current, target, knob)
            if scaled is None:
                return []
            target = scaled
        return self._write(b, target, current)

    def _step(self, b: _Binding, dx: float) -> list[tuple[int, float]]:
        """Move a relative control's position by ``dx`` (of its whole travel)."""
        current = self._current(b)
        if b.pos is None or b.sent is None or not abs(current - b.sent) <= _SAME:
            b.pos = b.position_of(current)  # first tick, or something else moved the target
        b.pos = min(max(b.pos + dx, 0.0), 1.0)
        return self._write(b, b.value_at(b.pos), current)

    # -- NRPN / RPN -------------------------------------------------------------------------------

    def _pn_message(self, ch: int, cc: int, value: int) -> list[tuple[int, float]]:
        if cc == CC_NRPN_MSB or cc == CC_RPN_MSB:
            self._pn_select(ch, "nrpn" if cc == CC_NRPN_MSB else "rpn", value, None)
            return []
        if cc == CC_NRPN_LSB or cc == CC_RPN_LSB:
            self._pn_select(ch, "nrpn" if cc == CC_NRPN_LSB else "rpn", None, value)
            return []
        kind = self._pn_kind[ch]
        if kind is None:
            return []
        number = self._pn_msb[ch] * 128 + self._pn_lsb[ch]
        if cc == CC_DATA_MSB:
            self._pn_data[ch] = value
            return self._pn_value(ch, kind, number, value * 128)
        if cc == CC_DATA_LSB:
            if self._pn_data[ch] < 0:
                return []
            return self._pn_value(ch, kind, number, self._pn_data[ch] * 128 + value)
        sign = 1 if cc == CC_INCREMENT else -1
        if kind == "rpn" and number == 0:
            self._set_bend_range(ch, self.bend_range_st + sign)
            return []
        b = self._pn_binding(ch, kind, number)
        if b is None:
            return []
        return self._step(b, sign / b.control.steps)

    def _pn_select(self, ch: int, kind: str, msb: int | None, lsb: int | None) -> None:
        if self._pn_kind[ch] != kind:  # switching NRPN <-> RPN: the other half is unknown
            self._pn_msb[ch] = self._pn_lsb[ch] = 0
        if msb is not None:
            self._pn_msb[ch] = msb
        if lsb is not None:
            self._pn_lsb[ch] = lsb
        self._pn_data[ch] = -1
        null = self._pn_msb[ch] == 127 and self._pn_lsb[ch] == 127
        self._pn_kind[ch] = None if null else kind
        if null:
            self._pn_msb[ch] = self._pn_lsb[ch] = 127

    def _pn_binding(self, ch: int, kind: str, number: int) -> _Binding | None:
        b = self._pn_bindings.get((kind, ch, number))
        return b if b is not None else self._pn_bindings.get((kind, None, number))

    def _pn_value(self, ch: int, kind: str, number: int, v: int) -> list[tuple[int, float]]:
        if kind == "rpn" and number == 0:  # pitch-bend sensitivity: semitones, cents
            self._set_bend_range(ch, (v >> 7) + min(v & 127, 99) / 100.0)
            return []
        b = self._pn_binding(ch, kind, number)
        if b is None:
            return []
        return self._absolute(b, b.value_at(v / HIRES_MAX))

    def _set_bend_range(self, ch: int, semitones: float) -> None:
        self.bend_range_st = min(max(semitones, 0.0), BEND_RANGE_MAX_ST)
        if self._bend_range is not None:
            self._bend_range(ch, self.bend_range_st)

    # -- macros -----------------------------------------------------------------------------------

    def macro_value(self, name: str) -> float:
        """The macro's current normalized value: its initial value until something moves it."""
        return self._macro_norm[self._macro_by_name[name].index]

    def set_macro_value(self, name: str, norm: float) -> None:
        """Record that something other than this router moved macro ``name`` to ``norm``."""
        self._macro_norm[self._macro_by_name[name].index] = min(max(float(norm), 0.0), 1.0)

    # -- views for feedback (any thread; reads only) ----------------------------------------------

    def positions(self, values: Sequence[float], macro_norms: Sequence[float]) -> list[tuple]:
        """``(control, position, norm, value_at)`` for each control with ``feedback``: the
        position 0..1 of its travel (through its ``from``/``to`` and curve) at which its
        target's value ``norm`` lies, and its position -> value function (a knob position that
        means the same value, a zone of a choice, needs nothing sent). ``values``: the plan's
        normalized parameter values; ``macro_norms``: the macros', by index. What a motor
        fader or LED ring should show (``midi_feedback`` sends it)."""
        out = []
        for b in self._bindings:
            if b.control.feedback:
                macro = b.macro
                norm = float(macro_norms[macro.index] if macro is not None else values[b.param])
                out.append((b.control, b.position_of(norm), norm, b.value_at))
        return out

    def ghosts(self) -> dict[tuple[str, int], float]:
        """Where the knobs of pickup and scale controls are while they do not hold their
        target's value: ``{("param", index) or ("macro", index): knob_norm}``, the target value
        the knob's last position means. A control that took over (knob and value met), a jump
        or relative control, or a knob not moved since this router was built has none."""
        out = {}
        for b in self._bindings:
            knob = b.knob
            if knob is None or b.takeover == _JUMP:
                continue
            if abs(knob - self._current(b)) > _SAME:
                key = ("macro", b.macro.index) if b.macro is not None else ("param", b.param)
                out[key] = knob
        return out

    # -- resolution (once) ------------------------------------------------------------------------

    def _resolve(self, control: CcControl, by_path: dict[str, ParamSlot]) -> _Binding:
        where = f"{control.where}.target"
        if control.kind is TargetKind.PARAM:
            slot = by_path.get(control.name)
            if slot is None:
                raise MappingError(f"this preset has no parameter '{control.name}'", where,
                                   nearest(control.name, by_path))
            return _param_binding(control, slot)
        if control.kind is TargetKind.MACRO:
            macro = self._macro_by_name.get(control.name)
            if macro is None:
                raise MappingError(f"this preset has no macro '{control.name}'", where,
                                   nearest(control.name, self._macro_by_name))
        else:
            if control.number > len(self._macros):
                n = len(self._macros)
                raise MappingError(f"this preset has no {control.target}", where,
                                   f"it has {n} macro{'s' if n != 1 else ''}" if n else
                                   "it has no macros")
            macro = self._macros[control.number - 1]
        lo = 0.0 if control.lo is None else control.lo
        hi = 1.0 if control.hi is None else control.hi
        table = _continuous_table(lo, hi, control.curve)
        text = f"macro:{macro.name} ({macro.label})"
        if control.kind is TargetKind.MACRO_NUMBER:
            text = f"{control.target} = {text}"
        value_at, position_of = _continuous_curve(lo, hi, control.curve)
        return _Binding(control, text, table, -1, macro, control.takeover or "pickup",
                        value_at, position_of)

    def __str__(self) -> str:
        lines = [f"{self.mapping.name} ({self.mapping.source})"]
        for b in self._bindings:
            c = b.control
            ch = "any" if c.channel is None else str(c.channel)
            mode = c.mode if c.relative else ("jump", "pickup", "scale")[b.takeover]
            if c.mode == "14bit":
                mode = f"14-bit, {mode}"
            if c.source == "cc" and c.mode != "14bit":
                lines.append(f"  cc {c.cc:<3} ch {ch:<3} -> {b.text}, {c.curve}, {mode}")
            else:
                lines.append(f"  {c.label()} ch {ch} -> {b.text}, {c.curve}, {mode}")
        lines += [f"  unresolved: {line}" for line in self.unresolved]
        return "\n".join(lines)


def _takes_over(b: _Binding, current: float, target: float, knob: float | None) -> bool:
    """Soft takeover: may a pickup control write ``target`` now? ``knob`` is what its previous
    message meant."""
    if b.sent is not None and abs(current - b.sent) <= _SAME:
        return True  # still in control: follow
    if current != current:  # NaN in the table: nothing to pick up, take over
        return True
    current = min(max(current, b.lo), b.hi)  # the nearest value this knob can reach
    if abs(target - current) <= b.threshold:
        return True
    return knob is not None and (knob - current) * (target - current) <= 0.0


def _scaled(b: _Binding, current: float, target: float, knob: float | None) -> float | None:
    """Scale takeover: what a knob moving from ``knob`` to ``target`` writes (None: nothing)."""
    if b.engaged and b.sent is not None and abs(current - b.sent) <= _SAME:
        return target  # met: follow
    if current != current:  # NaN in the table: nothing to scale, take over
        b.engaged = True
        return target
    current = min(max(current, b.lo), b.hi)
    if abs(target - current) <= _SAME or (knob is not None and
                                          (knob - current) * (target - current) <= 0.0):
        b.engaged = True  # reached or crossed the value: at most the knob's move
        return target
    b.engaged = False
    if knob is None:
        return None  # the first message: where the knob is, not where it goes
    end = b.hi if current > knob else b.lo
    if knob == end:
        return None
    value = end + (current - end) * (target - end) / (knob - end)
    if abs(value - target) <= _SAME:
        b.engaged = True
        return target
    return value


# -- tables ---------------------------------------------------------------------------------------

def _shape(curve: str, x: float) -> float:
    return x * x if curve == "exp" else x


def _continuous_curve(n0: float, n1: float, curve: str):
    """(position -> target, target -> position) for a continuous travel n0..n1."""
    def value_at(x: float) -> float:
        if x >= 1.0:
            return n1
        return n0 + (n1 - n0) * _shape(curve, x) if x > 0.0 else n0

    def position_of(norm: float) -> float:
        if not norm == norm or n1 == n0:
            return 0.0
        u = min(max((norm - n0) / (n1 - n0), 0.0), 1.0)
        return math.sqrt(u) if curve == "exp" else u

    return value_at, position_of


def _continuous_table(n0: float, n1: float, curve: str) -> tuple[float, ...]:
    """Position i -> n0 + (n1 - n0) * shape(i / 127), with both ends exact."""
    inner = [n0 + (n1 - n0) * _shape(curve, i / 127.0) for i in range(1, CC_VALUES - 1)]
    return (n0, *inner, n1)


def _param_binding(control: CcControl, slot: ParamSlot) -> _Binding:
    spec = slot.spec
    where = control.where
    ends = []
    for key, value, default in (("from", control.lo, spec.min), ("to", control.hi, spec.max)):
        if value is None:
            ends.append(default)
            continue
        if not spec.min <= value <= spec.max:
            raise MappingError(f"{key} = {value:g} is out of range for {slot.path}",
                               f"{where}.{key}",
                               f"use {spec.format(spec.min)} to {spec.format(spec.max)}")
        if spec.is_discrete and value != int(value):
            raise MappingError(f"{key} = {value:g} is not a whole step of {slot.path}",
                               f"{where}.{key}", "use a whole number")
        ends.append(value)
    lo, hi = ends
    curve = control.curve
    n0, n1 = spec.to_norm(lo), spec.to_norm(hi)
    if spec.is_discrete:
        # Equal zones, one per step: from_norm's rounding would give the end steps half zones.
        steps = int(abs(hi - lo)) + 1
        sign = 1.0 if hi >= lo else -1.0

        def value_at(x: float) -> float:
            x = min(max(x, 0.0), 1.0)
            return spec.to_norm(lo + sign * min(int(_shape(curve, x) * steps), steps - 1))

        def position_of(norm: float) -> float:  # the middle of the value's zone
            u = 0.0 if not norm == norm or n1 == n0 else \
                min(max((norm - n0) / (n1 - n0), 0.0), 1.0)
            y = (round(u * (steps - 1)) + 0.5) / steps
            return math.sqrt(y) if curve == "exp" else y

        table = tuple(value_at(i / 127.0) for i in range(CC_VALUES))
    else:
        table = _continuous_table(n0, n1, curve)
        value_at, position_of = _continuous_curve(n0, n1, curve)
    takeover = control.takeover or ("jump" if spec.is_discrete else "pickup")
    text = f"{slot.path} {spec.format(lo)}..{spec.format(hi)}"
    return _Binding(control, text, table, slot.index, None, takeover, value_at, position_of)


__all__ = ["ACCEL_MAX", "ACCEL_WINDOW_S", "CcRouter", "HIRES_MAX", "PICKUP_STEPS",
           "relative_ticks"]
