"""WAV writing: round trips, header bytes, other readers, atomic finish."""

from __future__ import annotations

import os
import struct
import wave

import numpy as np
import pytest
from scipy.io import wavfile

from instrument.audio.wav import PCM24_MAX, WavError, WavWriter, read_wav

LSB_24 = 2.0**-23


def noise(n_frames: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n_frames, channels))


def write(path, frames, sample_rate=48000, sample_format="pcm24"):
    with WavWriter(path, sample_rate, frames.shape[1], sample_format) as writer:
        writer.write(frames)
    return path


def chunks(path) -> dict[bytes, bytes]:
    raw = path.read_bytes()
    found, pos = {}, 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        found[chunk_id] = raw[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2
    return found


def test_pcm24_round_trip_within_one_lsb(tmp_path):
    frames = noise(10_000, 2)
    data, sample_rate = read_wav(write(tmp_path / "a.wav", frames))
    assert sample_rate == 48000 and data.shape == (10_000, 2)
    assert np.max(np.abs(data - frames)) <= LSB_24


def test_pcm24_clips_to_full_scale_and_maps_nonfinite_to_zero(tmp_path):
    frames = np.array([[2.0], [1.0], [PCM24_MAX], [-1.0], [-7.0], [np.nan], [np.inf], [0.5]])
    data, _ = read_wav(write(tmp_path / "clip.wav", frames))
    assert data[:, 0].tolist() == [PCM24_MAX, PCM24_MAX, PCM24_MAX, -1.0, -1.0, 0.0, 0.0, 0.5]


def test_float32_round_trip_is_exact_and_unclipped(tmp_path):
    frames = noise(5000, 3) * 4.0
    data, sample_rate = read_wav(write(tmp_path / "f.wav", frames, 44100, "float32"))
    assert sample_rate == 44100
    assert np.array_equal(data, frames.astype(np.float32).astype(np.float64))


def test_streaming_writes_equal_one_write(tmp_path):
    frames = noise(1000, 2)
    with WavWriter(tmp_path / "s.wav", 48000, 2) as writer:
        for start in range(0, 1000, 64):
            writer.write(frames[start : start + 64])
    assert writer.n_frames == 1000
    assert (tmp_path / "s.wav").read_bytes() == write(tmp_path / "o.wav", frames).read_bytes()


def test_pcm24_header_fields(tmp_path):
    path = write(tmp_path / "h.wav", noise(100, 2), 48000)
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert len(raw) == 44 + 100 * 2 * 3
    found = chunks(path)
    assert struct.unpack("<HHIIHH", found[b"fmt "]) == (1, 2, 48000, 48000 * 6, 6, 24)
    assert len(found[b"data"]) == 600
    assert b"fact" not in found


def test_float32_header_has_format_tag_3_and_fact_chunk(tmp_path):
    path = write(tmp_path / "h.wav", noise(100, 2), 96000, "float32")
    raw = path.read_bytes()
    assert len(raw) == 58 + 100 * 2 * 4
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    found = chunks(path)
    assert struct.unpack("<HHIIHHH", found[b"fmt "]) == (3, 2, 96000, 96000 * 8, 8, 32, 0)
    assert struct.unpack("<I", found[b"fact"]) == (100,)
    assert len(found[b"data"]) == 800


def test_odd_data_size_gets_pad_byte(tmp_path):
    path = write(tmp_path / "odd.wav", np.array([[0.25], [-0.25], [0.125]]))
    raw = path.read_bytes()
    assert len(raw) == 44 + 9 + 1
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert struct.unpack_from("<I", raw, 40)[0] == 9
    assert read_wav(path)[0][:, 0].tolist() == [0.25, -0.25, 0.125]


def test_wave_module_reads_pcm24(tmp_path):
    frames = noise(480, 2)
    path = write(tmp_path / "w.wav", frames)
    with wave.open(str(path), "rb") as reader:
        params = reader.getparams()
        raw = reader.readframes(params.nframes)
    assert (params.nchannels, params.sampwidth, params.framerate, params.nframes) == (2, 3, 48000,
                                                                                     480)
    assert raw == chunks(path)[b"data"]


def test_scipy_reads_float32_and_pcm24(tmp_path):
    frames = noise(480, 2)
    rate, data = wavfile.read(write(tmp_path / "f.wav", frames, 48000, "float32"))
    assert rate == 48000 and data.dtype == np.float32
    assert np.array_equal(data, frames.astype(np.float32))
    rate, data = wavfile.read(write(tmp_path / "p.wav", frames))
    assert rate == 48000
    assert np.max(np.abs(data / 2.0**31 - frames)) <= LSB_24  # scipy left-aligns 24 bit in int32


def test_read_wav_reads_16_bit_pcm_written_by_wave_module(tmp_path):
    path = tmp_path / "16.wav"
    samples = np.array([0, 16384, -32768, 32767, -1], dtype="<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(22050)
        writer.writeframes(samples.tobytes())
    data, sample_rate = read_wav(path)
    assert sample_rate == 22050
    assert data[:, 0].tolist() == (samples / 32768.0).tolist()


def test_nothing_under_final_name_until_close(tmp_path):
    path = tmp_path / "out.wav"
    writer = WavWriter(path, 48000, 2, "float32")
    writer.write(noise(1000, 2))
    assert not path.exists()
    assert writer.temp_path.parent == tmp_path and writer.temp_path.exists()
    writer.close()
    assert path.exists() and not writer.temp_path.exists()
    assert os.listdir(tmp_path) == ["out.wav"]
    writer.close()  # idempotent


def test_existing_file_is_kept_until_close_and_after_a_failed_render(tmp_path):
    path = tmp_path / "out.wav"
    path.write_bytes(b"previous render")
    with pytest.raises(RuntimeError):
        with WavWriter(path, 48000, 1) as writer:
            writer.write(noise(100, 1))
            assert path.read_bytes() == b"previous render"
            raise RuntimeError("render crashed")
    assert path.read_bytes() == b"previous render"
    assert os.listdir(tmp_path) == ["out.wav"]  # temp file removed


def test_final_file_permissions_follow_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write(tmp_path / "perm.wav", noise(10, 1))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_bad_calls_and_missing_directory(tmp_path):
    with WavWriter(tmp_path / "x.wav", 48000, 2) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((10, 3)))
    with pytest.raises(ValueError):
        writer.write(np.zeros((10, 2)))  # after close
    with pytest.raises(ValueError):
        WavWriter(tmp_path / "y.wav", 48000, 2, "pcm16")
    with pytest.raises(WavError) as info:
        WavWriter(tmp_path / "no" / "such" / "dir.wav", 48000, 2)
    assert "\n" not in str(info.value) and "does not exist" in str(info.value)


def test_read_wav_rejects_non_wav(tmp_path):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"not a wav file at all")
    with pytest.raises(WavError):
        read_wav(path)
