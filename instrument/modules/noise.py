"""Noise module. Kernel and its measured claims: ``instrument.kernels.noise``."""

import numpy as np

from instrument.kernels import noise as noise_k
from instrument.modules.base import Module
from instrument.params import ParamSpec


class Noise(Module):
    """White or pink noise, a different deterministic sequence per voice lane and note."""

    type_name = "noise"
    label = "Noise"
    doc = "White or pink (-3 dB/octave) noise, deterministic per voice."
    scope = "any"
    params = (
        ParamSpec.choice("color", "Color", ("White", "Pink"), 0,
                         doc="White: flat spectrum; pink: -3 dB per octave."),
        ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
                  doc="White is uniform in -level..level; pink has the same RMS."),
        ParamSpec.integer("seed", "Seed", "", 0, 9999, 0,
                          doc="Give two noise nodes of one voice different seeds."),
    )
    inputs = ()
    outputs = ("out",)
    kernel = noise_k.noise_kernel

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return noise_k.noise_state_rows(block_size)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        noise_k.noise_reset(state, sample_rate)
