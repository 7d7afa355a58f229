"""Parameter smoothing, configured in milliseconds and correct at any sample rate.

Two shapes, chosen per parameter:

* ONE_POLE: ``y[k] = x + a * (y[k-1] - x)`` (equivalently ``y += (1 - a) * (x - y)``), with the
  retention ``a = one_pole_coeff(time_ms, sample_rate)``. A unit step has covered 99% of its
  travel after ``time_ms`` milliseconds: the first sample at or above 99% is sample
  ``ceil(time_ms * sample_rate / 1000)`` (counting the first output sample as 1), or the one
  after when that product is a whole number and rounding lands a hair short.
* LINEAR: a straight ramp that lands exactly on the target after
  ``linear_ramp_samples(time_ms, sample_rate)`` samples.

Discrete kinds (integer, bool, choice) never smooth: they jump, so no in-between value such as
"half a waveform" is ever produced. ``time_ms`` 0 jumps too.

``SmoothedValue`` is the plain-Python reference (JUCE-like ``reset``/``set_target``/``next``/
``skip``) used by tests and by control-side code; the ``@njit`` helpers are the same steps for
native code.
"""

from __future__ import annotations

import enum
import math

from numba import njit

from instrument.errors import ParamError
from instrument.params.curves import Kind

SETTLED_FRACTION = 0.99  # a one-pole "time" is the time to cover 99% of a step
_SNAP = 1e-9  # a one-pole within this of its target (relative to max(1, |target|)) lands on it


class Smoothing(enum.IntEnum):
    """How a continuous parameter follows a new target."""

    NONE = 0
    ONE_POLE = 1
    LINEAR = 2


def _samples(time_ms: float, sample_rate: float) -> float:
    if not (isinstance(time_ms, (int, float)) and math.isfinite(time_ms) and time_ms >= 0.0):
        raise ParamError(f"smoothing time {time_ms!r} ms is not usable",
                         fix="use a finite time_ms >= 0")
    if not (isinstance(sample_rate, (int, float)) and math.isfinite(sample_rate)
            and sample_rate > 0.0):
        raise ParamError(f"sample rate {sample_rate!r} is not usable",
                         fix="use a finite sample_rate > 0, e.g. 48000")
    return float(time_ms) * float(sample_rate) / 1000.0


def one_pole_coeff(time_ms: float, sample_rate: float) -> float:
    """Retention ``a`` in [0, 1) of ``y[k] = x + a * (y[k-1] - x)``: a step covers 99% of its
    travel after ``time_ms`` ms (``a ** (time_ms * sample_rate / 1000) == 0.01``).
    ``time_ms`` 0 gives 0.0, a jump. Non-finite or negative input raises ``ParamError``."""
    samples = _samples(time_ms, sample_rate)
    if samples <= 0.0:
        return 0.0
    return math.exp(math.log(1.0 - SETTLED_FRACTION) / samples)


def linear_ramp_samples(time_ms: float, sample_rate: float) -> int:
    """Length in samples of a linear ramp lasting ``time_ms`` ms, rounded to the nearest sample
    (half up): the ramp is exactly on its target at that sample. 0 means jump."""
    return int(math.floor(_samples(time_ms, sample_rate) + 0.5))


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


__all__ = [
    "Smoothing", "SmoothedValue", "one_pole_coeff", "linear_ramp_samples",
    "smooth_one_pole_step", "smooth_linear_step", "smooth_one_pole_fill", "SETTLED_FRACTION",
]
