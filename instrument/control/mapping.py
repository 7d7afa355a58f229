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
    takeover = "pickup"      # optional: pickup | jump (default: pickup, except jump for
                             # integer, on/off and choice parameters)

With ``x = cc_value / 127`` the knob moves through the target's own curve: a parameter goes
from ``from`` to ``to`` evenly in its normalized position (so a log-Hz cutoff sweeps evenly in
octaves, not in hertz), a macro from ``from`` to ``to`` linearly; ``exp`` uses ``x ** 2`` in
place of ``x`` (finer control at the ``from`` end). Integer, on/off and choice parameters
divide the knob into equal zones, one per step from ``from`` to ``to`` (on/off: 0..63 off,
64..127 on, as MIDI switches do).

``takeover = "pickup"`` is soft takeover: after a preset load, or after something else (OSC,
another knob, a macro) moved the target, a knob that is far from the target's value does
nothing until it reaches or crosses that value, then follows. ``jump`` sets the value at once.

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
from dataclasses import dataclass
from pathlib import Path

from instrument.errors import InstrumentError
from instrument.tomlfile import parse_toml, read_text, with_source
from instrument.names import nearest

FORMAT_VERSION = 1
CURVES = ("linear", "exp")
TAKEOVERS = ("pickup", "jump")
CC_MAX = 119  # 120..127 are channel mode messages, never controls
CHANNEL_MAX = 15

_TOP_KEYS = {"format", "name", "doc", "cc"}
_CC_KEYS = {"cc", "channel", "target", "from", "to", "curve", "takeover"}
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
    default for the target's kind. ``where`` is ``cc[i]``."""

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


@dataclass(frozen=True)
class Mapping:
    """A loaded mapping file: its controls in file order."""

    name: str
    controls: tuple[CcControl, ...]
    source: str = "<mapping>"
    doc: str = ""


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
    _unknown_keys(data, _TOP_KEYS, "")
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
    tables = data.get("cc")
    if not isinstance(tables, list):
        raise MappingError("cc must be a list of [[cc]] tables", "cc",
                           "write each control as a [[cc]] table with cc and target")
    if not tables:
        raise MappingError("the mapping has no controls", "cc",
                           'add a [[cc]] table, like cc = 74 and target = "macro:cutoff"')
    controls: list[CcControl] = []
    seen: dict[tuple[int | None, int], CcControl] = {}
    for i, table in enumerate(tables):
        control = _control(table, f"cc[{i}]")
        _check_duplicate(control, seen)
        controls.append(control)
    return Mapping(name, tuple(controls), source, doc)


def _control(table, where: str) -> CcControl:
    if not isinstance(table, dict):
        raise MappingError("a control must be a table", where,
                           "write it as [[cc]] with cc = ... and target = ...")
    _unknown_keys(table, _CC_KEYS, f"{where}.")
    if "cc" not in table:
        raise MappingError("control has no cc", where,
                           f"add cc = 74, the controller number 0..{CC_MAX}")
    cc = _whole(table["cc"], "cc", where, f"use a controller number 0..{CC_MAX}")
    if cc in _MODE_MESSAGES:
        raise MappingError(f"cc {cc} is a channel mode message ({_MODE_MESSAGES[cc]}), not a "
                           "control", f"{where}.cc", f"use 0 to {CC_MAX}")
    if not 0 <= cc <= CC_MAX:
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
    return CcControl(cc, channel, target, kind, name, number, lo, hi, curve, takeover, where)


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


def _on(control: CcControl) -> str:
    return "any channel" if control.channel is None else f"channel {control.channel}"


# -- small checks ---------------------------------------------------------------------------------

def _unknown_keys(table: dict, allowed: set, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise MappingError(f"unknown key '{key}'", f"{where}{key}", nearest(key, allowed))


def _whole(value, key: str, where: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{key} = {value!r} is not a whole number", f"{where}.{key}", fix)
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


__all__ = ["CcControl", "Mapping", "MappingError", "TargetKind", "is_mapping_data",
           "load_mapping", "parse_mapping"]
