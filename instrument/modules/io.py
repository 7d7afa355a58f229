"""Graph endpoints: the output of a graph, and the voices' sum as the global graph's source."""

from instrument.kernels.amp import nop_kernel, output_kernel
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
