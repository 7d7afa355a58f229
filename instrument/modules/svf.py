"""State-variable filter modules: multimode ``svf`` and low-pass ``svf_lowpass``. Kernels and
their measured claims: ``instrument.kernels.svf``."""

import numpy as np

from instrument.kernels.svf import SVF_STATE, SVF_UNSET, svf_kernel, svf_lowpass_kernel
from instrument.modules.base import Module, Port
from instrument.modules.filters import CUTOFF, FILTER_INPUTS, KEY_TRACK
from instrument.params import Curve, ParamSpec


class Svf(Module):
    """Multimode 12 dB/oct state-variable filter: low-pass, high-pass, band-pass (0 dB peak)
    or notch at ``cutoff_hz``; Q = 0.5 * 100**resonance (0.707 at resonance 0.075, where the
    low-pass is -3 dB at the cutoff; 50 at resonance 1)."""

    type_name = "svf"
    label = "State-variable filter"
    doc = "Trapezoidal state-variable filter, 12 dB/oct: low/high/band-pass or notch, resonant."
    scope = "any"
    params = (
        ParamSpec.choice("mode", "Mode", ("lowpass", "highpass", "bandpass", "notch"), 0,
                         doc="Response: low-pass, high-pass, band-pass (0 dB at the peak) "
                             "or notch."),
        CUTOFF,
        ParamSpec("resonance", "Resonance", "", 0.0, 1.0, 0.1, smoothing_ms=20.0,
                  doc="0 is Q 0.5, 0.5 is Q 5, 1 is Q 50 (a +34 dB peak)."),
        KEY_TRACK,
    )
    inputs = FILTER_INPUTS
    outputs = ("out",)
    state_size = SVF_STATE
    kernel = svf_kernel
    chunk_params = ("cutoff_hz",)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[SVF_UNSET] = -1.0  # coefficients computed from the first sample's parameters


class SvfLowpass(Module):
    """12 dB/oct state-variable low-pass: -3 dB at ``cutoff_hz`` with ``resonance`` 0.075
    (Q = 0.707); Q = 0.5 * 100**resonance, so the peak at ``resonance`` 1 is about +34 dB.
    It is ``svf`` in low-pass mode without key tracking (the same kernel code and state), kept
    under its own name and parameters for the presets that use it."""

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
    chunk_params = ("cutoff_hz",)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[SVF_UNSET] = -1.0  # coefficients computed from the first sample's parameters
