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


class SawFast(Module):
    """Sawtooth band-limited by a 2-point PolyBLEP at the voice pitch; the output's peak is
    ``level``. A third of the cost of ``saw`` (38 against 105 ns per voice per 64-sample
    block), for large polyphony on small machines; the price is aliasing: its strongest alias
    near a 2 kHz fundamental is about -30 dB (``saw``: below -80 dB)."""

    type_name = "saw_fast"
    label = "Saw oscillator (fast)"
    doc = "Rising sawtooth, PolyBLEP: cheap, aliases about -30 dB at 2 kHz; prefer saw."
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

