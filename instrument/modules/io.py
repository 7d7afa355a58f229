"""Graph endpoints: the output of a graph, and the voices' sum as the global graph's source."""

from instrument.kernels.amp import controls_kernel, expression_kernel, nop_kernel, output_kernel
from instrument.modules.base import Module, Port


class Output(Module):
    """End of a graph. ``in`` goes to both channels, ``left``/``right`` to one each. In the voice
    graph its output is summed over the voices into the global graph's ``voices`` node; in the
    global graph it is the main output."""

    type_name = "output"
    label = "Output"
    doc = "Graph output (stereo; a mono signal into 'in' goes to both sides)."
    scope = "any"
    inputs = (Port("in"), Port("left"), Port("right"))
    outputs = ("out_left", "out_right")
    kernel = output_kernel


class Voices(Module):
    """Source of the global graph: the sum of all voices, left and right."""

    type_name = "voices"
    label = "Voices"
    doc = "The mixed voices, as the input of the global effects graph."
    scope = "global"
    inputs = ()
    outputs = ("left", "right")
    kernel = nop_kernel


class Controls(Module):
    """The voice's controllers as signals, 0..1: velocity, key (MIDI note / 127), mod wheel
    (CC1) and pressure (channel or poly aftertouch; a note on an MPE member channel has its
    channel's own, ``engine.expression``). Patch them into parameters, e.g.
    ``"ctl.mod_wheel -> filt.cutoff_hz * 0.3"``. The timbre (CC74) is the ``expression``
    module's."""

    type_name = "controls"
    label = "Controls"
    doc = "Velocity, key, mod wheel and aftertouch of the voice, as 0..1 signals."
    scope = "voice"
    inputs = ()
    outputs = ("velocity", "key", "mod_wheel", "pressure")
    kernel = controls_kernel


class Expression(Module):
    """The voice's timbre as a signal, 0..1: CC74, MPE's third dimension. A note on an MPE
    member channel has its own (the channel's CC74, sent before and during the note); any other
    note takes the last CC74 of a non-member channel. 0 until a CC74 comes. Patch it like the
    ``controls`` outputs, e.g. ``"expr.timbre -> filt.cutoff_hz * 0.5"``."""

    type_name = "expression"
    label = "Expression"
    doc = "Timbre (CC74, per note with MPE) of the voice, as a 0..1 signal."
    scope = "voice"
    inputs = ()
    outputs = ("timbre",)
    kernel = expression_kernel
