"""MPE (MIDI Polyphonic Expression, MIDI 1.0 MPE spec) in the engine: zones, member channels
and the per-voice bend, pressure and timbre they drive. Voices are lanes, so each of these is
one more per-lane value.

A zone is set by the MPE Configuration Message (MCM: RPN 6 on channel 1 for the lower zone, on
channel 16 for the upper one); the control side turns it into an ``MPE_ZONE`` event (channel 0
or 15, ``a`` = member channel count 0..15, 0 switches the zone off). The lower zone's members
are channels 2..1+n, the upper zone's 15 down to 16-n; a zone set over the other shrinks the
other one (the spec's rule). Each MCM sets its zone's member bend range to 48 semitones (the
spec's default); RPN 0 on a member channel changes it (0..48). Master channels keep the
preset's bend range (``voice.bend_range_st``, RPN 0 on the master channel).

On a member channel:

- note on: the voice takes the channel and follows its bend, pressure and timbre, starting from
  the last values sent on it (MPE controllers send them just before the note). An older voice
  on the same channel stops following it.
- pitch bend: the channel's voice is bent by ``bend * member range`` semitones, on top of the
  master channel's (global) bend, smoothed like the global bend.
- channel pressure, CC74: that voice's ``pressure`` and ``timbre`` (``controls`` outputs).
- note off: releases that note on that channel only (while any zone is on, every note-off
  matches its channel).

Any other channel acts as without MPE: global bend, and pressure and timbre (CC74) for every
voice that does not follow a member channel. With no zone (the default) nothing here changes
what the engine did before MPE existed: every voice's own bend stays exactly 0.0.

These run inside the one native call per block; they allocate nothing.
"""

from numba import njit

from instrument.engine.events import BEND_RANGE, CC, CC_TIMBRE, CHANNEL_PRESSURE, PITCH_BEND
from instrument.layout import (
    CTX_PRESSURE, CTX_TIMBRE, E_ACTIVE_VOICES, E_CH_BEND, E_CH_PRESSURE, E_CH_TIMBRE, E_MPE_LOWER,
    E_MPE_LOWER_RANGE_ST, E_MPE_UPPER, E_MPE_UPPER_RANGE_ST, E_TIMBRE, V_BEND, V_BEND_TARGET,
    V_CHANNEL, V_MEMBER,
)

MPE_MEMBER_RANGE_ST = 48.0  # the MPE spec's default member-channel pitch-bend range
MAX_BEND_RANGE_ST = 48.0
ZONE_NONE, ZONE_LOWER, ZONE_UPPER = 0, 1, 2
NOT_MEMBER, HANDLED, BAD = 0, 1, 2


@njit(cache=True, inline="always")
def member_zone(ch, eng):
    """The zone whose member channel ``ch`` (0..15) is, or ZONE_NONE."""
    if ch >= 1 and ch <= eng[E_MPE_LOWER]:
        return ZONE_LOWER
    if ch <= 14 and ch >= 15.0 - eng[E_MPE_UPPER]:
        return ZONE_UPPER
    return ZONE_NONE


@njit(cache=True, inline="always")
def mpe_on(eng):
    return eng[E_MPE_LOWER] > 0.0 or eng[E_MPE_UPPER] > 0.0


@njit(cache=True, inline="always")
def _zone_range(zone, eng):
    return eng[E_MPE_LOWER_RANGE_ST] if zone == ZONE_LOWER else eng[E_MPE_UPPER_RANGE_ST]


@njit(cache=True, error_model="numpy")
def set_zone(ch, members, eng):
    """MCM on channel ``ch`` (0: lower zone, 15: upper) with ``members`` member channels.
    Returns False (nothing changed) for another channel or a count outside 0..15."""
    if not (members >= 0.0 and members <= 15.0):
        return False
    n = float(int(members))
    if ch == 0:
        eng[E_MPE_LOWER] = n
        eng[E_MPE_LOWER_RANGE_ST] = MPE_MEMBER_RANGE_ST
        eng[E_MPE_UPPER] = min(eng[E_MPE_UPPER], max(14.0 - n, 0.0))
        return True
    if ch == 15:
        eng[E_MPE_UPPER] = n
        eng[E_MPE_UPPER_RANGE_ST] = MPE_MEMBER_RANGE_ST
        eng[E_MPE_LOWER] = min(eng[E_MPE_LOWER], max(14.0 - n, 0.0))
        return True
    return False


@njit(cache=True, error_model="numpy")
def note_started(v, ch, voices, vctx, eng):
    """Voice ``v`` was just (re)started or retuned by a note on channel ``ch``: its channel,
    and on a member channel the channel's current bend, pressure and timbre."""
    voices[v, V_CHANNEL] = ch
    zone = member_zone(ch, eng)
    if zone == ZONE_NONE:
        voices[v, V_MEMBER] = 0.0
        voices[v, V_BEND] = 0.0
        voices[v, V_BEND_TARGET] = 0.0
        vctx[CTX_TIMBRE, v] = eng[E_TIMBRE]
        return
    for u in range(int(eng[E_ACTIVE_VOICES])):
        if u != v and voices[u, V_CHANNEL] == ch:
            voices[u, V_MEMBER] = 0.0  # keeps its last bend; the channel belongs to v now
    voices[v, V_MEMBER] = 1.0
    bend = eng[E_CH_BEND + ch] * _zone_range(zone, eng)
    voices[v, V_BEND] = bend
    voices[v, V_BEND_TARGET] = bend
    vctx[CTX_PRESSURE, v] = eng[E_CH_PRESSURE + ch]
    vctx[CTX_TIMBRE, v] = eng[E_CH_TIMBRE + ch]


@njit(cache=True, error_model="numpy")
def member_event(kind, ch, a, b, voices, vctx, eng):
    """Apply a bend, pressure, CC74 or bend-range event of member channel ``ch`` to the voice
    following it. Returns HANDLED, BAD (a bend range outside 0..48) or NOT_MEMBER (``ch`` is
    no member channel or the event another kind: the caller handles it as without MPE)."""
    zone = member_zone(ch, eng)
    if zone == ZONE_NONE:
        return NOT_MEMBER
    n = int(eng[E_ACTIVE_VOICES])
    if kind == PITCH_BEND:
        x = min(max(a, -1.0), 1.0)
        eng[E_CH_BEND + ch] = x
        target = x * _zone_range(zone, eng)
        for v in range(n):
            if voices[v, V_MEMBER] != 0.0 and voices[v, V_CHANNEL] == ch:
                voices[v, V_BEND_TARGET] = target
    elif kind == CHANNEL_PRESSURE:
        eng[E_CH_PRESSURE + ch] = a
        for v in range(n):
            if voices[v, V_MEMBER] != 0.0 and voices[v, V_CHANNEL] == ch:
                vctx[CTX_PRESSURE, v] = a
    elif kind == CC and a == CC_TIMBRE:
        eng[E_CH_TIMBRE + ch] = b
        for v in range(n):
            if voices[v, V_MEMBER] != 0.0 and voices[v, V_CHANNEL] == ch:
                vctx[CTX_TIMBRE, v] = b
    elif kind == BEND_RANGE:  # the whole zone's member range; held bends keep their position
        if not (a >= 0.0 and a <= MAX_BEND_RANGE_ST):
            return BAD
        slot = E_MPE_LOWER_RANGE_ST if zone == ZONE_LOWER else E_MPE_UPPER_RANGE_ST
        eng[slot] = a
        for v in range(n):
            u = int(voices[v, V_CHANNEL])
            if voices[v, V_MEMBER] != 0.0 and member_zone(u, eng) == zone:
                voices[v, V_BEND_TARGET] = eng[E_CH_BEND + u] * a
    else:
        return NOT_MEMBER
    return HANDLED


@njit(cache=True, error_model="numpy")
def shared_expression(kind, a, b, cfg_n_voices, voices, vctx, eng):
    """Channel pressure or CC74 of a non-member channel: every voice not following a member
    channel (all of them without MPE). Returns False for other kinds."""
    if kind == CHANNEL_PRESSURE:
        slot = CTX_PRESSURE
        value = a
    elif kind == CC and a == CC_TIMBRE:
        slot = CTX_TIMBRE
        value = b
        eng[E_TIMBRE] = b
    else:
        return False
    for v in range(cfg_n_voices):
        if voices[v, V_MEMBER] == 0.0:
            vctx[slot, v] = value
    return True
