"""Stereo delay and chorus, global effects on delay lines (``prepare`` sizes them from the
sample rate: 2 s of stereo delay at 96 kHz is 384k slots, 3 MB; ``reset_state`` writes the line
sizes and the rate-dependent constants into the header rows the kernels read). Kernels and
their measured claims: ``instrument.kernels.delay``."""

from __future__ import annotations

import numpy as np

from instrument.kernels import delay as kd
from instrument.kernels.delay_lines import GUARD
from instrument.kernels.tempo import SYNC_CHOICES
from instrument.modules.base import STEREO_IN, STEREO_OUT, Module, ceil_samples
from instrument.params import Curve, ParamSpec, one_pole_coeff

DELAY_MAX_MS = 2000.0
DELAY_GLIDE_MS = 30.0  # each of the two one-poles of the internal time glide (99% after this)
PING_PONG_FADE_MS = 20.0  # ping-pong routing crossfades instead of switching
CHORUS_MAX_DELAY_MS = 30.0
CHORUS_MAX_DEPTH_MS = 10.0


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
        return ceil_samples(DELAY_MAX_MS, sample_rate) + 4

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return kd.DL_HEADER + 2 * (cls.line_size(sample_rate) + GUARD)

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
        return ceil_samples(CHORUS_MAX_DELAY_MS + CHORUS_MAX_DEPTH_MS, sample_rate) + 4

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return kd.CH_HEADER + 2 * (cls.line_size(sample_rate) + GUARD)

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        state[:] = 0.0
        state[kd.CH_N] = cls.line_size(sample_rate)
        state[kd.CH_COS] = 1.0  # LFO phase 0: left taps at sin 0, 120, 240 degrees
