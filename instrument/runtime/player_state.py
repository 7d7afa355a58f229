"""What the player is holding right now, as the host sent it: keys down, sustain pedal, pitch
bend, mod wheel, channel pressure and timbre (CC74), per MIDI channel; the pitch-bend range a
controller set with RPN 0 (one for the engine, until the next preset load); and the MPE zones
with their member bend ranges (``control.mpe``), so an MPE note comes back on its channel with
its own bend, pressure and timbre.

The audio process keeps the same facts in its voices, but a restarted audio process starts
empty. The host replays this state into the new one (``restore_events``) so held notes, bend
and pedal come back after a crash, while notes released in the meantime stay released: the
state is updated by every event the host queues, whether or not an audio process was there to
play it.
"""

from __future__ import annotations

import threading

from instrument.engine.events import (
    ALL_NOTES_OFF, ALL_SOUND_OFF, CC, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_MOD_WHEEL,
    BEND_RANGE, CC_SUSTAIN, CC_TIMBRE, CHANNEL_PRESSURE, MPE_ZONE, NOTE_OFF, NOTE_ON, PITCH_BEND,
)
from instrument.control.mpe import LOWER_MASTER, UPPER_MASTER, MpeZones

CHANNELS = 16


class PlayerState:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys: dict[tuple[int, int], float] = {}  # (channel, note) -> velocity 0..1
        self.pedal_held: dict[tuple[int, int], float] = {}  # released keys the pedal holds
        self.sustain = [0.0] * CHANNELS
        self.mod_wheel = [0.0] * CHANNELS
        self.bend = [0.0] * CHANNELS
        self.pressure = [0.0] * CHANNELS
        self.timbre = [0.0] * CHANNELS
        self.zones = MpeZones()
        self.member_range: dict[int, float] = {}  # zone master channel -> RPN 0 of a member
        self.bend_range_st: float | None = None  # RPN 0 (None: the preset's own)

    def preset_loaded(self) -> None:
        """A preset load resets the bend range to the preset's (the engine does the same; an
        MPE zone's member range stays, as the zones do)."""
        with self.lock:
            self.bend_range_st = None

    def note(self, kind: int, channel: int, a: float, b: float) -> None:
        """Track one event as queued on the ring (same kinds and arguments)."""
        ch = int(channel) % CHANNELS
        with self.lock:
            if kind == NOTE_ON and b > 0.0:
                self.keys[(ch, int(a))] = float(b)
                self.pedal_held.pop((ch, int(a)), None)
            elif kind == NOTE_ON or kind == NOTE_OFF:
                velocity = self.keys.pop((ch, int(a)), None)
                if velocity is not None and self.sustain[ch] >= 0.5:
                    self.pedal_held[(ch, int(a))] = velocity
            elif kind == PITCH_BEND:
                self.bend[ch] = float(a)
            elif kind == CHANNEL_PRESSURE:
                self.pressure[ch] = float(a)
            elif kind == CC:
                cc = int(a)
                if cc == CC_SUSTAIN:
                    self.sustain[ch] = float(b)
                    if b < 0.5:
                        self._drop(self.pedal_held, ch)
                elif cc == CC_MOD_WHEEL:
                    self.mod_wheel[ch] = float(b)
                elif cc == CC_TIMBRE:
                    self.timbre[ch] = float(b)
                elif cc in (CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF):
                    self._keys_up(ch)
            elif kind in (ALL_NOTES_OFF, ALL_SOUND_OFF):
                self.keys.clear()
                self.pedal_held.clear()
            elif kind == MPE_ZONE:
                self.zones.set(ch, int(a))
                self.member_range.pop(ch, None)  # an MCM resets its zone's range to 48
            elif kind == BEND_RANGE and self.zones.is_member(ch):
                self.member_range[self.zones.master_of(ch)] = float(a)
            elif kind == BEND_RANGE:
                self.bend_range_st = float(a)

    def _keys_up(self, channel: int) -> None:
        self._drop(self.keys, channel)
        self._drop(self.pedal_held, channel)

    @staticmethod
    def _drop(notes: dict, channel: int) -> None:
        for key in [k for k in notes if k[0] == channel]:
            del notes[key]

    def restore_events(self) -> list[tuple[int, int, float, float]]:
        """(kind, channel, a, b) that bring a fresh engine to this state: the MPE zones and bend
        ranges first, then controllers, then the held keys (so a note starts with the right bend
        and pedal), then the notes only the pedal holds (struck and released with the pedal
        down, so they keep sounding)."""
        events = []
        with self.lock:
            zones = ((LOWER_MASTER, self.zones.lower, 1), (UPPER_MASTER, self.zones.upper, 14))
            for master, members, first_member in zones:  # zones first: members are routed
                if members:
                    events.append((MPE_ZONE, master, float(members), 0.0))
                    if master in self.member_range:
                        events.append((BEND_RANGE, first_member, self.member_range[master], 0.0))
            if self.bend_range_st is not None:
                events.append((BEND_RANGE, 0, self.bend_range_st, 0.0))
            for ch in range(CHANNELS):
                if self.sustain[ch]:
                    events.append((CC, ch, float(CC_SUSTAIN), self.sustain[ch]))
                if self.mod_wheel[ch]:
                    events.append((CC, ch, float(CC_MOD_WHEEL), self.mod_wheel[ch]))
                if self.bend[ch]:
                    events.append((PITCH_BEND, ch, self.bend[ch], 0.0))
                if self.pressure[ch]:
                    events.append((CHANNEL_PRESSURE, ch, self.pressure[ch], 0.0))
                if self.timbre[ch]:
                    events.append((CC, ch, float(CC_TIMBRE), self.timbre[ch]))
            for (ch, note), velocity in self.keys.items():
                events.append((NOTE_ON, ch, float(note), velocity))
            for (ch, note), velocity in self.pedal_held.items():  # struck, then held by pedal
                events.append((NOTE_ON, ch, float(note), velocity))
                events.append((NOTE_OFF, ch, float(note), 0.0))
        return events
