"""Raw MIDI bytes -> host calls. mido validates and decodes (junk raises there and is counted);
the result is converted to our own calls at once."""

from __future__ import annotations

import mido


def dispatch_midi(message, host, t: float) -> bool:
    """Apply one raw MIDI message; False for junk (bad status, data byte > 127, wrong length)."""
    try:
        msg = mido.Message.from_bytes(list(message))
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
        host.program_change(msg.program)
    # clock, start/stop, song position, sysex: nothing to do
    return True
