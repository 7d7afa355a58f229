"""Pulse (PWM), triangle and sub-oscillator modules (minBLEP). Kernels and their measured
claims: ``instrument.kernels.osc_pulse``."""

import numpy as np

from instrument.kernels import osc_pulse as kp
from instrument.modules.oscillators import BLEP_PARAMS, PITCH_IN, PITCH_PARAMS, Blep
from instrument.params import ParamSpec


class Pulse(Blep):
    """Band-limited pulse with pulse-width modulation at any rate; zero-mean at every width;
    the ``sync`` output marks each wrap for ``sync_saw``."""

    type_name = "pulse"
    label = "Pulse oscillator"
    doc = "Square/pulse wave with PWM, minBLEP band-limited; sync output."
    scope = "voice"
    params = BLEP_PARAMS + (
        ParamSpec("width", "Pulse width", "", kp.MIN_WIDTH, kp.MAX_WIDTH, 0.5, smoothing_ms=5.0,
                  doc="Fraction of the cycle at the high level; 0.5 is a square. Patch an "
                      "LFO here for PWM (audio rate works too)."),
    )
    inputs = (PITCH_IN,)
    outputs = ("out", "sync")
    fixed_rows = kp.PULSE_FIXED
    kernel = kp.pulse_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        kp.pulse_reset(state, sample_rate)


class Triangle(Blep):
    """Band-limited triangle (minBLAMP corners), sine phase, peak ``level``."""

    type_name = "triangle"
    label = "Triangle oscillator"
    doc = "Triangle wave, band-limited corners (minBLAMP)."
    scope = "voice"
    params = PITCH_PARAMS
    inputs = (PITCH_IN,)
    outputs = ("out",)
    fixed_rows = kp.TRI_FIXED
    kernel = kp.triangle_kernel


class Sub(Blep):
    """Sub-oscillator one or two octaves below the pitch, square (band-limited) or sine,
    phase-locked to an oscillator at the pitch started with it."""

    type_name = "sub"
    label = "Sub-oscillator"
    doc = "Square or sine one or two octaves down, phase-locked to the pitch."
    scope = "voice"
    params = BLEP_PARAMS + (
        ParamSpec.choice("octave", "Octave", ("-1 oct", "-2 oct"), 0,
                         doc="How far below the pitch."),
        ParamSpec.choice("shape", "Shape", ("Square", "Sine"), 0, doc="Waveform."),
    )
    inputs = (PITCH_IN,)
    outputs = ("out",)
    fixed_rows = kp.PULSE_FIXED
    kernel = kp.sub_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        kp.pulse_reset(state, sample_rate)
