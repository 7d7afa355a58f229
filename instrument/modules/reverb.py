"""FDN reverb, a global effect on delay lines in its state column (``prepare`` lays them out
for the sample rate). Kernel and its measured claims: ``instrument.kernels.reverb``."""

from __future__ import annotations

import numpy as np

from instrument.kernels import reverb as kr
from instrument.kernels.delay_lines import GUARD
from instrument.modules.base import STEREO_IN, STEREO_OUT, Module, ceil_samples
from instrument.params import Curve, ParamSpec, one_pole_coeff

REVERB_GLIDE_MS = 60.0  # internal glide of size and predelay


class Reverb(Module):
    """8-line FDN reverb (Householder feedback): RT60 = ``decay_s`` below ``damping_hz``."""

    type_name = "reverb"
    label = "Reverb"
    doc = ("Feedback delay network reverb, 8 lines with a Householder matrix, stereo predelay "
           "and input diffusion. decay_s is the RT60 below damping_hz. Mix is equal-power.")
    scope = "global"
    params = (
        ParamSpec("size", "Size", "", 0.0, 1.0, 0.5, smoothing_ms=200.0,
                  doc="Room size: line lengths from 0.25x to 1x (mean 11 to 46 ms); glides."),
        ParamSpec("decay_s", "Decay", "s", 0.1, 30.0, 2.0, curve=Curve.LOG,
                  doc="RT60: time to decay by 60 dB below the damping frequency."),
        ParamSpec("damping_hz", "Damping", "Hz", 500.0, 20000.0, 6000.0, curve=Curve.LOG,
                  doc="One-pole low-pass in every line: the tail darkens above it."),
        ParamSpec("predelay_ms", "Predelay", "ms", 0.0, kr.RV_PREDELAY_MAX_MS, 10.0,
                  smoothing_ms=100.0, doc="Delay before the reverb starts."),
        ParamSpec("mix", "Mix", "", 0.0, 1.0, 0.25,
                  doc="Dry/wet, equal-power: dry cos(pi/2 mix), wet sin(pi/2 mix)."),
    )
    inputs = STEREO_IN
    outputs = STEREO_OUT
    kernel = kr.reverb_kernel

    @classmethod
    def layout(cls, sample_rate: float) -> dict:
        """Sizes and offsets of the lines in the state column."""
        n_pre = ceil_samples(kr.RV_PREDELAY_MAX_MS, sample_rate) + 3
        n_fdn = ceil_samples(max(kr.RV_LENGTHS_MS), sample_rate) + 3
        n_ap = [max(1, round(ms * 0.001 * sample_rate)) for ms in kr.RV_ALLPASS_MS]
        pre_base = kr.RV_HEADER
        fdn_base = pre_base + 2 * n_pre
        ap_base = [fdn_base + kr.RV_LINES * (n_fdn + GUARD)]
        for n in n_ap[:-1]:
            ap_base.append(ap_base[-1] + n)
        return dict(n_pre=n_pre, n_fdn=n_fdn, n_ap=n_ap, pre_base=pre_base, fdn_base=fdn_base,
                    ap_base=ap_base, size=ap_base[-1] + n_ap[-1])

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return cls.layout(sample_rate)["size"]

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        lay = cls.layout(sample_rate)
        state[:] = 0.0
        state[kr.RV_NP] = lay["n_pre"]
        state[kr.RV_NF] = lay["n_fdn"]
        state[kr.RV_SCALE] = -1.0  # unset: start at the first segment's size, no glide
        state[kr.RV_PRE] = -1.0
        state[kr.RV_CS] = one_pole_coeff(REVERB_GLIDE_MS, sample_rate)
        state[kr.RV_PL_BASE] = lay["pre_base"]
        state[kr.RV_FDN_BASE] = lay["fdn_base"]
        for j in range(4):
            state[kr.RV_AP_N + j] = lay["n_ap"][j]
            state[kr.RV_AP_BASE + j] = lay["ap_base"][j]
        for j in range(kr.RV_LINES):
            state[kr.RV_LEN + j] = kr.RV_LENGTHS_MS[j] * 0.001 * sample_rate
