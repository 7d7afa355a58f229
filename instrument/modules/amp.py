"""Amplitude and mixing modules."""

from instrument.kernels.amp import gain_kernel, mixer_kernel, vca_kernel
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


class Vca(Module):
    """Voltage-controlled amplifier: out = in * cv * gain, scaled by velocity."""

    type_name = "vca"
    label = "VCA"
    doc = "Multiplies its input by a control signal (an envelope), a gain and the velocity."
    scope = "voice"
    params = (
        ParamSpec("gain", "Gain", "", 0.0, 2.0, 1.0, doc="Linear gain."),
        ParamSpec("velocity_amount", "Velocity", "", 0.0, 1.0, 0.5,
                  doc="0: velocity ignored; 1: gain proportional to velocity."),
    )
    inputs = (Port("in"), Port("cv", default="one", doc="Control signal, usually an envelope."))
    outputs = ("out",)
    kernel = vca_kernel


class Gain(Module):
    """Gain in decibels: 0 dB passes the input unchanged, -6.02 dB halves it."""

    type_name = "gain"
    label = "Gain"
    doc = "Scales its input by a gain in dB."
    scope = "any"
    params = (ParamSpec("gain_db", "Gain", "dB", -60.0, 12.0, 0.0, curve=Curve.DB,
                        doc="Gain in decibels."),)
    inputs = (Port("in"),)
    outputs = ("out",)
    state_size = 2
    kernel = gain_kernel


class Mixer(Module):
    """Sums four inputs, each with a linear level (1.0 passes it unchanged)."""

    type_name = "mixer"
    label = "Mixer"
    doc = "Four-input mixer."
    scope = "any"
    params = tuple(ParamSpec(f"level{i}", f"Level {i}", "", 0.0, 2.0, 1.0) for i in range(1, 5))
    inputs = tuple(Port(f"in{i}") for i in range(1, 5))
    outputs = ("out",)
    kernel = mixer_kernel
