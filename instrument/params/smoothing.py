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

The engine smooths every parameter itself (``instrument.engine.voicing``) from the per-parameter
rows ``instrument.graph.compile`` fills with these coefficients; the plain-Python reference
(``SmoothedValue``) is tests/naive_smoothing.py.
"""

from __future__ import annotations

import enum
import math

from instrument.errors import ParamError

SETTLED_FRACTION = 0.99  # a one-pole "time" is the time to cover 99% of a step


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


__all__ = ["Smoothing", "one_pole_coeff", "linear_ramp_samples", "SETTLED_FRACTION"]
