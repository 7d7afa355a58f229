"""What the filter modules share: cutoff and key-tracking parameters, and their inputs. The
filters: ``modules.svf`` (svf, svf_lowpass), ``modules.ladder``, ``modules.onepole``; kernels
and their measured claims: ``instrument.kernels.filters`` and the files it names.

The key-tracked filters (svf, ladder, onepole) run in the voice or the global graph. Their
cutoff follows the ``key`` input (the voice pitch unless patched) by ``key_track``: 1.0 moves
the cutoff one octave per octave played, middle C leaves it where ``cutoff_hz`` says; in the
global graph there is no voice pitch and key tracking does nothing.
"""

from instrument.modules.base import Port
from instrument.params import Curve, ParamSpec

CUTOFF = ParamSpec("cutoff_hz", "Cutoff", "Hz", 20.0, 20000.0, 2000.0, curve=Curve.LOG,
                   smoothing_ms=20.0,
                   doc="Corner frequency at middle C (key tracking moves it with the key).")
KEY_TRACK = ParamSpec("key_track", "Key track", "", 0.0, 1.0, 0.0, smoothing_ms=20.0,
                      doc="How far the cutoff follows the key: 0 not at all, 0.5 half an "
                          "octave per octave, 1 one octave per octave (relative to middle C).")
FILTER_INPUTS = (
    Port("in", doc="Audio to filter."),
    Port("key", default="pitch",
         doc="Frequency in Hz that key tracking follows; the voice pitch by default."),
)
