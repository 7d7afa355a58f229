"""Velocity curves: how hard a key must be struck for how loud, per input device.

A mapping file (or a ``[[profile]]`` in ``profiles.toml``, for one controller) may have::

    [velocity]
    curve = "soft"            # linear (the default) | soft | hard | fixed
    fixed_value = 100         # with curve = "fixed": every note at this velocity, 1..127

    [velocity]                # or a table of your own: [MIDI velocity in, velocity out] points,
    table = [[1, 1], [40, 80], [127, 127]]   # inputs rising; straight lines between them

Curves, with v the MIDI velocity 1..127 and x = v / 127:

- ``linear``: x (what the keyboard sends).
- ``soft``: x ** 0.6, for a light touch: velocity 40 plays as 63.5 (half force).
- ``hard``: x ** 1.6, for a heavy touch: velocity 80 plays as 60.6.
- ``fixed``: ``fixed_value`` / 127 whatever the key's velocity (organ-style).
- ``table``: the points' outputs / 127, linear between points; below the first point its
  output, above the last point its output.

A curve never turns a note-on into silence: the lowest output is velocity 1 (1/127). The curve
is applied where MIDI comes in (``midi_messages.MidiPort``), per port, so each controller keeps
its own; OSC notes and MIDI files are not affected. ``instrument check`` reports a bad
``[velocity]`` in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

SOFT_EXPONENT = 0.6
HARD_EXPONENT = 1.6
CURVES = ("linear", "soft", "hard", "fixed")
_KEYS = {"curve", "fixed_value", "table"}
MIN_OUT = 1.0 / 127.0


@dataclass(frozen=True)
class VelocityCurve:
    """MIDI velocity 0..127 -> velocity 0..1, as a table of 128 values (``out[v]``)."""

    name: str
    out: tuple[float, ...]

    def __call__(self, velocity: float) -> float:
        """``velocity`` as the MIDI edge gives it (MIDI velocity / 127) -> the curve's value."""
        v = min(max(int(round(velocity * 127.0)), 0), 127)
        return self.out[v]

    def midi(self, velocity: int) -> float:
        """The curve's value for MIDI velocity ``velocity`` 0..127, in MIDI units (0..127)."""
        return self.out[velocity] * 127.0


def _table(fn, name: str) -> VelocityCurve:
    return VelocityCurve(name, tuple(max(min(fn(v), 1.0), MIN_OUT) for v in range(128)))


def curve_named(name: str, fixed_value: int = 100) -> VelocityCurve:
    if name == "linear":
        return _table(lambda v: v / 127.0, name)
    if name == "soft":
        return _table(lambda v: (v / 127.0) ** SOFT_EXPONENT, name)
    if name == "hard":
        return _table(lambda v: (v / 127.0) ** HARD_EXPONENT, name)
    if name == "fixed":
        return _table(lambda v: fixed_value / 127.0, f"fixed {fixed_value}")
    raise ValueError(name)


def curve_from_points(points: list[tuple[float, float]]) -> VelocityCurve:
    """Straight lines between (in, out) points, MIDI units, inputs strictly rising."""
    def fn(v):
        if v <= points[0][0]:
            return points[0][1] / 127.0
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if v <= x1:
                return (y0 + (y1 - y0) * (v - x0) / (x1 - x0)) / 127.0
        return points[-1][1] / 127.0
    return _table(fn, "table")


def parse_velocity(table, where: str, error) -> VelocityCurve | None:
    """The ``[velocity]`` table at ``where`` -> a curve (None for linear: the MIDI velocity is
    passed on untouched). ``error(message, where, fix)`` builds the one-line error to raise."""
    if not isinstance(table, dict):
        raise error("velocity must be a table", where,
                    'write [velocity] with curve = "soft" (linear, soft, hard, fixed) or table')
    extra = sorted(set(table) - _KEYS)
    if extra:
        raise error(f"unknown key {extra[0]!r}", f"{where}.{extra[0]}",
                    "use curve, fixed_value or table")
    curve = table.get("curve")
    points = table.get("table")
    if points is not None:
        if curve is not None:
            raise error("has both curve and table", where, "keep one of them")
        return curve_from_points(_points(points, f"{where}.table", error))
    if curve is None:
        raise error("curve is missing", where,
                    'write curve = "soft" (linear, soft, hard or fixed) or a table of points')
    if curve not in CURVES:
        raise error(f"curve = {curve!r} is not a velocity curve", f"{where}.curve",
                    'use "linear", "soft", "hard" or "fixed" (or write a table of points)')
    fixed = table.get("fixed_value")
    if fixed is not None and curve != "fixed":
        raise error("fixed_value is only for curve = \"fixed\"", f"{where}.fixed_value",
                    'remove it or write curve = "fixed"')
    if curve == "fixed":
        if fixed is None:
            fixed = 100
        if isinstance(fixed, bool) or not isinstance(fixed, int) or not 1 <= fixed <= 127:
            raise error(f"fixed_value = {fixed!r} is not a MIDI velocity", f"{where}.fixed_value",
                        "use a whole number 1..127")
        return curve_named("fixed", fixed)
    return None if curve == "linear" else curve_named(curve)


def _points(points, where: str, error) -> list[tuple[float, float]]:
    fix = "write table = [[1, 1], [64, 90], [127, 127]]: [in, out] pairs, in rising, 0..127"
    if not isinstance(points, list) or len(points) < 2:
        raise error("table needs at least two [in, out] points", where, fix)
    out = []
    for i, point in enumerate(points):
        ok = isinstance(point, list) and len(point) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 127
            for x in point)
        if not ok:
            raise error(f"point {i + 1} = {point!r} is not [in, out] with both 0..127",
                        where, fix)
        if out and point[0] <= out[-1][0]:
            raise error(f"point {i + 1} input {point[0]} does not rise above {out[-1][0]}",
                        where, fix)
        out.append((float(point[0]), float(point[1])))
    return out
