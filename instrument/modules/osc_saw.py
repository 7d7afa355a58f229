"""Saw and hard-synced saw modules (minBLEP). Kernels and their measured claims:
``instrument.kernels.osc_saw``."""

from instrument.kernels import osc_saw as k
from instrument.modules.base import Port
from instrument.modules.oscillators import BLEP_PARAMS, PITCH_IN, Blep
from instrument.params import Curve, ParamSpec


class Saw(Blep):
    """Sawtooth band-limited by a 24-tap minimum-phase BLEP: aliases below -80 dB at a 2 kHz
    fundamental (48 kHz), flat to 18 kHz; the ``sync`` output marks each wrap for
    ``sync_saw``."""

    type_name = "saw"
    label = "Saw oscillator"
    doc = "Rising sawtooth, minBLEP band-limited (aliases below -80 dB); sync output."
    scope = "voice"
    params = BLEP_PARAMS
    inputs = (PITCH_IN,)
    outputs = ("out", "sync")
    fixed_rows = k.SAW_FIXED
    kernel = k.saw_minblep_kernel


class SyncSaw(Blep):
    """Saw at ``ratio`` times the pitch, hard-synced: its phase restarts on each rising edge of
    ``sync`` (patch a ``saw`` or ``pulse`` node's ``sync`` output there), band-limited at
    the restart's sub-sample position. Sweep ``ratio`` with an envelope for the classic
    sync lead."""

    type_name = "sync_saw"
    label = "Hard-sync saw"
    doc = "Band-limited saw reset by a master oscillator's sync output (hard sync)."
    scope = "voice"
    params = BLEP_PARAMS + (
        ParamSpec("ratio", "Ratio", "x", 0.25, 16.0, 2.0, curve=Curve.LOG, smoothing_ms=5.0,
                  doc="Frequency relative to the pitch; above 1 the master's resets shape "
                      "the timbre."),
    )
    inputs = (PITCH_IN, Port("sync", doc="A rising edge restarts the cycle; a value s in "
                                          "(0, 1] places it 1 - s samples early."))
    outputs = ("out",)
    fixed_rows = k.SAW_FIXED
    kernel = k.sync_saw_kernel
