"""Unison stack and 2-operator FM modules. Kernels and their measured claims:
``instrument.kernels.osc_stack``."""

import numpy as np

from instrument.kernels import osc_stack as ku
from instrument.modules.base import Module
from instrument.modules.oscillators import BLEP_PARAMS, PITCH_IN, PITCH_PARAMS, Blep
from instrument.params import Curve, ParamSpec


class Unison(Blep):
    """A stack of detuned band-limited saws, equal-power normalized, optionally spread in
    stereo (``left``/``right``; equal at ``stereo`` 0)."""

    type_name = "unison"
    label = "Unison saws"
    doc = "1-7 detuned minBLEP saws, equal-power summed, stereo spread."
    scope = "voice"
    params = BLEP_PARAMS + (
        ParamSpec.integer("voices", "Voices", "", 1, ku.MAX_UNISON, 5,
                          doc="Saws in the stack."),
        ParamSpec("spread_cents", "Spread", "cents", 0.0, 100.0, 15.0, smoothing_ms=20.0,
                  doc="Detune of the outermost saws; the rest are spaced evenly between."),
        ParamSpec("stereo", "Stereo", "", 0.0, 1.0, 0.0, smoothing_ms=20.0,
                  doc="0: mono (left = right); 1: the outermost saws fully left and right."),
    )
    inputs = (PITCH_IN,)
    outputs = ("left", "right")
    fixed_rows = ku.UNISON_FIXED
    buffers = 2
    kernel = ku.unison_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        ku.unison_reset(state, sample_rate)


class Fm2(Module):
    """Two-operator FM: a sine carrier at the pitch phase-modulated by a sine at ``ratio``
    times it, with modulator self-feedback."""

    type_name = "fm2"
    label = "FM (2 operators)"
    doc = "Sine carrier phase-modulated by a sine modulator with feedback."
    scope = "voice"
    params = PITCH_PARAMS + (
        ParamSpec("ratio", "Ratio", "x", 0.25, 16.0, 1.0, curve=Curve.LOG, smoothing_ms=5.0,
                  doc="Modulator frequency relative to the pitch (whole numbers: harmonic)."),
        ParamSpec("index", "Index", "rad", 0.0, 10.0, 1.0, curve=Curve.EXP, skew=2.0,
                  smoothing_ms=5.0,
                  doc="Peak phase deviation of the carrier; patch an envelope here."),
        ParamSpec("feedback", "Feedback", "rad", 0.0, 1.5, 0.0, smoothing_ms=5.0,
                  doc="Modulator self-modulation: more harmonics as it rises."),
    )
    inputs = (PITCH_IN,)
    outputs = ("out",)
    state_size = ku.FM2_STATE
    kernel = ku.fm2_kernel
