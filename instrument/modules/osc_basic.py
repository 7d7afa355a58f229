"""The plain oscillator modules: PolyBLEP saw (``saw_fast``) and sine. Kernels:
``instrument.kernels.osc_basic``; the band-limited shapes: ``modules.osc_saw`` and the files
``modules.oscillators`` names."""

from instrument.kernels.osc_basic import STATE_SIZE, saw_fast_kernel, sine_kernel
from instrument.modules.base import Module
from instrument.modules.oscillators import PITCH_IN, PITCH_PARAMS


class SawFast(Module):
    """Sawtooth band-limited by a 2-point PolyBLEP at the voice pitch; the output's peak is
    ``level``. A third of the cost of ``saw`` (38 against 105 ns per voice per 64-sample
    block), for large polyphony on small machines; the price is aliasing: its strongest alias
    near a 2 kHz fundamental is about -30 dB (``saw``: below -80 dB)."""

    type_name = "saw_fast"
    label = "Saw oscillator (fast)"
    doc = "Rising sawtooth, PolyBLEP: cheap, aliases about -30 dB at 2 kHz; prefer saw."
    scope = "voice"
    params = PITCH_PARAMS
    inputs = (PITCH_IN,)
    outputs = ("out",)
    state_size = STATE_SIZE
    kernel = saw_fast_kernel


class Sine(Module):
    """Sine at the voice pitch; the output's peak is ``level``."""

    type_name = "sine"
    label = "Sine oscillator"
    doc = "Pure sine wave."
    scope = "voice"
    params = PITCH_PARAMS
    inputs = (PITCH_IN,)
    outputs = ("out",)
    state_size = STATE_SIZE
    kernel = sine_kernel
