"""Envelope modules."""

from instrument.kernels.envelopes import ADSR_STATE, adsr_kernel
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


def _time(name: str, label: str, default_ms: float, doc: str) -> ParamSpec:
    return ParamSpec(name, label, "ms", 0.0, 20000.0, default_ms, curve=Curve.EXP, skew=3.0,
                     smoothing_ms=0.0, doc=doc)


class Adsr(Module):
    """Attack-decay-sustain-release envelope, 0..1. Each stage lasts exactly its time (to the
    sample): linear attack, exponential decay and release that land on their goal."""

    type_name = "adsr"
    label = "ADSR envelope"
    doc = "Gate-driven ADSR envelope generator with exact stage times."
    scope = "voice"
    params = (
        _time("attack_ms", "Attack", 5.0, "Time from the current level to full level."),
        _time("decay_ms", "Decay", 200.0, "Time from full level down to the sustain level."),
        ParamSpec("sustain", "Sustain", "", 0.0, 1.0, 0.7, doc="Level held while the key is down."),
        _time("release_ms", "Release", 300.0, "Time from the current level to silence."),
    )
    inputs = (
        Port("gate", default="gate", doc="Held above 0.5 while the note sounds."),
        Port("trigger", default="trigger", doc="A sample above 0.5 restarts the attack."),
    )
    outputs = ("out",)
    state_size = ADSR_STATE
    kernel = adsr_kernel
