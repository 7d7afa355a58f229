"""Envelope modules: ADSR, AR and the ADSR with stage curves and retrigger behaviour.
Kernels and the envelope math: ``instrument.kernels.envelopes``."""

import numpy as np

from instrument.kernels.envelopes import (
    ADSR_STATE, ENV_STATE, adsr_curve_kernel, adsr_kernel, adsr_read_at_points, ar_kernel,
    env_read_at_points, env_reset,
)
from instrument.modules.base import Module, Port
from instrument.params import Curve, ParamSpec


def _time(name: str, label: str, default_ms: float, doc: str) -> ParamSpec:
    return ParamSpec(name, label, "ms", 0.0, 20000.0, default_ms, curve=Curve.EXP, skew=3.0,
                     smoothing_ms=0.0, doc=doc)


_GATE_INPUTS = (
    Port("gate", default="gate", doc="Held above 0.5 while the note sounds."),
    Port("trigger", default="trigger", doc="A sample above 0.5 restarts the attack."),
)


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
    inputs = _GATE_INPUTS
    outputs = ("out",)
    state_size = ADSR_STATE
    kernel = adsr_kernel

    @classmethod
    def read_at_points(cls, state: np.ndarray) -> bool:
        adsr_read_at_points(state)  # a filter envelope: its steady segments jump point to point
        return True


class _CurvedEnvelope(Module):
    """What the AR and the curved ADSR share: the gate inputs and the state layout of
    ``kernels.envelopes`` (``ENV_STATE``), reset and read-at-points marking."""

    scope = "voice"
    inputs = _GATE_INPUTS
    outputs = ("out",)
    state_size = ENV_STATE

    @classmethod
    def read_at_points(cls, state: np.ndarray) -> bool:
        env_read_at_points(state)  # steady segments jump from point to point
        return True

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        env_reset(state)


class Ar(_CurvedEnvelope):
    """Attack-release envelope, 0..1: a linear attack to full level, held while the gate is
    high, an exponential release that lands on silence after exactly ``release_ms``."""

    type_name = "ar"
    label = "AR envelope"
    doc = "Gate-driven attack-release envelope with exact stage times."
    params = (
        _time("attack_ms", "Attack", 5.0, "Time from silence to full level."),
        _time("release_ms", "Release", 300.0, "Time from the current level to silence."),
    )
    kernel = ar_kernel


class AdsrCurve(_CurvedEnvelope):
    """ADSR envelope, 0..1, with a stage ``curve`` and a ``retrigger`` behaviour.

    ``curve`` shapes attack, decay and release alike: 0 straight lines, 1 strongly exponential
    (each stage then spans 80 dB of an exponential; the attack is the RC-like charge: fast,
    then easing into the top). The stage with curvature ``k = curve * ln(1e4)`` follows
    ``(1 - exp(-k x)) / (1 - exp(-k))`` of normalised time x. Attack lasts ``attack_ms`` from
    silence, decay ``decay_ms`` from full level, release ``release_ms`` from any level: each to
    the sample. ``retrigger``: a new note (trigger) restarts the attack from the current level
    (no click) or from zero. In legato mode the engine sends no trigger for a tied note, so the
    envelope carries on.
    """

    type_name = "adsr_curve"
    label = "ADSR (curves)"
    doc = "ADSR envelope with adjustable stage curvature and retrigger behaviour."
    params = (
        _time("attack_ms", "Attack", 5.0, "Time from silence to full level."),
        _time("decay_ms", "Decay", 200.0, "Time from full level down to the sustain level."),
        ParamSpec("sustain", "Sustain", "", 0.0, 1.0, 0.7, doc="Level held while the key is down."),
        _time("release_ms", "Release", 300.0, "Time from the current level to silence."),
        ParamSpec("curve", "Curve", "", 0.0, 1.0, 0.5,
                  doc="Stage shape: 0 linear, 1 strongly exponential (80 dB per stage)."),
        ParamSpec.choice("retrigger", "Retrigger", ("From current", "From zero"), 0,
                         doc="Where a retriggered attack starts: the current level, or 0."),
    )
    kernel = adsr_curve_kernel
