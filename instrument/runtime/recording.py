"""``instrument run --record OUT.wav``: a recording that survives audio process restarts.

Each audio process appends its output as raw float32 stereo frames to one hidden file beside
the target (``.OUT.wav.raw``); a restarted audio process goes on appending, so nothing played
before a crash is lost, and a process killed mid-write loses at most the frame it was writing
(``trim_partial_frame`` cuts it off before the next process appends). When the host stops it
turns the raw file into ``OUT.wav`` (24-bit PCM, written atomically by ``WavWriter``) and
removes the raw file. A raw file left by a host that was itself killed is kept as
``OUT.recovered.wav`` at the next start instead of being overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CHANNELS = 2
FRAME_BYTES = 4 * CHANNELS
_CHUNK_FRAMES = 1 << 16


def raw_path_for(wav_path) -> Path:
    wav_path = Path(wav_path)
    return wav_path.with_name(f".{wav_path.name}.raw")


class RawRecorder:
    """The audio side: appends (frames, 2) float32 blocks, unbuffered (one write per block), so
    a kill loses nothing that was already handed to the kernel."""

    def __init__(self, path):
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()

    def write(self, frames: np.ndarray) -> None:
        self.file.write(frames)

    def close(self) -> None:
        self.file.close()


def trim_partial_frame(raw_path) -> None:
    """Cut a frame that a killed process left half-written."""
    try:
        size = os.path.getsize(raw_path)
    except OSError:
        return
    if size % FRAME_BYTES:
        os.truncate(raw_path, size - size % FRAME_BYTES)


def finish_recording(raw_path, wav_path, sample_rate: int) -> int:
    """Write ``wav_path`` from the raw frames and remove the raw file; returns the frames."""
    from instrument.audio.wav import WavWriter

    raw_path = Path(raw_path)
    if not raw_path.exists():
        return 0
    trim_partial_frame(raw_path)
    frames = 0
    with WavWriter(wav_path, int(sample_rate), CHANNELS) as wav, open(raw_path, "rb") as raw:
        while True:
            data = raw.read(_CHUNK_FRAMES * FRAME_BYTES)
            if not data:
                break
            block = np.frombuffer(data, dtype="<f4").reshape(-1, CHANNELS)
            wav.write(block)
            frames += block.shape[0]
    raw_path.unlink()
    return frames


def recover_leftover(raw_path, wav_path, sample_rate: int) -> Path | None:
    """A raw file from a host that was killed: keep it as ``<stem>.recovered.wav``."""
    raw_path = Path(raw_path)
    if not raw_path.exists():
        return None
    wav_path = Path(wav_path)
    target = wav_path.with_name(f"{wav_path.stem}.recovered{wav_path.suffix or '.wav'}")
    finish_recording(raw_path, target, sample_rate)
    return target
