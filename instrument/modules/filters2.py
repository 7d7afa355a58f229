"""Filter modules: multimode state-variable (12 dB/oct), 4-pole ladder (24 dB/oct) with drive,
one-pole (6 dB/oct). Kernels and their measured claims: ``instrument.kernels.filters2``.

All three run in the voice or the global graph. Their cutoff follows the ``key`` input (the
voice pitch unless patched) by ``key_track``: 1.0 moves the cutoff one octave per octave
played, middle C leaves it where ``cutoff_hz`` says; in the global graph there is no voice
pitch and key tracking does nothing.
"""

import numpy as np

from instrument.kernels.filters2 import (
    DC_BLOCK_MAX_HZ, LADDER_STATE, LADDER_UNSET, ONEPOLE_STATE, ONEPOLE_UNSET, SVF2_STATE,
    SVF2_UNSET, ladder_kernel, onepole_kernel, svf_kernel,
)
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec

_CUTOFF = ParamSpec("cutoff_hz", "Cutoff", "Hz", 20.0, 20000.0, 2000.0, curve=Curve.LOG,
                    smoothing_ms=20.0,
                    doc="Corner frequency at middle C (key tracking moves it with the key).")
_KEY_TRACK = ParamSpec("key_track", "Key track", "", 0.0, 1.0, 0.0, smoothing_ms=20.0,
                       doc="How far the cutoff follows the key: 0 not at all, 0.5 half an "
                           "octave per octave, 1 one octave per octave (relative to middle C).")
_INPUTS = (
    Port("in", doc="Audio to filter."),
    Port("key", default="pitch",
         doc="Frequency in Hz that key tracking follows; the voice pitch by default."),
)


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
        _CUTOFF,
        ParamSpec("resonance", "Resonance", "", 0.0, 1.0, 0.1, smoothing_ms=20.0,
                  doc="0 is Q 0.5, 0.5 is Q 5, 1 is Q 50 (a +34 dB peak)."),
        _KEY_TRACK,
    )
    inputs = _INPUTS
    outputs = ("out",)
    state_size = SVF2_STATE
    kernel = svf_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[SVF2_UNSET] = -1.0  # coefficients computed from the first sample's parameters


class Ladder(Module):
    """4-pole 24 dB/oct ladder low-pass with a tanh input stage; passband at 0 dB for any
    resonance (small signals, drive 0 dB); self-oscillates from resonance 0.95: at 1 a sine at
    the cutoff sustains itself without input.

    With resonance the input stage makes DC: it saturates the input minus the resonance
    feedback, and for a saw that sum is asymmetric. Measured on the voice of presets/bass.toml
    alone (resonance 0.45, drive 6 dB, a held C2, velocity 100): a mean of -40 dBFS; -52 dBFS
    at drive 0 dB, -71 dBFS at resonance 0. ``dc_block_hz`` (a one-pole high-pass on the
    output) takes it out: at 5 Hz the held note's mean is below -140 dBFS, and A0 (27.5 Hz)
    loses 0.14 dB. It is off by default, which keeps the output exactly as it was (and within
    its saturation bound, which a high-pass overshoots: 7-11% on a driven 110 Hz saw)."""

    type_name = "ladder"
    label = "Ladder filter"
    doc = "Zero-delay-feedback 4-pole ladder low-pass, 24 dB/oct, with drive; self-oscillates."
    scope = "any"
    params = (
        _CUTOFF,
        ParamSpec("resonance", "Resonance", "", 0.0, 1.0, 0.2, smoothing_ms=20.0,
                  doc="Feedback around the four poles; self-oscillation from 0.95."),
        ParamSpec("drive_db", "Drive", "dB", 0.0, 24.0, 0.0, smoothing_ms=20.0,
                  doc="Gain into the saturating input stage; quiet signals come out half as "
                      "many dB louder, loud ones are rounded off."),
        _KEY_TRACK,
        ParamSpec("dc_block_hz", "DC block", "Hz", 0.0, DC_BLOCK_MAX_HZ, 0.0,
                  doc="Corner of a one-pole high-pass on the output that removes the DC the "
                      "saturating stage makes with resonance; 0 is off (the output as "
                      "without it), 5 takes the DC out and leaves the bass alone."),
    )
    inputs = _INPUTS
    outputs = ("out",)
    state_size = LADDER_STATE
    kernel = ladder_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        for row in LADDER_UNSET:  # coefficient and drive gains from the first segment
            state[row] = -1.0


class OnePole(Module):
    """6 dB/oct one-pole low- or high-pass: -3 dB at ``cutoff_hz``, passband 0 dB."""

    type_name = "onepole"
    label = "One-pole filter"
    doc = "Trapezoidal one-pole low-pass or high-pass, 6 dB/oct."
    scope = "any"
    params = (
        ParamSpec.choice("mode", "Mode", ("lowpass", "highpass"), 0,
                         doc="Response: low-pass or high-pass."),
        _CUTOFF,
        _KEY_TRACK,
    )
    inputs = _INPUTS
    outputs = ("out",)
    state_size = ONEPOLE_STATE
    kernel = onepole_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[ONEPOLE_UNSET] = -1.0  # coefficient computed from the first sample's parameters
