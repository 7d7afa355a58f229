"""Normalized <-> value math: the one body shared by ``ParamSpec`` and the audio engine.

``norm_to_value`` and ``value_to_norm`` are ``@njit(cache=True)`` free functions the engine calls
per sample: ints and floats in, one float out, no allocation, never raising. ``ParamSpec`` calls
the very same source through ``.py_func`` so the control side needs no JIT at start-up; a test
checks that the compiled and the interpreted bodies agree on a dense grid.

Curves (``n`` in [0, 1]):
  LINEAR  value = lo + n * (hi - lo)
  LOG     value = lo * (hi / lo) ** n               (needs lo > 0)
  EXP     value = lo + (hi - lo) * n ** skew        (needs skew > 0)
  DB      value = lo + n * (hi - lo), in decibels   (linear in dB; the code tells text and
                                                     consumers that the value is a level)
Discrete kinds (INTEGER, BOOL, CHOICE) round the value to the nearest whole number, half up.
Metadata that ``ParamSpec.problems()`` would reject (hi <= lo, LOG with lo <= 0, skew <= 0)
falls back to something finite here instead of raising: the audio side never raises.
"""

from __future__ import annotations

import enum
import math

from numba import njit


class Curve(enum.IntEnum):
    """How normalized [0, 1] maps to the value; the int codes are what the engine sees."""

    LINEAR = 0
    LOG = 1
    EXP = 2
    DB = 3


class Kind(enum.IntEnum):
    """What values a parameter takes; every kind but CONTINUOUS takes whole numbers only."""

    CONTINUOUS = 0
    INTEGER = 1
    BOOL = 2
    CHOICE = 3


# Plain ints, so numba folds them as constants.
_LOG = int(Curve.LOG)
_EXP = int(Curve.EXP)
_CONTINUOUS = int(Kind.CONTINUOUS)


@njit(cache=True)
def norm_to_value(curve, lo, hi, skew, kind, n):
    """Value at normalized position ``n``; ``n`` is clamped to [0, 1], non-finite ``n`` gives
    ``lo``. ``n`` = 0 gives exactly ``lo`` and ``n`` = 1 exactly ``hi``."""
    if not math.isfinite(n) or not (hi > lo):
        return lo
    if n <= 0.0:
        return lo
    if n >= 1.0:
        return hi
    ratio = hi / lo if lo > 0.0 else 0.0
    if curve == _LOG and ratio > 1.0:
        v = lo * ratio ** n
    elif curve == _EXP and skew > 0.0:
        v = lo + (hi - lo) * n ** skew
    else:
        v = lo + (hi - lo) * n
    if kind != _CONTINUOUS:
        v = float(math.floor(v + 0.5))
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    return v


@njit(cache=True)
def value_to_norm(curve, lo, hi, skew, kind, v):
    """Normalized position of value ``v``; ``v`` is clamped to [lo, hi] (discrete kinds also
    round it to the nearest whole number first), non-finite ``v`` gives 0.0."""
    if not math.isfinite(v) or not (hi > lo):
        return 0.0
    if kind != _CONTINUOUS:
        v = float(math.floor(v + 0.5))
    if v <= lo:
        return 0.0
    if v >= hi:
        return 1.0
    ratio = hi / lo if lo > 0.0 else 0.0
    if curve == _LOG and ratio > 1.0:
        n = math.log(v / lo) / math.log(ratio)
    elif curve == _EXP and skew > 0.0:
        n = ((v - lo) / (hi - lo)) ** (1.0 / skew)
    else:
        n = (v - lo) / (hi - lo)
    if n < 0.0:
        n = 0.0
    elif n > 1.0:
        n = 1.0
    return n


__all__ = ["Curve", "Kind", "norm_to_value", "value_to_norm"]
