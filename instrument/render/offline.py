"""Offline rendering: a MIDI file through the same engine and plan as live playing, to WAV.

Deterministic: the same preset, MIDI file, rate and block size give an identical file. After the
last MIDI event every note is released (as a sequencer does at stop) and the tails ring out
until every voice is free and the output has been silent for a block, or ``max_tail_s``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instrument.audio.wav import WavError, WavWriter
from instrument.control.midifile import iter_blocks, read_midi_events
from instrument.engine.engine import Engine
from instrument.engine.events import ALL_NOTES_OFF, CC, CC_SUSTAIN, EVENT_WIDTH
from instrument.presets import compile_file
from instrument.render.progress import Progress
from instrument.settings import DEFAULTS

CHUNK_BLOCKS = 256  # blocks collected before each write to the WAV file


@dataclass
class RenderResult:
    frames: int
    duration_s: float
    wall_s: float
    peak: float
    n_notes: int

    @property
    def realtime_factor(self) -> float:
        return self.duration_s / self.wall_s if self.wall_s > 0 else float("inf")


def render_file(preset_path, midi_path, out_path, sample_rate: int = DEFAULTS.sample_rate_hz,
                block_size: int = DEFAULTS.block_frames,
                sample_format: str = "pcm24", max_tail_s: float = 30.0,
                progress: bool = True) -> RenderResult:
    """Render ``midi_path`` with ``preset_path`` into ``out_path`` (stereo WAV)."""
    if Path(out_path).is_dir():
        raise WavError("is a directory", str(out_path), f"name a file, like {out_path}/out.wav")
    plan = compile_file(preset_path, sample_rate, block_size)
    midi = read_midi_events(midi_path, sample_rate)
    engine = Engine(sample_rate, block_size, max_events=4096)
    engine.load(plan)
    n_song_blocks = int(np.ceil(midi.duration_s * sample_rate / block_size)) + 1
    tail_blocks = int(max_tail_s * sample_rate / block_size)
    chunk = np.zeros((CHUNK_BLOCKS * block_size, 2), dtype=np.float32)
    stop = np.array([[0, CC, 0, CC_SUSTAIN, 0.0], [0, ALL_NOTES_OFF, 0, 0, 0]], dtype=np.float64)
    no_events = np.zeros((1, EVENT_WIDTH))
    bar = Progress(n_song_blocks, f"rendering {midi_path}") if progress else None
    peak = 0.0
    frames = 0
    t0 = time.perf_counter()
    with WavWriter(out_path, sample_rate, 2, sample_format=sample_format) as wav:
        # The song: a chunk of CHUNK_BLOCKS blocks per native call (events offset from the
        # chunk's first frame), then one write to the file.
        song_frames = n_song_blocks * block_size
        chunk_frames = chunk.shape[0]
        for index, events in enumerate(iter_blocks(midi.events, chunk_frames, song_frames)):
            view = chunk[:min(chunk_frames, song_frames - index * chunk_frames)]
            engine.process_blocks(events, len(events), view)
            peak = max(peak, float(np.abs(view).max()))
            wav.write(view)
            frames += view.shape[0]
            if bar:
                bar.update(frames // block_size)
        # The tails: block by block, to stop at the first two silent blocks.
        filled = 0
        silent_blocks = 0
        for t in range(tail_blocks):
            view = chunk[filled * block_size:(filled + 1) * block_size]
            if t == 0:
                engine.process_block(stop, len(stop), view)
            else:
                engine.process_block(no_events, 0, view)
            filled += 1
            quiet = engine.active_voices == 0 and float(np.abs(view).max()) < 1e-5
            silent_blocks = silent_blocks + 1 if quiet else 0
            if filled == CHUNK_BLOCKS or silent_blocks >= 2:
                part = chunk[:filled * block_size]
                peak = max(peak, float(np.abs(part).max()))
                wav.write(part)
                frames += part.shape[0]
                filled = 0
            if silent_blocks >= 2:
                break
        if filled:
            part = chunk[:filled * block_size]
            peak = max(peak, float(np.abs(part).max()))
            wav.write(part)
            frames += part.shape[0]
    wall = time.perf_counter() - t0
    if bar:
        bar.update(n_song_blocks)
        bar.close()
    return RenderResult(frames, frames / sample_rate, wall, peak, midi.n_notes)
