"""Modulation sources and stereo placement: LFO, slew limiter, equal-power pan, stereo width.
Kernels: ``instrument.kernels.modulation``. The envelopes are in ``modules.envelopes``.

Modulation outputs are plain signals; patched into a parameter they move it in normalized
units (``"lfo.out -> filt.cutoff_hz * 0.3"``: the LFO at +1 raises the cutoff by 30% of its
knob range). Glide is not a module: the engine does it (``[voice] glide_ms``).
"""

import numpy as np

from instrument.kernels.modulation import (
    LFO_STATE, SLEW_STATE, lfo_kernel, lfo_read_at_points, pan_kernel, slew_kernel, slew_reset,
    width_kernel,
)
from instrument.kernels.tempo import SYNC_CHOICES
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


class Lfo(Module):
    """Low-frequency oscillator: sine, triangle, saw, square or sample-and-hold at ``rate_hz``.

    The output is bipolar, -depth..+depth (``unipolar``: 0..depth). Every shape starts its
    cycle at ``phase_deg``; sine, triangle and saw pass 0 rising there, the square starts high.
    ``mode`` free: the phase runs on regardless of notes (all voices follow one LFO: a new
    voice joins the phase of those already sounding); retrigger: each note (the ``trigger``
    input) restarts the cycle. In the global graph there is no trigger: it always runs free.
    Sample-and-hold draws a new value (deterministic xorshift32 per voice) at each cycle start.
    ``sync`` (other than Off) sets the rate from the tempo instead of ``rate_hz``: one cycle
    per note value (1/4 at 120 BPM: 2 Hz; dotted 1.5x, triplet 2/3 of the value), following
    MIDI clock or ``/tempo`` as it changes; a MIDI start (or continue) puts the cycle where the
    song position says (a 1/1 LFO restarts on the bar).
    """

    type_name = "lfo"
    label = "LFO"
    doc = "LFO: sine, triangle, saw, square or sample & hold; free-running or retriggered."
    scope = "any"
    params = (
        ParamSpec.choice("shape", "Shape", ("Sine", "Triangle", "Saw", "Square", "S&H"), 0,
                         doc="Waveform; S&H holds a random value for each cycle."),
        ParamSpec("rate_hz", "Rate", "Hz", 0.01, 50.0, 2.0, curve=Curve.LOG,
                  doc="Cycles per second."),
        ParamSpec("depth", "Depth", "", 0.0, 1.0, 1.0,
                  doc="Output scale: the output swings -depth..+depth (0..depth unipolar)."),
        ParamSpec.choice("mode", "Mode", ("Free", "Retrigger"), 0,
                         doc="Free: runs on across notes; Retrigger: each note restarts it."),
        ParamSpec("phase_deg", "Phase", "deg", 0.0, 360.0, 0.0,
                  doc="Start phase of the cycle, added to the running phase."),
        ParamSpec.toggle("unipolar", "Unipolar", False,
                         doc="Off: -depth..+depth; on: 0..depth."),
        ParamSpec.choice("sync", "Sync", SYNC_CHOICES, 0,
                         doc="Off: rate_hz; else one cycle per note value at the tempo "
                             "(MIDI clock or /tempo)."),
    )
    inputs = (Port("trigger", default="trigger",
                   doc="A sample above 0.5 restarts the cycle (Retrigger mode)."),)
    outputs = ("out",)
    state_size = LFO_STATE
    kernel = lfo_kernel

    @classmethod
    def read_at_points(cls, state: np.ndarray) -> bool:
        lfo_read_at_points(state)  # the shape only at the points (not sample-and-hold)
        return True


class Slew(Module):
    """Slew limiter for smoothing modulation: linear (a full-scale step of 1.0 takes
    ``time_ms``) or exponential (one-pole, 63.2% of a step after ``time_ms``)."""

    type_name = "slew"
    label = "Slew"
    doc = "Slew limiter / lag: smooths steps in a control signal."
    scope = "any"
    params = (
        ParamSpec("time_ms", "Time", "ms", 0.0, 10000.0, 50.0, curve=Curve.EXP, skew=3.0,
                  smoothing_ms=0.0,
                  doc="Linear: time for a change of 1.0; exponential: time constant."),
        ParamSpec.choice("mode", "Mode", ("Linear", "Exponential"), 0,
                         doc="Linear: constant rate; Exponential: one-pole lag."),
    )
    inputs = (Port("in", doc="The signal to smooth."),)
    outputs = ("out",)
    state_size = SLEW_STATE
    kernel = slew_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        slew_reset(state)


class Pan(Module):
    """Equal-power pan of a mono input: -1 hard left, 0 centre (-3.01 dB each side), +1 hard
    right; left**2 + right**2 equals in**2 on every sample."""

    type_name = "pan"
    label = "Pan"
    doc = "Equal-power (sin/cos) panner: mono in, left/right out."
    scope = "any"
    params = (ParamSpec("pan", "Pan", "", -1.0, 1.0, 0.0,
                        doc="-1 left, 0 centre, +1 right."),)
    inputs = (
        Port("in", doc="Mono signal."),
        Port("mod", doc="Added to pan per sample (pan units, -1..1): audio-rate modulation."),
    )
    outputs = ("left", "right")
    kernel = pan_kernel


class Width(Module):
    """Stereo width by mid/side: 0 mono, 1 unchanged, 2 side doubled (mid is kept)."""

    type_name = "width"
    label = "Stereo width"
    doc = "Mid/side stereo width: 0 mono, 1 unchanged, 2 twice the side signal."
    scope = "any"
    params = (ParamSpec("width", "Width", "", 0.0, 2.0, 1.0,
                        doc="Side gain: 0 mono, 1 unchanged, 2 doubled."),)
    inputs = (Port("left"), Port("right"))
    outputs = ("out_left", "out_right")
    kernel = width_kernel
