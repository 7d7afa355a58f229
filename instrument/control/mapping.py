"""Controller mappings: which MIDI Control Change moves which parameter or macro.

A mapping is a TOML file in ``mappings/``, written by hand for one controller and usable with
any preset. Format (version 1)::

    format = 1
    name = "Generic controller"
    doc = "optional description"

    # One [[cc]] table per control.
    [[cc]]
    cc = 74                  # controller number, 0..119 (120..127 are channel mode messages)
    channel = 0              # optional, 0..15 (MIDI channel 1 is 0); omitted = any channel
    target = "macro:cutoff"  # "node.param"  a parameter path, like "filt.cutoff_hz"
                             # "macro:NAME"  a macro by name, like "macro:cutoff"
                             # "macro#N"     the preset's N-th macro (1-based), so a bank of
                             #               knobs works for any preset
    from = 0.0               # optional: the value at CC 0; display units for a parameter
                             # (Hz, ms, ...), 0..1 for a macro. Default: the minimum / 0
    to = 1.0                 # optional: the value at CC 127. Default: the maximum / 1
                             # (from > to turns the knob around)
    curve = "linear"         # optional: linear | exp
    takeover = "pickup"      # optional: pickup | jump | scale (default: pickup, except jump
                             # for integer, on/off and choice parameters)
    mode = "absolute"        # optional: absolute | 14bit | relative_twos | relative_signed
                             # | relative_offset (see below)
    steps = 128              # optional, relative modes and NRPN/RPN increment: ticks per
                             # full from..to range (default 128)
    accel = true             # optional, relative modes: acceleration (default true)
    feedback = true          # optional: send the target's value back to the controller
                             # (LED ring, motor fader); default: the file's top-level
                             # ``feedback`` (absolute, 14-bit, NRPN/RPN controls only)

    # Optional: the velocity curve of the controller's keys (instrument.control.velocity).
    [velocity]
    curve = "soft"           # linear (default) | soft | hard | fixed (+ fixed_value = 1..127)
                             # or table = [[in, out], ...] points, MIDI units

    # Optional: MPE zones set when a port with this mapping opens, for an MPE controller that
    # does not send the MPE Configuration Message itself (instrument.control.mpe).
    [mpe]
    lower = 15               # member channels of the lower zone (master channel 1); upper = N

    # High resolution: instead of cc, a control can be an NRPN or an RPN parameter number
    # (0..16383 = MSB * 128 + LSB, or [MSB, LSB]); its value comes by data entry.
    [[cc]]
    nrpn = [1, 20]           # or rpn = 5; exactly one of cc, nrpn, rpn
    target = "filt.cutoff_hz"

    # Optional: a button on the controller that starts and stops MIDI learn ("learn next",
    # see instrument.control.midi_learn). A momentary button: each press (a value of 64 or
    # more) toggles learning. Its cc must not also be a control above.
    [learn]
    cc = 102
    channel = 0              # optional, as for a control

With ``x = cc_value / 127`` the knob moves through the target's own curve: a parameter goes
from ``from`` to ``to`` evenly in its normalized position (so a log-Hz cutoff sweeps evenly in
octaves, not in hertz), a macro from ``from`` to ``to`` linearly; ``exp`` uses ``x ** 2`` in
place of ``x`` (finer control at the ``from`` end). Integer, on/off and choice parameters
divide the knob into equal zones, one per step from ``from`` to ``to`` (on/off: 0..63 off,
64..127 on, as MIDI switches do).

``takeover = "pickup"`` is soft takeover: after a preset load, or after something else (OSC,
another knob, a macro) moved the target, a knob that is far from the target's value does
nothing until it reaches or crosses that value, then follows. ``jump`` sets the value at once.

``takeover = "scale"`` never jumps either, and needs no pickup: while the knob and the value
differ, each knob move moves the value proportionally toward the end of the travel beyond the
value (the value stays between the knob and that end), by at most the knob's own move, so knob
and value meet at that end; from there the knob follows exactly.

``mode = "14bit"``: a 14-bit control, MSB on ``cc`` (0..31) and LSB on ``cc + 32``: value =
MSB * 128 + LSB, 16 384 steps, ``x = value / 16383``. An MSB resets the LSB to 0 (MIDI 1.0),
an LSB alone refines the last MSB; send MSB then LSB. NRPN (CC 99/98 select, MSB/LSB) and RPN
(CC 101/100) controls take their value from data entry (CC 6 MSB, CC 38 LSB, the same 14-bit
rules) and step by one of ``steps`` with CC 96 (increment) / 97 (decrement); RPN null
(101/100 = 127/127, also 99/98 = 127/127) deselects. RPN 0, pitch-bend sensitivity
(semitones = MSB, cents = LSB; increment/decrement: one semitone), is built in: it sets the
bend range of the playing preset until the next preset load; a mapping cannot map RPN 0. A
mapping that binds CC 6, 38, 96..101 as plain controls turns NRPN/RPN decoding off.

Relative encoders send ticks, not positions. ``relative_twos``: 1..63 up, 127..65 down
(two's complement); ``relative_signed``: 1..63 up, 65..127 down (64 + n is -n);
``relative_offset``: 65..127 up, 63..1 down (64 + n is +n, 64 is 0). A tick of n moves the
control's position by n / ``steps`` of its from..to travel (through its curve), from the
target's current value: an encoder never jumps, so it takes no ``takeover``. Acceleration:
a tick less than 20 ms after the previous one counts double the previous tick's factor, up
to x8 (x2, x4, x8 for a fast spin); a slower tick counts x1.

Feedback (``feedback = true`` at the top of the file for every control, or per control):
the instrument sends each such control's target value back to the controller, as the same
message the control sends (7-bit CC, 14-bit MSB/LSB pair, NRPN/RPN selection and data entry)
at the knob position the value is at, so LED rings and motor faders show the real state. A
relative encoder gets the position 0..127 on its CC (what LED rings of encoders take) only
with ``feedback = true`` on the control itself. How and when it is sent: see
``instrument.control.midi_feedback``.

``load_mapping``/``parse_mapping`` check everything that can be checked without a preset and
raise a one-line ``MappingError`` naming the file, the key (``cc[3].target``) and the fix.
Whether a parameter path or macro exists depends on the preset: ``CcRouter`` resolves that
(see ``instrument.control.cc_router``) and lists what is missing instead of failing.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from instrument.control.mpe import parse_mpe
from instrument.control.velocity import VelocityCurve, parse_velocity
from instrument.errors import InstrumentError
from instrument.tomlfile import parse_toml, read_text, with_source
from instrument.names import nearest

FORMAT_VERSION = 1
CURVES = ("linear", "exp")
TAKEOVERS = ("pickup", "jump", "scale")
RELATIVE_MODES = ("relative_twos", "relative_signed", "relative_offset")
MODES = ("absolute", "14bit", *RELATIVE_MODES)
HIRES_MSB_MAX = 31  # 14-bit controls: MSB 0..31, LSB = MSB + 32
PN_MAX = 16383      # NRPN/RPN numbers and values: 14 bits
# Registered/non-registered parameter number controllers (decoded by the router).
CC_DATA_MSB, CC_DATA_LSB, CC_INCREMENT, CC_DECREMENT = 6, 38, 96, 97
CC_NRPN_LSB, CC_NRPN_MSB, CC_RPN_LSB, CC_RPN_MSB = 98, 99, 100, 101
PN_CCS = (CC_DATA_MSB, CC_DATA_LSB, CC_INCREMENT, CC_DECREMENT,
          CC_NRPN_LSB, CC_NRPN_MSB, CC_RPN_LSB, CC_RPN_MSB)
DEFAULT_STEPS = 128
CC_MAX = 119  # 120..127 are channel mode messages, never controls
CHANNEL_MAX = 15

_TOP_KEYS = {"format", "name", "doc", "cc", "learn", "feedback", "velocity", "mpe"}
_TOP_BASIC_KEYS = {"format", "name", "doc", "cc", "learn", "feedback"}  # listed when an
# unknown key is close to none
_LEARN_KEYS = {"cc", "channel"}
_CC_KEYS = {"cc", "nrpn", "rpn", "channel", "target", "from", "to", "curve", "takeover",
            "mode", "steps", "accel", "feedback"}
# The keys every control uses, listed when an unknown key is close to none of _CC_KEYS.
_CC_BASIC_KEYS = {"cc", "channel", "target", "from", "to", "curve", "takeover"}
_TARGET_HELP = 'write "node.param", "macro:NAME" or "macro#N"'
_PARAM_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
_MODE_MESSAGES = {
    120: "All Sound Off", 121: "Reset All Controllers", 122: "Local Control",
    123: "All Notes Off", 124: "Omni Off", 125: "Omni On", 126: "Mono On", 127: "Poly On",
}


class MappingError(InstrumentError):
    """A controller mapping file that cannot be loaded."""


class TargetKind(enum.Enum):
    PARAM = "param"              # "node.param"
    MACRO = "macro"              # "macro:NAME"
    MACRO_NUMBER = "macro#"      # "macro#N", 1-based


@dataclass(frozen=True)
class CcControl:
    """One ``[[cc]]`` table. ``channel`` None means any channel; ``lo``/``hi`` are ``from``/
    ``to`` as written (None when omitted: the target's range); ``takeover`` None means the
    default for the target's kind. ``where`` is ``cc[i]``. ``source`` is "cc", "nrpn" or
    "rpn"; for NRPN/RPN ``cc`` is -1 and ``pn`` the parameter number (MSB * 128 + LSB)."""

    cc: int
    channel: int | None
    target: str
    kind: TargetKind
    name: str        # parameter path or macro name; "" for MACRO_NUMBER
    number: int      # N of "macro#N"; 0 otherwise
    lo: float | None
    hi: float | None
    curve: str
    takeover: str | None
    where: str
    mode: str = "absolute"
    steps: int = DEFAULT_STEPS
    accel: bool = True
    source: str = "cc"
    pn: int = -1
    feedback: bool = False  # send the target's value back to the controller

    @property
    def relative(self) -> bool:
        return self.mode in RELATIVE_MODES

    def label(self) -> str:
        if self.source != "cc":
            return f"{self.source} {self.pn >> 7}/{self.pn & 127}"
        return f"cc {self.cc}" + (f"/{self.cc + 32}" if self.mode == "14bit" else "")


@dataclass(frozen=True)
class Mapping:
    """A loaded mapping file: its controls in file order."""

    name: str
    controls: tuple[CcControl, ...]
    source: str = "<mapping>"
    doc: str = ""
    learn_button: tuple[int, int | None] | None = None  # [learn]: (cc, channel or None)
    velocity: VelocityCurve | None = None  # the keys' velocity curve; None: linear
    mpe: tuple[int, int] | None = None  # MPE zones (lower, upper members) set at port open

    @property
    def feedback(self) -> bool:
        """True when any control sends feedback to the controller."""
        return any(c.feedback for c in self.controls)


def load_mapping(path) -> Mapping:
    """Read and check a mapping file; every problem is a one-line ``MappingError``."""
    return parse_mapping(read_text(path, MappingError, "mapping"), str(Path(path)))


def parse_mapping(text: str, source: str = "<mapping>") -> Mapping:
    """``load_mapping`` for text already in memory; ``source`` names it in errors."""
    data = parse_toml(text, source, MappingError)
    try:
        return _build(data, source)
    except MappingError as exc:  # _build names keys; add the file
        raise with_source(exc, source) from None


def is_mapping_data(data: dict) -> bool:
    """True when parsed TOML is a mapping rather than a preset: it has a top-level ``cc``."""
    return "cc" in data


# -- building -------------------------------------------------------------------------------------

def _build(data: dict, source: str) -> Mapping:
    _unknown_keys(data, _TOP_KEYS, "", _TOP_BASIC_KEYS)
    if "format" not in data:
        raise MappingError("format is missing", "format",
                           f"write format = {FORMAT_VERSION} at the top of the file")
    version = data["format"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise MappingError(f"format = {version!r} is not supported", "format",
                           f"write format = {FORMAT_VERSION} at the top of the file")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise MappingError("name must be a string", "name", 'write name = "My controller"')
    doc = data.get("doc", "")
    if not isinstance(doc, str):
        raise MappingError("doc must be a string", "doc", 'write doc = "what this maps"')
    feedback = _flag(data, "feedback", "")
    tables = data.get("cc")
    if not isinstance(tables, list):
        raise MappingError("cc must be a list of [[cc]] tables", "cc",
                           "write each control as a [[cc]] table with cc and target")
    if not tables:
        raise MappingError("the mapping has no controls", "cc",
                           'add a [[cc]] table, like cc = 74 and target = "macro:cutoff"')
    controls: list[CcControl] = []
    seen: dict[tuple[int | None, int], CcControl] = {}
    seen_pn: dict[tuple[str, int | None, int], CcControl] = {}
    for i, table in enumerate(tables):
        control = _control(table, f"cc[{i}]", bool(feedback))
        if control.source == "cc":
            _check_duplicate(control, seen)
            if control.mode == "14bit":
                _check_duplicate(replace(control, cc=control.cc + 32), seen)
        else:
            _check_duplicate_pn(control, seen_pn)
        controls.append(control)
    pn_cc = next((c for c in controls if c.source == "cc" and
                  ({c.cc, c.cc + 32} if c.mode == "14bit" else {c.cc}) & set(PN_CCS)), None)
    pn = next((c for c in controls if c.source != "cc"), None)
    if pn_cc is not None and pn is not None:
        raise MappingError(f"{pn.where} is an {pn.source.upper()}, but {pn_cc.where} maps "
                           f"cc {pn_cc.cc}, which NRPN/RPN data entry and selection use",
                           f"{pn_cc.where}.cc",
                           "move that control off CC 6, 38 and 96..101, or drop the NRPN/RPN")
    learn = _learn_button(data.get("learn"), controls)
    velocity = None
    if "velocity" in data:
        velocity = parse_velocity(data["velocity"], "velocity", MappingError)
    mpe = parse_mpe(data["mpe"], "mpe", MappingError) if "mpe" in data else None
    return Mapping(name, tuple(controls), source, doc, learn, velocity, mpe)


def _learn_button(table, controls: list[CcControl]) -> tuple[int, int | None] | None:
    """The ``[learn]`` table: the learn button's (cc, channel or None)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise MappingError("learn must be a table", "learn", "write [learn] with cc = 102")
    _unknown_keys(table, _LEARN_KEYS, "learn.")
    if "cc" not in table:
        raise MappingError("the learn button has no cc", "learn", "add cc = 102 under [learn]")
    cc = _whole(table["cc"], "cc", "learn", f"use a controller number 0..{CC_MAX}")
    if not 0 <= cc <= CC_MAX or cc in PN_CCS or cc in (0, 32, 64):
        raise MappingError(f"cc {cc} cannot be the learn button", "learn.cc",
                           f"use 1 to {CC_MAX}, not 32, 64 or 6/38/96..101")
    channel = None
    if "channel" in table:
        fix = "use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel"
        channel = _whole(table["channel"], "channel", "learn", fix)
        if not 0 <= channel <= CHANNEL_MAX:
            raise MappingError(f"channel {channel} is out of range", "learn.channel", fix)
    for c in controls:
        if c.source == "cc" and cc in ({c.cc, c.cc + 32} if c.mode == "14bit" else {c.cc}) \
                and (channel is None or c.channel is None or c.channel == channel):
            raise MappingError(f"the learn button cc {cc} is also mapped by {c.where}",
                               "learn.cc", "give the learn button a cc of its own")
    return cc, channel


def _control(table, where: str, feedback_default: bool = False) -> CcControl:
    if not isinstance(table, dict):
        raise MappingError("a control must be a table", where,
                           "write it as [[cc]] with cc = ... and target = ...")
    _unknown_keys(table, _CC_KEYS, f"{where}.", _CC_BASIC_KEYS)
    sources = [k for k in ("cc", "nrpn", "rpn") if k in table]
    if not sources:
        raise MappingError("control has no cc", where,
                           f"add cc = 74, the controller number 0..{CC_MAX}")
    if len(sources) > 1:
        raise MappingError(f"control has both {sources[0]} and {sources[1]}",
                           f"{where}.{sources[1]}", "keep exactly one of cc, nrpn, rpn")
    source = sources[0]
    mode = _choice(table, "mode", MODES, where) or "absolute"
    pn = -1
    if source != "cc":
        pn = _param_number(table[source], source, where)
        if source == "rpn" and pn == 0:
            raise MappingError("rpn 0 (pitch-bend sensitivity) is built in: it sets the "
                               "preset's bend range", f"{where}.rpn",
                               "remove this control, or use another RPN number")
        if mode != "absolute":
            raise MappingError(f"mode '{mode}' does not apply to an {source.upper()}",
                               f"{where}.mode", "remove mode: NRPN/RPN values are 14-bit")
        cc = -1
    else:
        cc = _whole(table["cc"], "cc", where, f"use a controller number 0..{CC_MAX}")
    if source == "cc" and mode == "14bit" and not 0 <= cc <= HIRES_MSB_MAX:
        raise MappingError(f"cc {cc} cannot be the MSB of a 14-bit control", f"{where}.cc",
                           f"use 0 to {HIRES_MSB_MAX} (its LSB is cc + 32)")
    if source == "cc" and cc in _MODE_MESSAGES:
        raise MappingError(f"cc {cc} is a channel mode message ({_MODE_MESSAGES[cc]}), not a "
                           "control", f"{where}.cc", f"use 0 to {CC_MAX}")
    if source == "cc" and not 0 <= cc <= CC_MAX:
        raise MappingError(f"cc {cc} is out of range", f"{where}.cc", f"use 0 to {CC_MAX}")
    channel = None
    if "channel" in table:
        fix = "use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel"
        channel = _whole(table["channel"], "channel", where, fix)
        if not 0 <= channel <= CHANNEL_MAX:
            raise MappingError(f"channel {channel} is out of range", f"{where}.channel", fix)
    if "target" not in table:
        raise MappingError("control has no target", where,
                           'add target = "node.param", "macro:NAME" or "macro#N"')
    target = table["target"]
    if not isinstance(target, str):
        raise MappingError(f"target = {target!r} is not a string", f"{where}.target",
                           _TARGET_HELP)
    kind, name, number = _parse_target(target, f"{where}.target")
    lo = _number(table, "from", where)
    hi = _number(table, "to", where)
    if kind is not TargetKind.PARAM:
        for key, value in (("from", lo), ("to", hi)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise MappingError(f"{key} = {value:g} is out of range for a macro",
                                   f"{where}.{key}", "use 0 to 1")
    if lo is not None and lo == hi:
        raise MappingError(f"from and to are both {lo:g}, so the knob would do nothing",
                           f"{where}.to", "make them differ, or omit both for the full range")
    curve = _choice(table, "curve", CURVES, where) or "linear"
    takeover = _choice(table, "takeover", TAKEOVERS, where)
    relative = mode in RELATIVE_MODES
    if relative and takeover is not None:
        raise MappingError(f"takeover does not apply to mode '{mode}'", f"{where}.takeover",
                           "remove takeover: a relative encoder moves from the current value")
    steps = DEFAULT_STEPS
    if "steps" in table:
        if not relative and source == "cc":
            raise MappingError(f"steps does not apply to mode '{mode}'", f"{where}.steps",
                               "remove steps, or use a relative mode")
        steps = _whole(table["steps"], "steps", where, "use ticks per full range, 1..16383")
        if not 1 <= steps <= PN_MAX:
            raise MappingError(f"steps {steps} is out of range", f"{where}.steps",
                               "use ticks per full range, 1..16383")
    accel = True
    if "accel" in table:
        if not relative:
            raise MappingError(f"accel does not apply to mode '{mode}'", f"{where}.accel",
                               "remove accel, or use a relative mode")
        accel = table["accel"]
        if not isinstance(accel, bool):
            raise MappingError(f"accel = {accel!r} is not true or false", f"{where}.accel",
                               "write accel = true or accel = false")
    feedback = _flag(table, "feedback", f"{where}.")
    if feedback is None:  # the file's default; an encoder's ring value only when asked for
        feedback = feedback_default and not relative
    return CcControl(cc, channel, target, kind, name, number, lo, hi, curve, takeover, where,
                     mode, steps, accel, source, pn, feedback)


def _param_number(value, key: str, where: str) -> int:
    fix = f"use 0..{PN_MAX} (MSB * 128 + LSB) or [MSB, LSB] with each 0..127"
    if isinstance(value, list):
        if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or
                                  not 0 <= v <= 127 for v in value):
            raise MappingError(f"{key} = {value!r} is not [MSB, LSB]", f"{where}.{key}", fix)
        value = value[0] * 128 + value[1]
    number = _whole(value, key, where, fix)
    if not 0 <= number <= PN_MAX:
        raise MappingError(f"{key} {number} is out of range", f"{where}.{key}", fix)
    if number == PN_MAX:
        raise MappingError(f"{key} 127/127 is the null parameter number", f"{where}.{key}",
                           "use another number: 127/127 deselects")
    return number


def _parse_target(text: str, where: str) -> tuple[TargetKind, str, int]:
    prefix, sep, rest = text.partition(":")
    if sep and prefix == "macro":
        if not rest.strip() or rest != rest.strip():
            raise MappingError(f"cannot read target '{text}'", where,
                               "name the macro right after the colon, like macro:cutoff")
        return TargetKind.MACRO, rest, 0
    prefix, sep, rest = text.partition("#")
    if sep and prefix == "macro":
        if not (rest.isascii() and rest.isdigit()):
            raise MappingError(f"cannot read target '{text}'", where,
                               "number the macro from 1, like macro#1")
        if int(rest) < 1:
            raise MappingError(f"target '{text}': macros count from 1", where,
                               "write macro#1 for the preset's first macro")
        return TargetKind.MACRO_NUMBER, "", int(rest)
    if _PARAM_PATH.fullmatch(text):
        return TargetKind.PARAM, text, 0
    for sep in (":", "#"):  # "macros:cutoff", "Macro#1": a misspelled prefix
        prefix, found, rest = text.partition(sep)
        if found and difflib.get_close_matches(prefix.strip().lower(), ["macro"], cutoff=0.6):
            raise MappingError(f"cannot read target '{text}'", where,
                               f"did you mean 'macro{sep}{rest.strip()}'?")
    raise MappingError(f"cannot read target '{text}'", where, _TARGET_HELP)


def _check_duplicate(control: CcControl, seen: dict) -> None:
    """Two controls that one message could reach: same cc on the same channel, or a cc on any
    channel and the same cc on one channel."""
    keys = [(control.channel, control.cc)]
    keys += [(None, control.cc)] if control.channel is not None else \
        [(ch, control.cc) for ch in range(CHANNEL_MAX + 1)]
    for key in keys:
        other = seen.get(key)
        if other is not None:
            what = f"cc {control.cc} on {_on(control)} is already mapped by {other.where}"
            if other.channel != control.channel:
                what += f", which listens on {_on(other)}"
            raise MappingError(what, f"{control.where}.cc",
                               "give each control its own cc or channel")
    seen[(control.channel, control.cc)] = control


def _check_duplicate_pn(control: CcControl, seen: dict) -> None:
    """``_check_duplicate`` for NRPN/RPN numbers."""
    keys = [(control.source, control.channel, control.pn)]
    keys += [(control.source, None, control.pn)] if control.channel is not None else \
        [(control.source, ch, control.pn) for ch in range(CHANNEL_MAX + 1)]
    for key in keys:
        other = seen.get(key)
        if other is not None:
            raise MappingError(f"{control.label()} on {_on(control)} is already mapped by "
                               f"{other.where}", f"{control.where}.{control.source}",
                               "give each control its own number or channel")
    seen[(control.source, control.channel, control.pn)] = control


def _on(control: CcControl) -> str:
    return "any channel" if control.channel is None else f"channel {control.channel}"


# -- small checks ---------------------------------------------------------------------------------

def _unknown_keys(table: dict, allowed: set, where: str, listed: set | None = None) -> None:
    """``listed``: the keys a "valid: ..." fix names when no key is close (default all)."""
    for key in table:
        if key not in allowed:
            fix = nearest(key, allowed)
            if listed is not None and fix.startswith("valid:"):
                fix = nearest(key, listed)
            raise MappingError(f"unknown key '{key}'", f"{where}{key}", fix)


def _whole(value, key: str, where: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{key} = {value!r} is not a whole number", f"{where}.{key}", fix)
    return value


def _flag(table: dict, key: str, where: str) -> bool | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, bool):
        raise MappingError(f"{key} = {value!r} is not true or false", f"{where}{key}",
                           f"write {key} = true or {key} = false")
    return value


def _number(table: dict, key: str, where: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MappingError(f"{key} = {value!r} is not a number", f"{where}.{key}",
                           "write a number: display units for a parameter, 0..1 for a macro")
    if not math.isfinite(value):
        raise MappingError(f"{key} = {value!r} is not a finite number", f"{where}.{key}",
                           "write a number: display units for a parameter, 0..1 for a macro")
    return float(value)


def _choice(table: dict, key: str, options: tuple[str, ...], where: str) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str):
        raise MappingError(f"{key} = {value!r} is not a string", f"{where}.{key}",
                           "write one of " + ", ".join(f'"{o}"' for o in options))
    if value not in options:
        raise MappingError(f"{key} '{value}' is unknown", f"{where}.{key}",
                           nearest(value, options))
    return value


__all__ = ["CcControl", "MODES", "Mapping", "MappingError", "PN_CCS", "RELATIVE_MODES",
           "TargetKind", "is_mapping_data",
           "load_mapping", "parse_mapping"]
