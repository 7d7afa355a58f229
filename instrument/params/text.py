"""Value <-> text for parameters, chosen by the spec's kind, curve and unit.

What ``format_value`` prints (``parse_value`` reads all of it back, and more):

  Hz       3 significant digits, kHz from 1000:   "440 Hz", "55.0 Hz", "1.20 kHz", "0 Hz"
  dB       one decimal:                           "-6.0 dB"
  ms, s    3 significant digits, s from 1000 ms:  "250 ms", "5.00 ms", "1.50 s", "0 ms"
  cents    signed, one decimal:                   "+7.0 cents"
  other    3 significant digits, at most 2 decimals, then the unit:  "0.50", "12.0 %"
  INTEGER  whole number, then the unit:           "3", "-12 st"
  BOOL     "on" / "off";  CHOICE: its label, "Saw"

``parse_value`` also takes bare numbers in the spec's unit ("1200", "-6", "250"), unit suffixes
in any case with or without a space ("1.2k", "1200hz", "-6db", "1.5 s", "250ms"), "50%" for a
unitless parameter, choice labels case-insensitively or their index, and on/off, true/false,
yes/no, 1/0. Values are clamped to the range; discrete kinds round to the nearest step.
``format_value(parse_value(format_value(v))) == format_value(v)`` for every in-range ``v``.
"""

from __future__ import annotations

import math
import re

from instrument.errors import ParamError
from instrument.params.curves import Curve, Kind

_NUMBER = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*)$")
_TRUE = ("on", "true", "yes", "1")
_FALSE = ("off", "false", "no", "0")
_CENTS = {"": 1.0, "c": 1.0, "ct": 1.0, "cent": 1.0, "cents": 1.0}


def family(spec) -> str:
    """Which text family ``spec`` uses: choice, bool, integer, hz, db, ms, s, cents or plain."""
    if spec.kind == Kind.CHOICE:
        return "choice"
    if spec.kind == Kind.BOOL:
        return "bool"
    if spec.kind == Kind.INTEGER:
        return "integer"
    unit = spec.unit.lower()
    if spec.curve == Curve.DB or unit == "db":
        return "db"
    if unit in ("hz", "ms", "s", "cents"):
        return unit
    return "plain"


def format_value(spec, value: float) -> str:
    """Display text for ``value`` (clamped to the range first)."""
    value = spec.clamp(value)
    fam = family(spec)
    if fam in ("choice", "bool", "integer"):
        step = int(math.floor(value + 0.5))
        if fam == "choice":
            return spec.choices[min(max(step, 0), len(spec.choices) - 1)]
        if fam == "bool":
            return "on" if step else "off"
        return f"{step} {spec.unit}" if spec.unit else str(step)
    if fam == "hz":
        text, rounded = _significant(value)
        if abs(rounded) >= 1000.0:
            return f"{_significant(value / 1000.0)[0]} kHz"
        return f"{text} Hz"
    if fam in ("ms", "s"):
        ms = value if fam == "ms" else value * 1000.0
        text, rounded = _significant(ms)
        if abs(rounded) >= 1000.0:
            return f"{_significant(ms / 1000.0)[0]} s"
        return f"{text} ms"
    if fam == "db":
        return f"{_zero(round(value, 1)):.1f} dB"
    if fam == "cents":
        return f"{_zero(round(value, 1)):+.1f} cents"
    text = _significant(value, max_decimals=2, zero_decimals=2)[0]
    return f"{text} {spec.unit}" if spec.unit else text


def parse_value(spec, text, clamp: bool = True) -> float:
    """The value ``text`` means, clamped to the range (unless ``clamp`` is False: a preset
    checks the range itself to report it); ``ParamError`` naming the parameter, the text and
    what is accepted when it cannot be read. Real numbers pass through."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _snap(spec, spec.clamp(text))
    if not isinstance(text, str):
        raise _junk(spec, text)
    cleaned = text.strip().replace("\u2212", "-")
    fam = family(spec)
    if fam == "choice":
        for index, label in enumerate(spec.choices):
            if cleaned.lower() == label.lower():
                return float(index)
        if cleaned.isdigit() and int(cleaned) < len(spec.choices):
            return float(int(cleaned))
        raise _junk(spec, text)
    if fam == "bool":
        word = cleaned.lower()
        if word in _TRUE:
            return 1.0
        if word in _FALSE:
            return 0.0
        raise _junk(spec, text)
    match = _NUMBER.match(cleaned)
    if not match:
        raise _junk(spec, text)
    number = float(match.group(1))
    scale = _suffixes(spec, fam).get(match.group(2).replace(" ", "").lower())
    if scale is None or not math.isfinite(number * scale):
        raise _junk(spec, text)
    value = number * scale
    return _snap(spec, spec.clamp(value) if clamp else value)


def _snap(spec, value: float) -> float:
    return float(math.floor(value + 0.5)) if spec.kind != Kind.CONTINUOUS else value


def _suffixes(spec, fam: str) -> dict[str, float]:
    if fam == "hz":
        return {"": 1.0, "hz": 1.0, "k": 1000.0, "khz": 1000.0}
    if fam == "db":
        return {"": 1.0, "db": 1.0}
    if fam == "ms":
        return {"": 1.0, "ms": 1.0, "s": 1000.0, "sec": 1000.0}
    if fam == "s":
        return {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001}
    if fam == "cents":
        return _CENTS
    if not spec.unit:
        return {"": 1.0, "%": 0.01}
    return {"": 1.0, spec.unit.replace(" ", "").lower(): 1.0}


def _junk(spec, text) -> ParamError:
    fam = family(spec)
    if fam == "choice":
        listed = ", ".join(repr(c) for c in spec.choices)
        what, fix = "a choice", f"expected one of {listed} or an index 0-{len(spec.choices) - 1}"
    elif fam == "bool":
        what, fix = "on/off", "expected on/off, true/false, yes/no or 1/0"
    elif fam == "hz":
        what, fix = "Hz", "expected a number like '1.2 kHz' or '440'"
    elif fam == "db":
        what, fix = "dB", "expected a number like '-6 dB' or '-6'"
    elif fam in ("ms", "s"):
        what, fix = fam, "expected a time like '250 ms' or '1.5 s'"
    elif fam == "cents":
        what, fix = "cents", "expected a number like '+7 cents' or '-12'"
    else:
        example = format_value(spec, spec.default)
        bare = example.split(" ")[0]
        what = "a whole number" if fam == "integer" else (spec.unit or "a number")
        like = f"'{example}' or '{bare}'" if example != bare else f"'{example}'"
        fix = f"expected a {'whole ' if fam == 'integer' else ''}number like {like}"
    return ParamError(f"cannot read {text!r} as {what}", where=spec.name, fix=fix)


def _significant(x: float, digits: int = 3, max_decimals: int = 6,
                 zero_decimals: int = 0) -> tuple[str, float]:
    """``x`` with ``digits`` significant digits as fixed-point text, and the value it shows.
    Decimals follow the rounded value, so 999.6 gives "1000", never "1000." with a stale
    count: formatting the shown value again gives the same text."""
    first = _decimals(x, digits, max_decimals, zero_decimals)
    text = _fixed(x, first)
    shown = float(text)
    again = _decimals(shown, digits, max_decimals, zero_decimals)
    if again != first:
        text = _fixed(shown, again)
    return text, float(text)


def _decimals(x: float, digits: int, max_decimals: int, zero_decimals: int) -> int:
    if x == 0.0:
        return zero_decimals
    places = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return min(places, max_decimals)


def _fixed(x: float, decimals: int) -> str:
    return f"{_zero(round(x, decimals)):.{decimals}f}"


def _zero(x: float) -> float:
    return 0.0 if x == 0.0 else x  # "-0.0" reads as a glitch; show "0.0"


__all__ = ["format_value", "parse_value", "family"]
