"""Filter modules."""

import numpy as np

from instrument.kernels.filters import SVF_STATE, svf_lowpass_kernel
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


class SvfLowpass(Module):
    """12 dB/oct state-variable low-pass: -3 dB at ``cutoff_hz`` with ``resonance`` 0.075
    (Q = 0.707); Q = 0.5 * 100**resonance, so the peak at ``resonance`` 1 is about +34 dB."""

    type_name = "svf_lowpass"
    label = "SVF low-pass"
    doc = "Trapezoidal state-variable low-pass filter, 12 dB/oct, resonant."
    scope = "any"
    params = (
        ParamSpec("cutoff_hz", "Cutoff", "Hz", 20.0, 20000.0, 2000.0, curve=Curve.LOG,
                  smoothing_ms=20.0, doc="Corner frequency."),
        ParamSpec("resonance", "Resonance", "", 0.0, 1.0, 0.1,
                  doc="0 is Q 0.5, 0.5 is Q 5, 1 is Q 50."),
    )
    inputs = (Port("in"),)
    outputs = ("out",)
    state_size = SVF_STATE
    kernel = svf_lowpass_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[2] = -1.0  # a1 < 0: coefficients unset: computed from the first sample's parameters
