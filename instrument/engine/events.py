"""Timestamped events: the one vocabulary the engine understands.

MIDI and OSC are converted to these at the edge (mido messages never reach the engine). An event
is a row of five float64 numbers ``(frame, kind, channel, a, b)``:

- ``frame``: sample offset inside the block (engine input) or absolute frame (event lists).
- ``kind``: one of the constants below.
- ``channel``: MIDI channel 0..15 (0 where it does not apply).
- ``a``, ``b``: meaning depends on ``kind``:

==================  =============================  ================================
kind                a                              b
==================  =============================  ================================
NOTE_ON             MIDI note 0..127               velocity in (0, 1]
NOTE_OFF            MIDI note 0..127               release velocity in [0, 1]
PARAM               parameter index in the plan    normalized value in [0, 1]
PITCH_BEND          bend in [-1, 1]                unused
CC                  controller number 0..127       value in [0, 1]
ALL_NOTES_OFF       unused                         unused
ALL_SOUND_OFF       unused                         unused
CHANNEL_PRESSURE    pressure in [0, 1]             unused
POLY_PRESSURE       MIDI note 0..127               pressure in [0, 1]
PROGRAM             program number 0..127          unused
BEND_RANGE          pitch-bend range, semitones    unused (RPN 0; until the next preset)
MPE_ZONE            member channel count 0..15     unused (MCM, RPN 6; channel 0 or 15)
TEMPO               tempo in BPM, 20..300          unused (MIDI clock or /tempo)
TRANSPORT           song position in beats         unused (the downbeat of a MIDI
                                                   start or continue: synced LFOs
                                                   take their phase from it)
==================  =============================  ================================

The ``channel`` matters only with an MPE zone on (``engine.expression``): then member channels'
bend, pressure, CC74 and notes belong to one voice each. Without MPE the engine ignores it.

A NOTE_ON with velocity 0 is a NOTE_OFF (the MIDI convention); converters emit NOTE_OFF for it.
"""

from __future__ import annotations

import numpy as np

NOTE_ON = 1
NOTE_OFF = 2
PARAM = 3
PITCH_BEND = 4
CC = 5
ALL_NOTES_OFF = 6
ALL_SOUND_OFF = 7
CHANNEL_PRESSURE = 8
POLY_PRESSURE = 9
PROGRAM = 10
BEND_RANGE = 11
MPE_ZONE = 12
TEMPO = 13
TRANSPORT = 14

EVENT_WIDTH = 5
FRAME, KIND, CHANNEL, A, B = range(EVENT_WIDTH)

CC_MOD_WHEEL = 1
CC_SUSTAIN = 64
CC_TIMBRE = 74  # MPE's third dimension ("brightness"), per voice on member channels
CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123

KIND_NAMES = {
    NOTE_ON: "note_on",
    NOTE_OFF: "note_off",
    PARAM: "param",
    PITCH_BEND: "pitch_bend",
    CC: "cc",
    ALL_NOTES_OFF: "all_notes_off",
    ALL_SOUND_OFF: "all_sound_off",
    CHANNEL_PRESSURE: "channel_pressure",
    POLY_PRESSURE: "poly_pressure",
    PROGRAM: "program",
    BEND_RANGE: "bend_range",
    MPE_ZONE: "mpe_zone",
    TEMPO: "tempo",
    TRANSPORT: "transport",
}


def event_array(rows) -> np.ndarray:
    """Build an ``(n, 5)`` float64 event array from an iterable of 5-tuples."""
    arr = np.asarray(list(rows), dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, EVENT_WIDTH), dtype=np.float64)
    return arr.reshape(-1, EVENT_WIDTH)
