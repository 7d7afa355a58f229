"""Tempo sync for kernels: the note values a ``sync`` parameter offers and the tempo the engine
puts in the context (``CTX_TEMPO_BPM``, from MIDI clock, ``/tempo`` or a MIDI file).

A note value is a length in beats (quarter notes): 1/4 is one beat, 1/1 a 4/4 bar, a dotted
value 1.5 times its plain one, a triplet 2/3 of it. At ``bpm`` a value of ``b`` beats lasts
``b * 60 / bpm`` seconds: 1/4 at 120 BPM is 0.5 s (an LFO at 2 Hz), 1/8 at 100 BPM 0.3 s.
"""

import numpy as np
from numba import njit

from instrument.layout import CTX_TEMPO_BPM, DEFAULT_TEMPO_BPM, MAX_TEMPO_BPM, MIN_TEMPO_BPM

# Choice index 0 is "Off" (the module's own rate or time); the others are note values.
SYNC_CHOICES = ("Off", "4/1", "2/1", "1/1", "1/2", "1/2.", "1/2T", "1/4", "1/4.", "1/4T",
                "1/8", "1/8.", "1/8T", "1/16", "1/16.", "1/16T", "1/32")
SYNC_BEATS = np.array([0.0, 16.0, 8.0, 4.0, 2.0, 3.0, 4.0 / 3.0, 1.0, 1.5, 2.0 / 3.0,
                       0.5, 0.75, 1.0 / 3.0, 0.25, 0.375, 1.0 / 6.0, 0.125])


@njit(cache=True, inline="always")
def sync_beats(choice):
    """Length in beats of sync choice ``choice``; 0.0 for Off or an index out of range."""
    k = int(choice)
    if k <= 0 or k >= SYNC_BEATS.shape[0]:
        return 0.0
    return SYNC_BEATS[k]


@njit(cache=True, inline="always")
def context_tempo_bpm(ctx, v):
    """The tempo in lane ``v``'s context, clamped to MIN..MAX_TEMPO_BPM; DEFAULT_TEMPO_BPM
    where none was set (0, as a context outside the engine holds) or it is not finite."""
    bpm = ctx[CTX_TEMPO_BPM, v]
    if not (bpm > 0.0 and bpm < 1e9):
        return DEFAULT_TEMPO_BPM
    return min(max(bpm, MIN_TEMPO_BPM), MAX_TEMPO_BPM)
