"""Band-limited oscillator shapes (minBLEP): the saw, pulse with PWM, triangle,
hard-synced saw, sub-oscillator, unison stack and 2-operator FM (voice scope: they follow the
voice pitch unless ``pitch`` is patched); and white/pink noise. Kernels and their measured
claims: ``instrument.kernels.osc_shapes``, ``.osc_pulse``, ``.osc_stack`` and ``.noise``."""

import numpy as np

from instrument.kernels import noise as noise_k
from instrument.kernels import osc_pulse as kp, osc_shapes as k, osc_stack as ku
from instrument.modules.base import Module, Port
from instrument.params import Curve, Kind, ParamSpec

_PITCH_PARAMS = (
    ParamSpec("transpose_st", "Transpose", "st", -48, 48, 0, kind=Kind.INTEGER,
              doc="Whole semitones added to the voice pitch."),
    ParamSpec("detune_cents", "Detune", "cents", -100.0, 100.0, 0.0,
              doc="Fine tuning in cents (1/100 semitone)."),
    ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
              doc="Peak amplitude of the output."),
)
# The minBLEP shapes: level is the amplitude of the waveform; band-limited edges overshoot it.
_BLEP_PARAMS = _PITCH_PARAMS[:2] + (
    ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
              doc="Amplitude of the waveform (-level..level); the band-limited jumps "
                  "overshoot to about 1.4 x level."),
)
_PITCH_IN = Port("pitch", default="pitch", doc="Frequency in Hz; the voice pitch by default.")


class _Blep(Module):
    """A minBLEP oscillator: fixed state rows plus correction buffers sized by the block."""

    fixed_rows = 0
    buffers = 1

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return k.state_rows(cls.fixed_rows, block_size, cls.buffers)


class Saw(_Blep):
    """Sawtooth band-limited by a 24-tap minimum-phase BLEP: aliases below -80 dB at a 2 kHz
    fundamental (48 kHz), flat to 18 kHz; the ``sync`` output marks each wrap for
    ``sync_saw``."""

    type_name = "saw"
    label = "Saw oscillator"
    doc = "Rising sawtooth, minBLEP band-limited (aliases below -80 dB); sync output."
    scope = "voice"
    params = _BLEP_PARAMS
    inputs = (_PITCH_IN,)
    outputs = ("out", "sync")
    fixed_rows = k.SAW_FIXED
    kernel = k.saw_minblep_kernel


class Pulse(_Blep):
    """Band-limited pulse with pulse-width modulation at any rate; zero-mean at every width;
    the ``sync`` output marks each wrap for ``sync_saw``."""

    type_name = "pulse"
    label = "Pulse oscillator"
    doc = "Square/pulse wave with PWM, minBLEP band-limited; sync output."
    scope = "voice"
    params = _BLEP_PARAMS + (
        ParamSpec("width", "Pulse width", "", kp.MIN_WIDTH, kp.MAX_WIDTH, 0.5, smoothing_ms=5.0,
                  doc="Fraction of the cycle at the high level; 0.5 is a square. Patch an "
                      "LFO here for PWM (audio rate works too)."),
    )
    inputs = (_PITCH_IN,)
    outputs = ("out", "sync")
    fixed_rows = kp.PULSE_FIXED
    kernel = kp.pulse_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        kp.pulse_reset(state, sample_rate)


class Triangle(_Blep):
    """Band-limited triangle (minBLAMP corners), sine phase, peak ``level``."""

    type_name = "triangle"
    label = "Triangle oscillator"
    doc = "Triangle wave, band-limited corners (minBLAMP)."
    scope = "voice"
    params = _PITCH_PARAMS
    inputs = (_PITCH_IN,)
    outputs = ("out",)
    fixed_rows = kp.TRI_FIXED
    kernel = kp.triangle_kernel


class SyncSaw(_Blep):
    """Saw at ``ratio`` times the pitch, hard-synced: its phase restarts on each rising edge of
    ``sync`` (patch a ``saw`` or ``pulse`` node's ``sync`` output there), band-limited at
    the restart's sub-sample position. Sweep ``ratio`` with an envelope for the classic
    sync lead."""

    type_name = "sync_saw"
    label = "Hard-sync saw"
    doc = "Band-limited saw reset by a master oscillator's sync output (hard sync)."
    scope = "voice"
    params = _BLEP_PARAMS + (
        ParamSpec("ratio", "Ratio", "x", 0.25, 16.0, 2.0, curve=Curve.LOG, smoothing_ms=5.0,
                  doc="Frequency relative to the pitch; above 1 the master's resets shape "
                      "the timbre."),
    )
    inputs = (_PITCH_IN, Port("sync", doc="A rising edge restarts the cycle; a value s in "
                                          "(0, 1] places it 1 - s samples early."))
    outputs = ("out",)
    fixed_rows = k.SAW_FIXED
    kernel = k.sync_saw_kernel


class Sub(_Blep):
    """Sub-oscillator one or two octaves below the pitch, square (band-limited) or sine,
    phase-locked to an oscillator at the pitch started with it."""

    type_name = "sub"
    label = "Sub-oscillator"
    doc = "Square or sine one or two octaves down, phase-locked to the pitch."
    scope = "voice"
    params = _BLEP_PARAMS + (
        ParamSpec.choice("octave", "Octave", ("-1 oct", "-2 oct"), 0,
                         doc="How far below the pitch."),
        ParamSpec.choice("shape", "Shape", ("Square", "Sine"), 0, doc="Waveform."),
    )
    inputs = (_PITCH_IN,)
    outputs = ("out",)
    fixed_rows = kp.PULSE_FIXED
    kernel = kp.sub_kernel

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        kp.pulse_reset(state, sample_rate)


class Unison(_Blep):
    """A stack of detuned band-limited saws, equal-power normalized, optionally spread in
    stereo (``left``/``right``; equal at ``stereo`` 0)."""

    type_name = "unison"
    label = "Unison saws"
    doc = "1-7 detuned minBLEP saws, equal-power summed, stereo spread."
    scope = "voice"
    params = _BLEP_PARAMS + (
        ParamSpec.integer("voices", "Voices", "", 1, ku.MAX_UNISON, 5,
                          doc="Saws in the stack."),
        ParamSpec("spread_cents", "Spread", "cents", 0.0, 100.0, 15.0, smoothing_ms=20.0,
                  doc="Detune of the outermost saws; the rest are spaced evenly between."),
        ParamSpec("stereo", "Stereo", "", 0.0, 1.0, 0.0, smoothing_ms=20.0,
                  doc="0: mono (left = right); 1: the outermost saws fully left and right."),
    )
    inputs = (_PITCH_IN,)
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
    params = _PITCH_PARAMS + (
        ParamSpec("ratio", "Ratio", "x", 0.25, 16.0, 1.0, curve=Curve.LOG, smoothing_ms=5.0,
                  doc="Modulator frequency relative to the pitch (whole numbers: harmonic)."),
        ParamSpec("index", "Index", "rad", 0.0, 10.0, 1.0, curve=Curve.EXP, skew=2.0,
                  smoothing_ms=5.0,
                  doc="Peak phase deviation of the carrier; patch an envelope here."),
        ParamSpec("feedback", "Feedback", "rad", 0.0, 1.5, 0.0, smoothing_ms=5.0,
                  doc="Modulator self-modulation: more harmonics as it rises."),
    )
    inputs = (_PITCH_IN,)
    outputs = ("out",)
    state_size = ku.FM2_STATE
    kernel = ku.fm2_kernel


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
