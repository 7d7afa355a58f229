"""Raw MIDI bytes -> host calls. mido validates and decodes (junk raises there and is counted);
the result is converted to our own calls at once.

One input needs more than mido: a SysEx whose end byte (F7) never came. rtmidi's JACK input
takes the events after it for the rest of that SysEx and hands them over glued to it, as one
message, once an event ends in F7 (see ``midi_in``). Such a message is read as the byte
stream it is, by the MIDI 1.0 rules (a status byte ends a SysEx, real-time bytes may come
anywhere), and only what ends sound is applied: note-offs, sustain pedal up, all notes off, all
sound off. Those must not be lost (a lost note-off is a stuck note), and they cannot make
anything worse. The rest stays junk: the events' boundaries are gone, so a truncated status
glued to the next event's data bytes, or a data byte above 127 (a status byte in a stream),
would read as a valid message nobody sent, such as a program change that loads another preset,
or a note-on that nothing will end.
"""

from __future__ import annotations

import threading

import mido

from instrument.control.mpe import McmDecoder

SYSEX, EOX = 0xF0, 0xF7
REALTIME = 0xF8  # F8-FF: single bytes, allowed anywhere, even inside another message
# Data bytes after each status: channel messages by their high nibble, system common by value
# (F4 and F5 are undefined).
_CHANNEL_DATA = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}


def dispatch_midi(message, host, t: float) -> bool:
    """Apply one raw MIDI message; False for junk (bad status, data byte > 127, wrong length,
    or a SysEx with other bytes glued to it: the releases among those are applied).
    Real-time bytes (clock: up to 120 a second) skip mido: ``host.midi_realtime(byte, t)``."""
    if len(message) == 1 and message[0] >= REALTIME:
        host.midi_realtime(message[0], t)
        return True
    data = list(message)
    if len(data) > 1 and data[0] == SYSEX:
        if data[-1] == EOX and max(data[1:-1], default=0) < 0x80:
            return True  # a well-formed SysEx: nothing to do
        for part in split_stream(data)[0]:
            if _ends_sound(part):
                _dispatch_one(part, host, t)
        return False
    return _dispatch_one(data, host, t)


def _ends_sound(part: list[int]) -> bool:
    """A complete note-off, note-on at velocity 0, pedal up, all notes off or all sound off."""
    kind = part[0] >> 4
    if kind == 0x8:
        return True
    if kind == 0x9:
        return part[2] == 0
    return kind == 0xB and (part[1] in (120, 123) or (part[1] == 64 and part[2] < 64))


def split_stream(data) -> tuple[list[list[int]], int]:
    """(complete messages, pieces of junk) in a MIDI byte stream. No running status: the
    stream is JACK events glued together, and each of those had to carry its status byte.
    SysEx is skipped (a complete one silently; one cut short by a status byte, or left open
    at the end, counts as junk), as are data bytes with no message to belong to."""
    messages: list[list[int]] = []
    junk = 0
    current: list[int] | None = None
    need = 0
    in_sysex = False
    loose = False  # inside a run of data bytes without a status (counted once)
    for b in data:
        if b >= REALTIME:
            messages.append([b])
            continue
        if b < 0x80:
            if in_sysex:
                continue
            if current is None:
                junk += not loose
                loose = True
                continue
            current.append(b)
            if len(current) == need + 1:
                messages.append(current)
                current = None
            continue
        loose = False
        if b == EOX:
            junk += not in_sysex or current is not None
            in_sysex = False
            current = None
            continue
        junk += in_sysex or current is not None  # the message before was cut short
        in_sysex = b == SYSEX
        current = None
        if in_sysex:
            continue
        n = _CHANNEL_DATA.get(b >> 4) if b < SYSEX else _COMMON_DATA.get(b)
        if n is None:
            junk += 1
        elif n == 0:
            messages.append([b])
        else:
            current, need = [b], n
    junk += in_sysex or current is not None
    return messages, junk


def _dispatch_one(data, host, t: float) -> bool:
    try:
        msg = mido.Message.from_bytes(data)
    except (ValueError, TypeError, IndexError, KeyError):
        return False
    kind = msg.type
    if kind == "note_on":
        if msg.velocity == 0:
            host.note_off(msg.note, msg.channel, t)
        else:
            host.note_on(msg.note, msg.velocity / 127.0, msg.channel, t)
    elif kind == "note_off":
        host.note_off(msg.note, msg.channel, t)
    elif kind == "control_change":
        host.control_change(msg.channel, msg.control, msg.value, t)
    elif kind == "pitchwheel":
        host.pitch_bend(max(-1.0, msg.pitch / 8192.0), msg.channel, t)
    elif kind == "aftertouch":
        host.channel_pressure(msg.value / 127.0, msg.channel, t)
    elif kind == "polytouch":
        host.poly_pressure(msg.note, msg.value / 127.0, msg.channel, t)
    elif kind == "program_change":
        host.program_change(msg.program, msg.channel)
    elif kind == "songpos":
        host.song_position(msg.pos)
    # sysex, MTC quarter frames, song select, tune request: nothing to do
    return True


CC_BANK_MSB, CC_BANK_LSB, CC_SUSTAIN = 0, 32, 64
CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF = 120, 123
BANK_SIZE = 128


class MidiPort:
    """One MIDI input port between ``dispatch_midi`` and the host: remembers what the port holds
    (keys down, sustain pedal down, per channel) so that when the port disappears (a USB
    keyboard unplugged mid-chord) ``release`` sends exactly its note-offs and lifts its pedal;
    keeps its bank select (CC0 MSB, CC32 LSB, per channel) for its program changes; and carries
    its controller mapping (``None``: the host's own); applies its velocity curve to its
    note-ons (``control.velocity``; ``None``: linear, the velocity as sent); and reads its MPE
    Configuration Messages (``control.mpe``), passed to ``host.mpe_zone(channel, members)``.

    Bank select: bank ``N = MSB * 128 + LSB`` with program ``P`` asks the host for program
    ``N * 128 + P``, the (N*128+P)-th preset of the sorted preset folder. Bank 0 (the default,
    and what a device that never sends CC0/CC32 is in) is the plain program number. As in
    MIDI, the bank stays selected until the port sends another one.

    Calls come from the MIDI polling thread; ``release`` from the host's main loop once the
    port is closed (no message of it is then in flight), so ``lock`` only guards the sets.
    """

    def __init__(self, host, name: str, mapping=None, velocity=None):
        self.host = host
        self.name = name
        self.mapping = mapping
        self.velocity = velocity
        self.mcm = McmDecoder()
        self.keys: set[tuple[int, int]] = set()  # (channel, note) held from this port
        self.pedal: set[int] = set()  # channels whose sustain pedal this port holds down
        self.bank = [[0, 0] for _ in range(16)]  # per channel: [MSB, LSB]
        self.lock = threading.Lock()

    def note_on(self, note: int, velocity: float, channel: int = 0, t=None) -> None:
        with self.lock:
            self.keys.add((channel, note))
        if self.velocity is not None:
            velocity = self.velocity(velocity)
        self.host.note_on(note, velocity, channel, t)

    def note_off(self, note: int, channel: int = 0, t=None) -> None:
        with self.lock:
            self.keys.discard((channel, note))
        self.host.note_off(note, channel, t)

    def control_change(self, channel: int, cc: int, value: int, t=None) -> None:
        with self.lock:
            if cc == CC_SUSTAIN:
                (self.pedal.add if value >= 64 else self.pedal.discard)(channel)
            elif cc in (CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF):
                self.keys = {k for k in self.keys if k[0] != channel}
            elif cc == CC_BANK_MSB:
                self.bank[channel][0] = value
            elif cc == CC_BANK_LSB:
                self.bank[channel][1] = value
        members = self.mcm.feed(channel, cc, value)
        if members is not None:
            self.host.mpe_zone(channel, members)
        self.host.control_change(channel, cc, value, t, self.mapping)

    def pitch_bend(self, bend: float, channel: int = 0, t=None) -> None:
        self.host.pitch_bend(bend, channel, t)

    def channel_pressure(self, value: float, channel: int = 0, t=None) -> None:
        self.host.channel_pressure(value, channel, t)

    def poly_pressure(self, note: int, value: float, channel: int = 0, t=None) -> None:
        self.host.poly_pressure(note, value, channel, t)

    def program_change(self, program: int, channel: int = 0) -> None:
        msb, lsb = self.bank[channel]
        self.host.program_change((msb * BANK_SIZE + lsb) * BANK_SIZE + program)

    def midi_realtime(self, byte: int, t: float) -> None:
        self.host.midi_realtime(byte, t)

    def song_position(self, sixteenths: int) -> None:
        self.host.song_position(sixteenths)

    def held(self) -> tuple[list[tuple[int, int]], list[int]]:
        with self.lock:
            return sorted(self.keys), sorted(self.pedal)

    def release(self) -> int:
        """Note-offs for this port's held keys, pedal up where it held the pedal down; returns
        how many keys it released. Another port's notes keep sounding (unless the same key on
        the same channel is also held there: the engine knows a key by channel and note)."""
        with self.lock:
            keys, pedal = sorted(self.keys), sorted(self.pedal)
            self.keys, self.pedal = set(), set()
        for channel, note in keys:
            self.host.note_off(note, channel)
        for channel in pedal:
            self.host.control_change(channel, CC_SUSTAIN, 0, None, self.mapping)
        return len(keys)
