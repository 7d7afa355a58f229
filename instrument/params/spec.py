"""``ParamSpec``: a parameter declared once, as data.

Everything outside the DSP talks in normalized [0, 1]; presets store display units. ``to_norm``
and ``from_norm`` are exact inverses (continuous kinds round-trip to ~1e-12; discrete kinds
exactly), computed by the same body the engine runs (``curves``). Text lives here too
(``format``/``parse``, see ``text``). Construction never raises: ``problems()`` lists what is
wrong, and module validation reports it.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass

from instrument.errors import ParamError
from instrument.params.curves import Curve, Kind, norm_to_value, value_to_norm
from instrument.params.smoothing import Smoothing
from instrument.params.text import format_value, parse_value

# The interpreted body of the njit functions: identical math, no JIT on the control side.
_norm_to_value = norm_to_value.py_func
_value_to_norm = value_to_norm.py_func


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: identity, range, mapping, kind, smoothing and documentation.

    CHOICE implies ``min`` 0 and ``max`` ``len(choices) - 1``; BOOL implies 0 and 1 (use the
    ``choice``/``toggle`` constructors). Discrete kinds never smooth. ``skew`` is the EXP
    exponent: ``value = min + (max - min) * norm ** skew``.
    """

    name: str
    label: str
    unit: str
    min: float
    max: float
    default: float
    curve: Curve = Curve.LINEAR
    kind: Kind = Kind.CONTINUOUS
    choices: tuple[str, ...] = ()
    skew: float = 1.0
    smoothing: Smoothing = Smoothing.ONE_POLE
    smoothing_ms: float = 20.0
    doc: str = ""

    def __post_init__(self) -> None:
        # Normalize what can be normalized (ints -> floats, codes -> enums, list -> tuple);
        # leave anything else as given so that problems() can name it.
        for field_name in ("min", "max", "default", "skew", "smoothing_ms"):
            value = getattr(self, field_name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                object.__setattr__(self, field_name, float(value))
        for field_name, enum_type in (("curve", Curve), ("kind", Kind), ("smoothing", Smoothing)):
            try:
                object.__setattr__(self, field_name, enum_type(getattr(self, field_name)))
            except (ValueError, TypeError):
                pass
        if isinstance(self.choices, list):
            object.__setattr__(self, "choices", tuple(self.choices))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def choice(cls, name: str, label: str, choices: tuple[str, ...], default: int | str = 0,
               doc: str = "") -> "ParamSpec":
        """A CHOICE parameter; ``default`` is an index or a label."""
        choices = tuple(choices)
        if isinstance(default, str):
            lowered = [c.lower() for c in choices]
            default = lowered.index(default.lower()) if default.lower() in lowered else -1
        return cls(name, label, "", 0.0, float(len(choices) - 1), default, kind=Kind.CHOICE,
                   choices=choices, smoothing=Smoothing.NONE, smoothing_ms=0.0, doc=doc)

    @classmethod
    def toggle(cls, name: str, label: str, default: bool = False, doc: str = "") -> "ParamSpec":
        """A BOOL parameter (0 off, 1 on)."""
        return cls(name, label, "", 0.0, 1.0, 1.0 if default else 0.0, kind=Kind.BOOL,
                   smoothing=Smoothing.NONE, smoothing_ms=0.0, doc=doc)

    @classmethod
    def integer(cls, name: str, label: str, unit: str, min: int, max: int, default: int,
                doc: str = "") -> "ParamSpec":
        """An INTEGER parameter: whole-number steps from ``min`` to ``max``."""
        return cls(name, label, unit, min, max, default, kind=Kind.INTEGER,
                   smoothing=Smoothing.NONE, smoothing_ms=0.0, doc=doc)

    # -- numbers ------------------------------------------------------------------------------

    @property
    def is_discrete(self) -> bool:
        """True for INTEGER, BOOL and CHOICE: whole-number values only, never smoothed."""
        return self.kind != Kind.CONTINUOUS

    @property
    def effective_smoothing(self) -> Smoothing:
        """The smoothing the engine applies: NONE for discrete kinds and for 0 ms."""
        if self.is_discrete or not self.smoothing_ms > 0.0:
            return Smoothing.NONE
        return Smoothing(self.smoothing)

    @property
    def default_norm(self) -> float:
        return self.to_norm(self.default)

    def clamp(self, value: float) -> float:
        """``value`` limited to [min, max]; NaN/inf raise ``ParamError``."""
        value = self._finite(value, "value")
        return min(max(value, self.min), self.max)

    def to_norm(self, value: float) -> float:
        """Normalized [0, 1] position of ``value`` (clamped first; discrete kinds snap to the
        nearest step). NaN/inf raise ``ParamError``."""
        value = self.clamp(value)
        return _value_to_norm(int(self.curve), self.min, self.max, self.skew, int(self.kind),
                              value)

    def from_norm(self, norm: float) -> float:
        """Value at normalized ``norm`` (clamped to [0, 1]; discrete kinds round to the nearest
        step). NaN/inf raise ``ParamError``."""
        norm = self._finite(norm, "normalized value")
        return _norm_to_value(int(self.curve), self.min, self.max, self.skew, int(self.kind),
                              min(max(norm, 0.0), 1.0))

    def native_meta(self) -> tuple[float, ...]:
        """``(curve, min, max, skew, kind, smoothing_mode, smoothing_ms)`` as floats for the
        engine; ``smoothing_mode`` is ``effective_smoothing`` (NONE for discrete kinds)."""
        return (float(self.curve), self.min, self.max, self.skew, float(self.kind),
                float(self.effective_smoothing), self.smoothing_ms)

    # -- text ---------------------------------------------------------------------------------

    def format(self, value: float) -> str:
        """Display text: "1.20 kHz", "-6.0 dB", "250 ms", "+7.0 cents", "Saw", "on", "3 st"."""
        return format_value(self, value)

    def parse(self, text: str, clamp: bool = True) -> float:
        """The value ``text`` means (clamped unless ``clamp`` is False); ``ParamError`` with a
        one-line fix on junk."""
        return parse_value(self, text, clamp)

    # -- validation ---------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Everything wrong with this declaration, one short sentence each; empty when sane."""
        found: list[str] = []
        if not (isinstance(self.name, str) and self.name.isidentifier()
                and not keyword.iskeyword(self.name)):
            found.append(f"name {self.name!r} is not an identifier (use e.g. 'cutoff_hz')")
        if not (isinstance(self.label, str) and self.label.strip()):
            found.append("label is empty")
        if not isinstance(self.unit, str):
            found.append(f"unit {self.unit!r} is not a string")
        numbers_ok = True
        for field_name in ("min", "max", "default", "skew", "smoothing_ms"):
            value = getattr(self, field_name)
            if not (isinstance(value, float) and math.isfinite(value)):
                found.append(f"{field_name} {value!r} is not a finite number")
                numbers_ok = False
        for field_name, enum_type in (("curve", Curve), ("kind", Kind), ("smoothing", Smoothing)):
            if not isinstance(getattr(self, field_name), enum_type):
                names = ", ".join(m.name for m in enum_type)
                found.append(f"{field_name} {getattr(self, field_name)!r} is not one of {names}")
                numbers_ok = False
        if not numbers_ok:
            return found
        if not self.min < self.max:
            found.append(f"min {self.min:g} is not below max {self.max:g}")
        if not self.min <= self.default <= self.max:
            found.append(f"default {self.default:g} is outside {self.min:g}..{self.max:g}")
        if self.curve == Curve.LOG and not self.min > 0.0:
            found.append(f"LOG curve needs min > 0 (min is {self.min:g})")
        if not self.skew > 0.0:
            found.append(f"skew {self.skew:g} must be > 0")
        if self.curve == Curve.DB and self.unit != "dB":
            found.append(f"DB curve needs unit 'dB' (unit is {self.unit!r})")
        if not self.smoothing_ms >= 0.0:
            found.append(f"smoothing_ms {self.smoothing_ms:g} must be >= 0")
        found.extend(self._discrete_problems())
        return found

    def _discrete_problems(self) -> list[str]:
        found: list[str] = []
        if self.kind != Kind.CHOICE and self.choices:
            found.append(f"choices given but kind is {self.kind.name} (use Kind.CHOICE)")
        if not self.is_discrete:
            return found
        for field_name in ("min", "max", "default"):
            value = getattr(self, field_name)
            if value != math.floor(value):
                found.append(f"{field_name} {value:g} is not a whole number ({self.kind.name})")
        if self.kind in (Kind.BOOL, Kind.CHOICE) and self.curve != Curve.LINEAR:
            found.append(f"{self.kind.name} needs the LINEAR curve")
        if self.kind == Kind.BOOL and (self.min, self.max) != (0.0, 1.0):
            found.append("BOOL needs min 0 and max 1 (use ParamSpec.toggle)")
        if self.kind == Kind.CHOICE:
            labels = self.choices if isinstance(self.choices, tuple) else ()
            if not labels:
                found.append("CHOICE needs a non-empty tuple of choices")
            elif not all(isinstance(c, str) and c.strip() for c in labels):
                found.append("every choice label must be a non-empty string")
            else:
                lowered = [c.lower() for c in labels]
                if len(set(lowered)) != len(lowered):
                    found.append("choice labels repeat (ignoring case)")
                if (self.min, self.max) != (0.0, float(len(labels) - 1)):
                    found.append(f"CHOICE needs min 0 and max {len(labels) - 1} "
                                 "(use ParamSpec.choice)")
        return found

    def _finite(self, value: float, what: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParamError(f"{what} {value!r} is not a number", where=self.name,
                             fix=f"send a number in {self.min:g}..{self.max:g}") from None
        if not math.isfinite(number):
            raise ParamError(f"{what} {value!r} is not finite", where=self.name,
                             fix="send a finite number; NaN and inf are rejected")
        return number


__all__ = ["ParamSpec", "Curve", "Kind", "Smoothing"]
