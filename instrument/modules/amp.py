"""Amplitude and mixing modules."""

from instrument.kernels.amp import VCA_STATE, gain_kernel, mixer_kernel, vca_kernel
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


class Vca(Module):
    """Voltage-controlled amplifier: out = in * cv * gain, scaled by velocity.

    Velocity v (MIDI velocity / 127) scales the gain by two factors, both 1 at velocity 127:
    ``(1 - velocity_amount + velocity_amount * v)``, linear in amplitude (the only one before
    ``velocity_range_db`` existed: it spans a few dB, 5 dB between velocity 30 and 120 at
    amount 0.6), and ``10 ** (-velocity_range_db * (1 - v) / 20)``, linear in dB: velocity 30
    sits ``velocity_range_db * 90 / 127`` dB below velocity 120 (21.3 dB at 30), every
    velocity step is worth the same number of dB. ``velocity_range_db`` 0 (the default) is the
    linear law alone, exactly; ``velocity_amount`` 0 the dB law alone. Measured in
    tests/presets/test_gain_staging.py."""

    type_name = "vca"
    label = "VCA"
    doc = "Multiplies its input by a control signal (an envelope), a gain and the velocity."
    scope = "voice"
    params = (
        ParamSpec("gain", "Gain", "", 0.0, 2.0, 1.0, doc="Linear gain."),
        ParamSpec("velocity_amount", "Velocity", "", 0.0, 1.0, 0.5,
                  doc="Linear velocity law: 0 ignores velocity; 1 makes the gain "
                      "proportional to velocity."),
        ParamSpec("velocity_range_db", "Velocity range", "dB", 0.0, 60.0, 0.0,
                  doc="dB velocity law: velocity 127 is 0 dB, velocity 0 this many dB "
                      "lower, in equal dB steps; 0 is off (the linear law alone)."),
    )
    inputs = (Port("in"), Port("cv", default="one", doc="Control signal, usually an envelope."))
    outputs = ("out",)
    state_size = VCA_STATE
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
