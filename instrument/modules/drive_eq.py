"""Drive (tanh saturation) and 3-band EQ, global effects. Kernels and their measured claims:
``instrument.kernels.drive_eq``."""

from __future__ import annotations

import numpy as np

from instrument.kernels import drive_eq as kt
from instrument.kernels.onepole import DC_BLOCK_MAX_HZ
from instrument.modules.base import STEREO_IN, STEREO_OUT, Module
from instrument.params import Curve, ParamSpec


class Drive(Module):
    """tanh saturation with level compensation: a -6 dBFS sine keeps its peak at any drive.

    The curve is symmetric, but an asymmetric waveform (a resonant low-passed saw) still comes
    out with a mean: measured on presets/bass.toml (drive 8 dB, mix 0.6, its voice's own DC
    blocked), -40 dBFS on a held C2. ``dc_block_hz`` high-passes the saturated signal to take
    that out (at 5 Hz: below -140 dBFS); off by default (a sine then keeps its exact peak and
    odd-only harmonics)."""

    type_name = "drive"
    label = "Drive"
    doc = ("Symmetric tanh saturation (odd harmonics), level-compensated so a -6 dBFS sine "
           "keeps its peak; linear dry/wet mix and an output trim.")
    scope = "global"
    params = (
        ParamSpec("drive_db", "Drive", "dB", 0.0, 36.0, 12.0, curve=Curve.DB,
                  doc="Gain into the saturator."),
        ParamSpec("mix", "Mix", "", 0.0, 1.0, 1.0,
                  doc="Dry/wet, linear (dry and wet are correlated)."),
        ParamSpec("output_db", "Output", "dB", -24.0, 12.0, 0.0, curve=Curve.DB,
                  doc="Output trim after the mix."),
        ParamSpec("dc_block_hz", "DC block", "Hz", 0.0, DC_BLOCK_MAX_HZ, 0.0,
                  doc="Corner of a one-pole high-pass on the saturated (wet) signal that "
                      "removes the DC saturation gives an asymmetric waveform; 0 is off."),
    )
    inputs = STEREO_IN
    outputs = STEREO_OUT
    state_size = kt.DRIVE_STATE
    kernel = kt.drive_kernel


class Eq(Module):
    """3-band EQ: RBJ low shelf, peak and high shelf (cookbook biquads, float64)."""

    type_name = "eq"
    label = "EQ"
    doc = ("Three-band equalizer: low shelf, peak (with Q) and high shelf, RBJ cookbook "
           "biquads in direct form II transposed.")
    scope = "global"
    params = (
        ParamSpec("low_hz", "Low freq", "Hz", 20.0, 1000.0, 120.0, curve=Curve.LOG,
                  doc="Low shelf frequency (half its gain here)."),
        ParamSpec("low_db", "Low gain", "dB", -24.0, 24.0, 0.0, curve=Curve.DB,
                  doc="Low shelf gain (reached at DC)."),
        ParamSpec("mid_hz", "Mid freq", "Hz", 100.0, 10000.0, 1000.0, curve=Curve.LOG,
                  doc="Peak centre frequency."),
        ParamSpec("mid_db", "Mid gain", "dB", -24.0, 24.0, 0.0, curve=Curve.DB,
                  doc="Peak gain at mid_hz."),
        ParamSpec("mid_q", "Mid Q", "", 0.1, 10.0, 0.7, curve=Curve.LOG,
                  doc="Peak width: higher is narrower."),
        ParamSpec("high_hz", "High freq", "Hz", 1000.0, 20000.0, 8000.0, curve=Curve.LOG,
                  doc="High shelf frequency (half its gain here)."),
        ParamSpec("high_db", "High gain", "dB", -24.0, 24.0, 0.0, curve=Curve.DB,
                  doc="High shelf gain (reached at Nyquist)."),
    )
    inputs = STEREO_IN
    outputs = STEREO_OUT
    state_size = kt.EQ_STATE
    kernel = kt.eq_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[kt.EQ_PARAMS:kt.EQ_PARAMS + 7] = -1.0  # no frequency is -1: computed at first use
