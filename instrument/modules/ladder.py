"""Ladder filter module. Kernel and its measured claims: ``instrument.kernels.ladder``."""

import numpy as np

from instrument.kernels.ladder import LADDER_STATE, LADDER_UNSET, ladder_kernel
from instrument.kernels.onepole import DC_BLOCK_MAX_HZ
from instrument.modules.base import Module
from instrument.modules.filters import CUTOFF, FILTER_INPUTS, KEY_TRACK
from instrument.params import ParamSpec


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
        CUTOFF,
        ParamSpec("resonance", "Resonance", "", 0.0, 1.0, 0.2, smoothing_ms=20.0,
                  doc="Feedback around the four poles; self-oscillation from 0.95."),
        ParamSpec("drive_db", "Drive", "dB", 0.0, 24.0, 0.0, smoothing_ms=20.0,
                  doc="Gain into the saturating input stage; quiet signals come out half as "
                      "many dB louder, loud ones are rounded off."),
        KEY_TRACK,
        ParamSpec("dc_block_hz", "DC block", "Hz", 0.0, DC_BLOCK_MAX_HZ, 0.0,
                  doc="Corner of a one-pole high-pass on the output that removes the DC the "
                      "saturating stage makes with resonance; 0 is off (the output as "
                      "without it), 5 takes the DC out and leaves the bass alone."),
    )
    inputs = FILTER_INPUTS
    outputs = ("out",)
    state_size = LADDER_STATE
    kernel = ladder_kernel
    chunk_params = ("cutoff_hz",)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        for row in LADDER_UNSET:  # coefficient and drive gains from the first segment
            state[row] = -1.0
