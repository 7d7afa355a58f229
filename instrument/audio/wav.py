"""Streaming WAV writer (24-bit PCM or 32-bit float) with an atomic finish, and a small reader.

The writer never leaves a half-written file under the final name: samples go to a hidden temp
file in the same directory; ``close()`` fixes the header sizes, fsyncs and ``os.replace``-s it
onto the target (then fsyncs the directory), so after a crash or power cut the target is either
absent, the previous file, or the complete new one.
"""

from __future__ import annotations

import os
import secrets
import struct
from pathlib import Path

import numpy as np

from instrument.errors import InstrumentError
from instrument.fsutil import fsync_directory

SAMPLE_FORMATS = ("pcm24", "float32")
WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
PCM24_MAX = 1.0 - 2.0**-23  # largest value 24-bit PCM can hold, as a float in [-1, 1)
_PCM24_SCALE = 2.0**23
_MAX_RIFF_BYTES = 2**32 - 1
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class WavError(InstrumentError):
    """A WAV file that cannot be written or read."""


class WavWriter:
    """Write ``(n, channels)`` float frames to ``path`` as they come; the file appears on close.

    ``sample_format="pcm24"``: samples are clipped to [-1, 1 - 2**-23], scaled by 2**23 and
    rounded to nearest (error <= 0.5 LSB); format tag 1, 16-byte fmt chunk, 44-byte header.
    ``sample_format="float32"``: samples are stored as float32, unclipped; format tag 3
    (WAVE_FORMAT_IEEE_FLOAT) with an 18-byte fmt chunk and a ``fact`` chunk (frames per channel),
    58-byte header. In both formats NaN and +-inf samples are written as 0.0 (silence).
    An odd-sized data chunk gets the RIFF pad byte. The total must stay under 4 GiB (RIFF).

    As a context manager, a clean exit calls ``close()``; an exception calls ``abort()``, which
    deletes the temp file and leaves any existing file at ``path`` untouched.
    """

    def __init__(self, path, sample_rate: int, channels: int, sample_format: str = "pcm24"):
        if sample_format not in SAMPLE_FORMATS:
            raise ValueError(f"sample_format must be in {SAMPLE_FORMATS}, got {sample_format!r}")
        if int(sample_rate) != sample_rate or not 0 < sample_rate < 2**32:
            raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
        if int(channels) != channels or not 1 <= channels <= 65535:
            raise ValueError(f"channels must be an integer 1..65535, got {channels!r}")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.sample_format = sample_format
        self.bytes_per_sample = 3 if sample_format == "pcm24" else 4
        self.n_frames = 0
        self._data_bytes = 0
        self._closed = False
        self._header_bytes = len(self._header())
        self._temp_path, self._file = _open_temp_beside(self.path)
        try:
            self._file.write(self._header())
        except OSError as exc:
            self.abort()
            raise _write_error(self.path, exc) from exc

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def temp_path(self) -> Path:
        """Where the samples are until ``close()`` (hidden file in the target's directory)."""
        return self._temp_path

    def write(self, frames: np.ndarray) -> None:
        """Append ``frames`` (shape ``(n, channels)``, or ``(n,)`` for mono) of float samples."""
        if self._closed:
            raise ValueError(f"write() on a closed WavWriter for {self.path}")
        samples = np.asarray(frames, dtype=np.float64)
        if samples.ndim == 1 and self.channels == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"frames must have shape (n, {self.channels}), got {samples.shape}")
        n_bytes = samples.size * self.bytes_per_sample
        if self._header_bytes - 8 + self._data_bytes + n_bytes + 1 > _MAX_RIFF_BYTES:
            self.abort()
            raise WavError("WAV data would exceed 4 GiB", str(self.path), "render a shorter piece")
        samples = np.where(np.isfinite(samples), samples, 0.0)
        if self.sample_format == "pcm24":
            payload = _pack_pcm24(samples)
        else:
            payload = samples.astype("<f4").tobytes()
        try:
            self._file.write(payload)
        except OSError as exc:
            self.abort()
            raise _write_error(self.path, exc) from exc
        self._data_bytes += n_bytes
        self.n_frames += samples.shape[0]

    def close(self) -> None:
        """Finish the header, fsync, and atomically move the file to ``path``. Idempotent."""
        if self._closed:
            return
        try:
            if self._data_bytes % 2:
                self._file.write(b"\0")  # RIFF chunks are word aligned
            self._file.seek(0)
            self._file.write(self._header())
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp_path, self.path)
        except OSError as exc:
            self.abort()
            raise _write_error(self.path, exc) from exc
        self._closed = True
        fsync_directory(self.path.parent)

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was. Idempotent."""
        self._closed = True
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self._temp_path)
        except FileNotFoundError:
            pass

    def _header(self) -> bytes:
        """The header for the data written so far (``close()`` rewrites it with final sizes)."""
        ch, rate, width = self.channels, self.sample_rate, self.bytes_per_sample
        pad = self._data_bytes % 2
        if self.sample_format == "pcm24":
            fmt = struct.pack("<HHIIHH", WAVE_FORMAT_PCM, ch, rate, rate * ch * width, ch * width,
                              24)
            extra = b""
        else:  # non-PCM formats carry cbSize (0 here) and a fact chunk
            fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_IEEE_FLOAT, ch, rate, rate * ch * width,
                              ch * width, 32, 0)
            extra = b"fact" + struct.pack("<II", 4, self.n_frames)
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
        body += b"data" + struct.pack("<I", self._data_bytes)
        return b"RIFF" + struct.pack("<I", len(body) + self._data_bytes + pad) + body


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file into ``(float64 frames of shape (n, channels), sample_rate)``.

    Supports PCM 16/24/32-bit (scaled by 2**-(bits-1), so full scale is [-1, 1)) and IEEE float
    32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE. A data size larger than the file (an unfinished
    streaming header) is cut to the bytes present. Raises ``WavError`` for anything else.
    """
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise WavError(f"cannot read file: {exc.strerror}", where, "check the path") from exc
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file", where, "pass a .wav file")
    fmt = data = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = raw[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            data = body
        pos += 8 + size + (size % 2)
    if fmt is None or len(fmt) < 16 or data is None:
        raise WavError("missing or short fmt/data chunk", where, "re-export the file")
    tag, channels, sample_rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the SubFormat GUID
    if channels == 0 or block_align == 0:
        raise WavError("fmt chunk has 0 channels or 0 block align", where, "re-export the file")
    data = data[: len(data) - len(data) % block_align]
    samples = _decode(tag, bits, data)
    if samples is None:
        raise WavError(f"unsupported sample format (tag {tag}, {bits} bit)", where,
                       "use 16/24/32-bit PCM or 32/64-bit float")
    return samples.reshape(-1, channels), int(sample_rate)


def _decode(tag: int, bits: int, data: bytes) -> np.ndarray | None:
    if tag == WAVE_FORMAT_PCM and bits == 16:
        return np.frombuffer(data, "<i2") / 2.0**15
    if tag == WAVE_FORMAT_PCM and bits == 24:
        padded = np.zeros((len(data) // 3, 4), dtype=np.uint8)
        padded[:, 1:] = np.frombuffer(data, np.uint8).reshape(-1, 3)
        return (padded.view("<i4")[:, 0] >> 8) / _PCM24_SCALE  # arithmetic shift sign-extends
    if tag == WAVE_FORMAT_PCM and bits == 32:
        return np.frombuffer(data, "<i4") / 2.0**31
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits == 32:
        return np.frombuffer(data, "<f4").astype(np.float64)
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits == 64:
        return np.frombuffer(data, "<f8").astype(np.float64)
    return None


def _pack_pcm24(samples: np.ndarray) -> bytes:
    """Little-endian 3-byte integers, interleaved; one numpy pass, no per-sample Python."""
    ints = np.rint(np.clip(samples, -1.0, PCM24_MAX) * _PCM24_SCALE).astype("<i4")
    return ints.reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _open_temp_beside(target: Path):
    """Create ``.<name>.<random>.part`` next to ``target`` with the umask's usual permissions."""
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, _TEMP_FLAGS, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _write_error(target, exc) from exc
        return temp, os.fdopen(fd, "wb")
    raise WavError("cannot create a temp file", str(target.parent), "clean up *.part files")


def _write_error(path: Path, exc: OSError) -> WavError:
    if isinstance(exc, FileNotFoundError):
        return WavError("output directory does not exist", str(path), "create it or fix the path")
    if isinstance(exc, PermissionError):
        return WavError("permission denied", str(path), "choose a writable output path")
    if isinstance(exc, IsADirectoryError):
        return WavError("is a directory", str(path), f"name a file, like {path}/out.wav")
    return WavError(f"cannot write: {exc.strerror or exc}", str(path), "check free disk space")
