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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Sequence

from instrument.control.mapping import CcControl, Mapping, MappingError, TargetKind
from instrument.graph.plan import MacroSlot, ParamSlot
from instrument.names import nearest

CC_VALUES = 128
PICKUP_STEPS = 2.0  # "close enough to take over": 2 CC steps of the control's travel
# Target still equal to what a control wrote (float64 table; 1e-9 is far below 1/127 steps).
_SAME = 1e-9


class _Binding:
    """One resolved control: what its 128 positions mean and its takeover state."""

    __slots__ = ("control", "text", "table", "param", "macro", "pickup", "lo", "hi",
                 "threshold", "sent", "knob")

    def __init__(self, control: CcControl, text: str, table: tuple[float, ...],
                 param: int, macro: MacroSlot | None, pickup: bool):
        self.control = control
        self.text = text
        self.table = table            # knob position 0..127 -> normalized target
        self.param = param            # parameter index, or -1 for a macro
        self.macro = macro
        self.pickup = pickup
        self.lo = min(table[0], table[-1])
        self.hi = max(table[0], table[-1])
        self.threshold = PICKUP_STEPS / 127.0 * (self.hi - self.lo)
        self.sent: float | None = None  # what this control last wrote (None: never)
        self.knob: float | None = None  # the target its previous message meant


class CcRouter:
    """Routes Control Change messages through ``mapping`` to the parameters of one plan.

    ``unresolved`` lists, one line each, the controls whose target this preset lacks (unknown
    parameter or macro, ``macro#N`` beyond its macros, ``from``/``to`` outside the parameter's
    range); those controls are ignored. ``str(router)`` is a readable table of the bindings.
    """

    def __init__(self, mapping: Mapping, params: Sequence[ParamSlot],
                 macros: Sequence[MacroSlot], current_norm: Callable[[int], float]):
        self.mapping = mapping
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
            channels = range(16) if control.channel is None else (control.channel,)
            for ch in channels:
                self._lookup[ch * CC_VALUES + control.cc] = binding
        self._bindings = tuple(bindings)
        self.unresolved: tuple[str, ...] = tuple(unresolved)

    # -- per message ------------------------------------------------------------------------------

    def handle(self, channel: int, cc: int, value: int) -> list[tuple[int, float]]:
        """The ``(param_index, norm)`` pairs that CC ``cc`` = ``value`` on ``channel`` (0..15)
        writes; ``[]`` for an unmapped or out-of-range message, a pickup knob that has not taken
        over yet, or a value the target already has."""
        if not (0 <= channel < 16 and 0 <= cc < CC_VALUES and 0 <= value < CC_VALUES):
            return []
        b = self._lookup[channel * CC_VALUES + cc]
        if b is None:
            return []
        target = b.table[value]
        macro = b.macro
        current = self._macro_norm[macro.index] if macro is not None \
            else self._current_norm(b.param)
        knob, b.knob = b.knob, target
        if b.pickup and not _takes_over(b, current, target, knob):
            return []
        b.sent = target
        if target == current:
            return []
        if macro is not None:
            self._macro_norm[macro.index] = target
            return macro.targets_for(target)
        return [(b.param, target)]

    # -- macros -----------------------------------------------------------------------------------

    def macro_value(self, name: str) -> float:
        """The macro's current normalized value: its initial value until something moves it."""
        return self._macro_norm[self._macro_by_name[name].index]

    def set_macro_value(self, name: str, norm: float) -> None:
        """Record that something other than this router moved macro ``name`` to ``norm``."""
        self._macro_norm[self._macro_by_name[name].index] = min(max(float(norm), 0.0), 1.0)

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
        return _Binding(control, text, table, -1, macro, control.takeover != "jump")

    def __str__(self) -> str:
        lines = [f"{self.mapping.name} ({self.mapping.source})"]
        for b in self._bindings:
            c = b.control
            ch = "any" if c.channel is None else str(c.channel)
            mode = "pickup" if b.pickup else "jump"
            lines.append(f"  cc {c.cc:<3} ch {ch:<3} -> {b.text}, {c.curve}, {mode}")
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


# -- tables ---------------------------------------------------------------------------------------

def _shape(curve: str, x: float) -> float:
    return x * x if curve == "exp" else x


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
    if spec.is_discrete:
        # Equal zones, one per step: from_norm's rounding would give the end steps half zones.
        steps = int(abs(hi - lo)) + 1
        sign = 1.0 if hi >= lo else -1.0
        table = tuple(spec.to_norm(lo + sign * min(int(_shape(control.curve, i / 127.0) * steps),
                                                   steps - 1))
                      for i in range(CC_VALUES))
    else:
        table = _continuous_table(spec.to_norm(lo), spec.to_norm(hi), control.curve)
    takeover = control.takeover or ("jump" if spec.is_discrete else "pickup")
    text = f"{slot.path} {spec.format(lo)}..{spec.format(hi)}"
    return _Binding(control, text, table, slot.index, None, takeover == "pickup")


__all__ = ["CcRouter", "PICKUP_STEPS"]
