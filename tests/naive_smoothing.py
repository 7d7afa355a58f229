"""The plain-Python reference of parameter smoothing (JUCE-like ``SmoothedValue``:
``reset``/``set_target``/``next``/``skip``), and the same one-pole and linear steps as njit
functions. The engine smooths parameters itself (``instrument.engine.voicing``, from the rows
``instrument.graph.compile`` fills with ``one_pole_coeff`` and ``linear_ramp_samples``); these
are what tests/params/test_smoothing.py measures the declared times on."""

from __future__ import annotations

import math

from numba import njit

from instrument.errors import ParamError
from instrument.params.curves import Kind
from instrument.params.smoothing import Smoothing, linear_ramp_samples, one_pole_coeff

_SNAP = 1e-9  # a one-pole within this of its target (relative to max(1, |target|)) lands on it


@njit(cache=True)
def smooth_one_pole_step(current, target, coeff):
    """One one-pole sample: ``target + coeff * (current - target)``."""
    return target + coeff * (current - target)


@njit(cache=True)
def smooth_linear_step(current, target, step, remaining):
    """One linear-ramp sample: returns (value, remaining); lands exactly on ``target`` when
    ``remaining`` reaches 0 and stays there."""
    if remaining <= 0.0:
        return target, 0.0
    remaining -= 1.0
    if remaining <= 0.0:
        return target, 0.0
    return current + step, remaining


@njit(cache=True)
def smooth_one_pole_fill(out, current, target, coeff):
    """Write ``len(out)`` one-pole samples into ``out``; return the last one."""
    for i in range(out.shape[0]):
        current = target + coeff * (current - target)
        out[i] = current
    return current


class SmoothedValue:
    """A value that follows its target sample by sample (reference implementation).

    ``reset(sample_rate, time_ms, mode)`` configures it and lands on the target;
    ``set_target(v)`` starts a move; ``next()`` advances one sample, ``skip(n)`` advances ``n``
    samples, both returning the new ``current``. ``SmoothedValue.for_spec`` smooths a
    parameter's normalized value the way the engine does (discrete kinds jump).
    """

    def __init__(self, value: float = 0.0):
        value = _finite(value)
        self._current = value
        self._target = value
        self._mode = Smoothing.NONE
        self._coeff = 0.0
        self._ramp_samples = 0
        self._step = 0.0
        self._remaining = 0

    @classmethod
    def for_spec(cls, spec, sample_rate: float, norm: float | None = None) -> "SmoothedValue":
        """A smoother for ``spec``'s normalized value (``spec.default_norm`` unless given).
        Uses ``spec.smoothing``/``spec.smoothing_ms``; discrete kinds jump."""
        sv = cls(spec.default_norm if norm is None else norm)
        mode = Smoothing.NONE if spec.kind != Kind.CONTINUOUS else Smoothing(spec.smoothing)
        sv.reset(sample_rate, spec.smoothing_ms, mode)
        return sv

    def reset(self, sample_rate: float, time_ms: float,
              mode: Smoothing = Smoothing.ONE_POLE) -> None:
        """Configure the smoothing and land on the current target (no move in progress)."""
        self._mode = Smoothing(mode)
        self._coeff = one_pole_coeff(time_ms, sample_rate)
        self._ramp_samples = linear_ramp_samples(time_ms, sample_rate)
        self._current = self._target
        self._remaining = 0

    def set_target(self, value: float) -> None:
        """Start moving towards ``value``; non-finite values raise ``ParamError``."""
        value = _finite(value)
        self._target = value
        if self._mode == Smoothing.NONE or (self._mode == Smoothing.ONE_POLE and self._coeff == 0.0):
            self._current = value
        elif self._mode == Smoothing.LINEAR:
            if self._ramp_samples < 1:
                self._current = value
                self._remaining = 0
            else:
                self._step = (value - self._current) / self._ramp_samples
                self._remaining = self._ramp_samples

    def set_current_and_target(self, value: float) -> None:
        """Jump: both current and target become ``value``."""
        self._target = self._current = _finite(value)
        self._remaining = 0

    @property
    def current(self) -> float:
        return self._current

    @property
    def target(self) -> float:
        return self._target

    @property
    def is_smoothing(self) -> bool:
        return self._current != self._target

    def next(self) -> float:
        """Advance one sample and return the new current value."""
        return self.skip(1)

    def skip(self, n: int) -> float:
        """Advance ``n`` samples (in closed form) and return the new current value."""
        if n <= 0 or not self.is_smoothing:
            return self._current
        if self._mode == Smoothing.LINEAR:
            if n >= self._remaining:
                self._current = self._target
                self._remaining = 0
            else:
                self._current += self._step * n
                self._remaining -= n
        else:  # ONE_POLE (NONE never gets here: it jumps in set_target)
            diff = (self._current - self._target) * self._coeff ** n
            if abs(diff) <= _SNAP * max(1.0, abs(self._target)):
                self._current = self._target
            else:
                self._current = self._target + diff
        return self._current


def _finite(value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParamError(f"{value!r} is not a number", fix="send a finite number") from None
    if not math.isfinite(value):
        raise ParamError(f"{value!r} is not a finite number", fix="send a finite number")
    return value
