"""Oscillator modules (voice scope: they follow the voice pitch unless ``pitch`` is patched)."""

from instrument.kernels.oscillators import STATE_SIZE, saw_kernel, sine_kernel
from instrument.modules.base import Module, Port
from instrument.params import Kind, ParamSpec

_PITCH_PARAMS = (
    ParamSpec("transpose_st", "Transpose", "st", -48, 48, 0, kind=Kind.INTEGER,
              doc="Whole semitones added to the voice pitch."),
    ParamSpec("detune_cents", "Detune", "cents", -100.0, 100.0, 0.0,
              doc="Fine tuning in cents (1/100 semitone)."),
    ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
              doc="Peak amplitude of the output."),
)
_PITCH_IN = (Port("pitch", default="pitch", doc="Frequency in Hz; the voice pitch by default."),)


class Saw(Module):
    """Band-limited sawtooth at the voice pitch; the output's peak is ``level``."""

    type_name = "saw"
    label = "Saw oscillator"
    doc = "Band-limited (PolyBLEP) rising sawtooth."
    scope = "voice"
    params = _PITCH_PARAMS
    inputs = _PITCH_IN
    outputs = ("out",)
    state_size = STATE_SIZE
    kernel = saw_kernel


class Sine(Module):
    """Sine at the voice pitch; the output's peak is ``level``."""

    type_name = "sine"
    label = "Sine oscillator"
    doc = "Pure sine wave."
    scope = "voice"
    params = _PITCH_PARAMS
    inputs = _PITCH_IN
    outputs = ("out",)
    state_size = STATE_SIZE
    kernel = sine_kernel

