"""Global effects: stereo delay, chorus, FDN reverb, drive, 3-band EQ.

Each takes ``left``/``right`` and gives ``out_left``/``out_right`` (an input and an output
cannot share a name), so a chain reads ``"voices.left -> dly.left"``,
``"dly.out_left -> rev.left"``, ``"rev.out_left -> main.left"``. ``prepare`` sizes the state
from the sample rate (delay lines included: 2 s of stereo delay at 96 kHz is 384k slots, 3 MB);
``reset_state`` writes the line sizes and the rate-dependent constants into the header rows the
kernels read. Kernels: ``instrument.kernels.delay``, ``.reverb`` and ``.drive_eq``.
"""

from __future__ import annotations

import math

import numpy as np

from instrument.kernels import delay as kd, delay_lines as k, drive_eq as kt, reverb as kr
from instrument.kernels.tempo import SYNC_CHOICES
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec, one_pole_coeff

STEREO_IN = (Port("left", doc="Left input."), Port("right", doc="Right input."))
STEREO_OUT = ("out_left", "out_right")

DELAY_MAX_MS = 2000.0
DELAY_GLIDE_MS = 30.0  # each of the two one-poles of the internal time glide (99% after this)
PING_PONG_FADE_MS = 20.0  # ping-pong routing crossfades instead of switching
CHORUS_MAX_DELAY_MS = 30.0
CHORUS_MAX_DEPTH_MS = 10.0
REVERB_GLIDE_MS = 60.0  # internal glide of size and predelay


def _samples(ms: float, sample_rate: float) -> int:
    return math.ceil(ms * 0.001 * sample_rate)


class Delay(Module):
    """Stereo delay: exact echo after ``time_ms``, repeats scaled by ``feedback`` (each one
    passes the ``damping_hz`` low-pass once more), optional ping-pong, equal-power mix.
    ``sync`` (other than Off) sets the time from the tempo instead: one note value (1/8 at
    100 BPM: 300 ms; at most 2 s), gliding to the new time when the tempo changes."""

    type_name = "delay"
    label = "Delay"
    doc = ("Stereo delay with feedback, ping-pong and a damping low-pass in the feedback path. "
           "Time changes glide (pitch bends, no clicks). Mix is equal-power.")
    scope = "global"
    params = (
        ParamSpec("time_ms", "Time", "ms", 1.0, DELAY_MAX_MS, 375.0, curve=Curve.LOG,
                  smoothing_ms=100.0, doc="Delay time; changes glide, bending pitch."),
        ParamSpec("feedback", "Feedback", "", 0.0, 0.95, 0.35,
                  doc="Level of each repeat relative to the one before (at DC)."),
        ParamSpec.toggle("ping_pong", "Ping-pong", False,
                         doc="Mono sum into the left line, feedback crossing sides: repeats "
                             "alternate left and right (switching crossfades over 20 ms)."),
        ParamSpec("damping_hz", "Damping", "Hz", 200.0, 20000.0, 6000.0, curve=Curve.LOG,
                  doc="One-pole low-pass in the feedback path: each repeat is darker."),
        ParamSpec("mix", "Mix", "", 0.0, 1.0, 0.3,
                  doc="Dry/wet, equal-power: dry cos(pi/2 mix), wet sin(pi/2 mix)."),
        ParamSpec.choice("sync", "Sync", SYNC_CHOICES, 0,
                         doc="Off: time_ms; else one note value at the tempo (MIDI clock or "
                             "/tempo), at most 2 s."),
    )
    inputs = STEREO_IN
    outputs = STEREO_OUT
    kernel = kd.delay_kernel

    @classmethod
    def line_size(cls, sample_rate: float) -> int:
        return _samples(DELAY_MAX_MS, sample_rate) + 4

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return kd.DL_HEADER + 2 * (cls.line_size(sample_rate) + k.GUARD)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[kd.DL_N] = cls.line_size(sample_rate)
        state[kd.DL_TIME] = -1.0  # unset: the first segment starts at its time, no glide
        state[kd.DL_PP] = -1.0
        state[kd.DL_CT] = one_pole_coeff(DELAY_GLIDE_MS, sample_rate)
        state[kd.DL_CP] = one_pole_coeff(PING_PONG_FADE_MS, sample_rate)


class Chorus(Module):
    """Stereo chorus: three modulated taps per side, LFO quarter-cycle apart between sides."""

    type_name = "chorus"
    label = "Chorus"
    doc = ("Stereo chorus: three delay taps per side swept by one internal sine LFO, 120 "
           "degrees apart; the right side a quarter cycle ahead. Mix is linear.")
    scope = "global"
    params = (
        ParamSpec("rate_hz", "Rate", "Hz", 0.05, 10.0, 0.6, curve=Curve.LOG,
                  doc="LFO rate."),
        ParamSpec("depth_ms", "Depth", "ms", 0.0, CHORUS_MAX_DEPTH_MS, 2.5,
                  doc="Sweep of each tap's delay around delay_ms (+- depth_ms)."),
        ParamSpec("delay_ms", "Delay", "ms", 3.0, CHORUS_MAX_DELAY_MS, 12.0,
                  doc="Centre delay of the taps (the sweep stops at 2 samples)."),
        ParamSpec("mix", "Mix", "", 0.0, 1.0, 0.5,
                  doc="Dry/wet, linear: (1 - mix) dry + mix wet; 0.5 is the classic chorus."),
    )
    inputs = STEREO_IN
    outputs = STEREO_OUT
    kernel = kd.chorus_kernel

    @classmethod
    def line_size(cls, sample_rate: float) -> int:
        return _samples(CHORUS_MAX_DELAY_MS + CHORUS_MAX_DEPTH_MS, sample_rate) + 4

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return kd.CH_HEADER + 2 * (cls.line_size(sample_rate) + k.GUARD)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[kd.CH_N] = cls.line_size(sample_rate)
        state[kd.CH_COS] = 1.0  # LFO phase 0: left taps at sin 0, 120, 240 degrees


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
        n_pre = _samples(kr.RV_PREDELAY_MAX_MS, sample_rate) + 3
        n_fdn = _samples(max(kr.RV_LENGTHS_MS), sample_rate) + 3
        n_ap = [max(1, round(ms * 0.001 * sample_rate)) for ms in kr.RV_ALLPASS_MS]
        pre_base = kr.RV_HEADER
        fdn_base = pre_base + 2 * n_pre
        ap_base = [fdn_base + kr.RV_LINES * (n_fdn + k.GUARD)]
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
        ParamSpec("dc_block_hz", "DC block", "Hz", 0.0, kt.DC_BLOCK_MAX_HZ, 0.0,
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
