"""One-pole filter module. Kernel and its measured claims: ``instrument.kernels.onepole``."""

import numpy as np

from instrument.kernels.onepole import ONEPOLE_STATE, ONEPOLE_UNSET, onepole_kernel
from instrument.modules.base import Module
from instrument.modules.filters import CUTOFF, FILTER_INPUTS, KEY_TRACK
from instrument.params import ParamSpec


class OnePole(Module):
    """6 dB/oct one-pole low- or high-pass: -3 dB at ``cutoff_hz``, passband 0 dB."""

    type_name = "onepole"
    label = "One-pole filter"
    doc = "Trapezoidal one-pole low-pass or high-pass, 6 dB/oct."
    scope = "any"
    params = (
        ParamSpec.choice("mode", "Mode", ("lowpass", "highpass"), 0,
                         doc="Response: low-pass or high-pass."),
        CUTOFF,
        KEY_TRACK,
    )
    inputs = FILTER_INPUTS
    outputs = ("out",)
    state_size = ONEPOLE_STATE
    kernel = onepole_kernel
    chunk_params = ("cutoff_hz",)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[ONEPOLE_UNSET] = -1.0  # coefficient computed from the first sample's parameters
