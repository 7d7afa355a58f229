"""Standard MIDI Files -> engine event arrays, and per-block slicing for the offline renderer.

mido parses the bytes (type 0 and 1, running status, SysEx, meta); its messages are converted
here and never travel further. Timing is computed by this module, not by iterating
``mido.MidiFile`` in seconds: mido sums float deltas, which drifts, so a note 10 minutes in can
round to a neighbouring frame. Here every tick is converted with integer arithmetic through the
tempo map, so ``frame == round_half_up(seconds * sample_rate)`` exactly, whatever the length.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import mido
import numpy as np

from instrument.control.mpe import McmDecoder
from instrument.engine import events as ev
from instrument.errors import MidiFileError

DEFAULT_TEMPO_US_PER_BEAT = 500_000  # 120 BPM, the SMF default before any set_tempo
_US_PER_S = 1_000_000
_SMPTE_FPS = {24: (24, 1), 25: (25, 1), 29: (30000, 1001), 30: (30, 1)}  # code -> (num, den)
_FIX_REEXPORT = "re-export the song from your sequencer as a Standard MIDI File"


@dataclass(frozen=True)
class MidiEvents:
    """A whole MIDI file as engine events.

    ``events`` is ``(n, 5)`` float64 in ``ev.FRAME, KIND, CHANNEL, A, B`` layout, FRAME being the
    absolute sample frame (an integer-valued float), sorted by frame; events at the same frame
    keep file order (track order, then order inside the track). ``duration_s`` is the end of the
    longest track (its end-of-track event), ``n_notes`` counts NOTE_ON events and ``n_tracks``
    the MTrk chunks in the file.
    """

    events: np.ndarray
    duration_s: float
    n_notes: int
    n_tracks: int


def read_midi_events(path: str | os.PathLike, sample_rate: float) -> MidiEvents:
    """Read a type 0 or type 1 Standard MIDI File into engine events at ``sample_rate`` Hz.

    Mapping: note_on (velocity > 0) -> NOTE_ON (a=note, b=velocity/127); note_on with velocity 0
    and note_off -> NOTE_OFF (b=release velocity/127, 0 for note_on); control_change -> CC
    (a=control, b=value/127); pitchwheel -> PITCH_BEND (a=pitch/8192, clipped to [-1, 1]);
    aftertouch -> CHANNEL_PRESSURE (a=value/127); polytouch -> POLY_PRESSURE (a=note,
    b=value/127); program_change -> PROGRAM (a=program); an MPE Configuration Message (RPN 6
    on channel 1 or 16, ``control.mpe``) -> MPE_ZONE after its data entry CC, so an MPE file
    renders as it plays live. SysEx and meta messages produce no events (set_tempo only moves
    later events). Tempo changes in any track apply to all tracks.

    Raises ``MidiFileError`` (one line: file, what is wrong, fix) for a missing, unreadable,
    truncated or corrupt file and for type 2 files; no mido exception escapes.
    """
    if not (np.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive finite number, got {sample_rate!r}")
    where = os.fspath(path)
    midi = _load(where)
    if midi.type == 2:
        raise MidiFileError(
            "type 2 MIDI file (independent patterns) cannot be played as one song",
            where,
            "export it as type 0 or type 1",
        )
    try:
        return _convert(midi, Fraction(sample_rate))
    except MidiFileError as exc:  # raised without the file name deep in the conversion
        raise MidiFileError(exc.what, where, exc.fix or _FIX_REEXPORT) from exc
    except Exception as exc:  # a malformed message mido accepted; keep the one-line promise
        raise MidiFileError(f"corrupt MIDI data: {_one_line(exc)}", where, _FIX_REEXPORT) from exc


def iter_blocks(events: np.ndarray, block_size: int, n_frames: int) -> Iterator[np.ndarray]:
    """Yield, for each block ``0 .. ceil(n_frames / block_size) - 1``, the events inside it.

    ``events`` must be sorted by absolute FRAME (as ``read_midi_events`` returns them). Each
    yielded array is a read-only view whose FRAME column is the offset inside that block,
    ``0 <= offset < block_size``; blocks without events get an empty ``(0, 5)`` view. Events
    with a frame < 0 or >= ``n_frames`` are not yielded. The work is one ``np.searchsorted``
    and one copy up front; each block then costs one slice, no per-event Python.
    """
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    n_blocks = max(0, -(-int(n_frames) // block_size))
    frames = events[:, ev.FRAME]
    block_starts = np.arange(n_blocks + 1, dtype=np.int64) * block_size
    block_starts[-1] = max(0, int(n_frames))  # last block may be partial
    bounds = np.searchsorted(frames, block_starts, side="left")
    local = np.array(events, dtype=np.float64, copy=True)
    if n_blocks:
        owner = np.clip(np.floor_divide(frames, block_size), 0, n_blocks - 1)
        local[:, ev.FRAME] = frames - owner * block_size
    local.flags.writeable = False
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        yield local[start:stop]


def _load(where: str) -> mido.MidiFile:
    """Parse ``where`` with mido, turning every failure into one ``MidiFileError``."""
    try:
        return mido.MidiFile(where)
    except FileNotFoundError as exc:
        raise MidiFileError("file not found", where, "check the path and file name") from exc
    except IsADirectoryError as exc:
        raise MidiFileError("is a directory, not a MIDI file", where, "pass a .mid file") from exc
    except PermissionError as exc:
        raise MidiFileError("permission denied", where, "make the file readable") from exc
    except EOFError as exc:
        empty = os.path.isfile(where) and os.path.getsize(where) == 0
        what = "file is empty" if empty else "file is truncated (it ends inside a chunk or message)"
        raise MidiFileError(what, where, _FIX_REEXPORT) from exc
    except OSError as exc:
        if exc.errno is not None:  # a real I/O error, not mido complaining about the bytes
            what = f"cannot read file: {exc.strerror}"
            raise MidiFileError(what, where, "check the disk and the file") from exc
        if "MThd" in str(exc):
            what = "not a Standard MIDI File (no MThd header)"
        else:
            what = f"corrupt MIDI data: {_one_line(exc)}"
        raise MidiFileError(what, where, _FIX_REEXPORT) from exc
    except Exception as exc:
        # mido also raises ValueError, KeyError, TypeError, struct.error and its own
        # KeySignatureError for bad bytes; none may reach the user as a traceback.
        raise MidiFileError(f"corrupt MIDI data: {_one_line(exc)}", where, _FIX_REEXPORT) from exc


def _convert(midi: mido.MidiFile, sample_rate: Fraction) -> MidiEvents:
    """Walk all tracks in absolute ticks, then map ticks -> frames through the tempo map."""
    tempo_changes: list[tuple[int, int, int, int]] = []  # (tick, track, index, us_per_beat)
    rows: list[tuple[int, int, int, int, float, float]] = []  # (tick, track, index, kind, ch..)
    end_tick = 0
    for track_index, track in enumerate(midi.tracks):
        tick = 0
        mcm = McmDecoder()
        for msg_index, msg in enumerate(track):
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_changes.append((tick, track_index, msg_index, msg.tempo))
                continue
            row = _event_row(msg)
            if row is not None:
                rows.append((tick, track_index, msg_index) + row)
                if msg.type == "control_change":
                    members = mcm.feed(msg.channel, msg.control, msg.value)
                    if members is not None:  # sorts after its CC (the sort is stable)
                        rows.append((tick, track_index, msg_index, ev.MPE_ZONE, msg.channel,
                                     float(members), 0.0))
        end_tick = max(end_tick, tick)

    # Same order as mido.merge_tracks: by tick, then track, then position in the track.
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    tempo_changes.sort()
    timeline = _Timeline(midi.ticks_per_beat, tempo_changes)
    frame_num, frame_den = sample_rate.numerator, sample_rate.denominator

    out = np.empty((len(rows), ev.EVENT_WIDTH), dtype=np.float64)
    for i, (tick, _, _, kind, channel, a, b) in enumerate(rows):
        units = timeline.units_at(tick)
        # round half up of units * sample_rate / units_per_s, in exact integers
        denom = timeline.units_per_s * frame_den
        out[i] = ((2 * units * frame_num + denom) // (2 * denom), kind, channel, a, b)

    order = np.argsort(out[:, ev.FRAME], kind="stable")  # already sorted; cheap insurance
    out = out[order]
    n_notes = int(np.count_nonzero(out[:, ev.KIND] == ev.NOTE_ON))
    duration_s = timeline.units_at(end_tick) / timeline.units_per_s
    return MidiEvents(out, float(duration_s), n_notes, len(midi.tracks))


class _Timeline:
    """Tick -> time in integer ``units`` (1 unit = 1 / ``units_per_s`` seconds), exact."""

    def __init__(self, division: int, tempo_changes: list[tuple[int, int, int, int]]):
        if division < 0:  # SMPTE: high byte -fps, low byte ticks per frame; tempo is ignored
            fps_code, ticks_per_frame = -(division >> 8), division & 0xFF
            if fps_code not in _SMPTE_FPS or ticks_per_frame == 0:
                raise MidiFileError(f"invalid SMPTE time division 0x{division & 0xFFFF:04x}")
            fps_num, fps_den = _SMPTE_FPS[fps_code]
            self.units_per_s = fps_num * ticks_per_frame
            self._ticks, self._units, self._rates = [0], [0], [fps_den]
            return
        if division == 0:
            raise MidiFileError("time division is 0 ticks per beat")
        self.units_per_s = _US_PER_S * division  # rate per tick = tempo in us per beat
        self._ticks, self._units, self._rates = [0], [0], [DEFAULT_TEMPO_US_PER_BEAT]
        for tick, _, _, tempo in tempo_changes:
            units = self.units_at(tick)
            if tick == self._ticks[-1]:  # several changes at one tick: the last one wins
                self._rates[-1] = tempo
            else:
                self._ticks.append(tick)
                self._units.append(units)
                self._rates.append(tempo)

    def units_at(self, tick: int) -> int:
        seg = bisect.bisect_right(self._ticks, tick) - 1
        return self._units[seg] + (tick - self._ticks[seg]) * self._rates[seg]


def _event_row(msg) -> tuple[int, int, float, float] | None:
    """``(kind, channel, a, b)`` for a channel message we play, None for everything else."""
    kind = msg.type
    if kind == "note_on":
        if msg.velocity > 0:
            return ev.NOTE_ON, msg.channel, msg.note, msg.velocity / 127.0
        return ev.NOTE_OFF, msg.channel, msg.note, 0.0
    if kind == "note_off":
        return ev.NOTE_OFF, msg.channel, msg.note, msg.velocity / 127.0
    if kind == "control_change":
        return ev.CC, msg.channel, msg.control, msg.value / 127.0
    if kind == "pitchwheel":
        return ev.PITCH_BEND, msg.channel, min(1.0, max(-1.0, msg.pitch / 8192.0)), 0.0
    if kind == "aftertouch":
        return ev.CHANNEL_PRESSURE, msg.channel, msg.value / 127.0, 0.0
    if kind == "polytouch":
        return ev.POLY_PRESSURE, msg.channel, msg.note, msg.value / 127.0
    if kind == "program_change":
        return ev.PROGRAM, msg.channel, msg.program, 0.0
    return None  # sysex, meta, and anything else carry no engine event


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
