"""Parameter metadata: declared once as data, read by MIDI, OSC, presets and the engine.

``ParamSpec`` holds a parameter's range, curve, kind, smoothing and text form; ``curves`` has
the normalized <-> value math the engine runs per sample; ``smoothing`` turns milliseconds into
per-sample coefficients at any sample rate.
"""

from instrument.params.curves import Curve, Kind, norm_to_value, value_to_norm
from instrument.params.smoothing import Smoothing, linear_ramp_samples, one_pole_coeff
from instrument.params.spec import ParamSpec

__all__ = [
    "ParamSpec", "Curve", "Kind", "Smoothing", "one_pole_coeff",
    "linear_ramp_samples", "norm_to_value", "value_to_norm",
]
