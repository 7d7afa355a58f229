"""``instrument run`` without a sound card: one line says so, the clock-driven null output keeps
MIDI/OSC working and records to WAV; SIGTERM ends it cleanly with exit 0."""

import signal
import subprocess
import sys
import time

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from instrument.audio.wav import read_wav
from live import REPO, free_udp_port, pitch_hz


def test_null_output_records_osc_notes_and_sigterm_exits_zero(tmp_path):
    port = free_udp_port()
    wav = tmp_path / "null.wav"
    env_cmd = [sys.executable, "-m", "instrument.cli.main", "run", "presets/init.toml", "--null",
               "--no-midi", "--osc-port", str(port), "--osc-bind", "127.0.0.1",
               "--record", str(wav)]
    proc = subprocess.Popen(env_cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        osc = SimpleUDPClient("127.0.0.1", port)
        while time.monotonic() < deadline:  # wait for the first audio line
            line = proc.stdout.readline()
            if "first audio" in line:
                break
        osc.send_message("/note/on", [57, 0.9])  # A3, 220 Hz
        time.sleep(1.0)
        osc.send_message("/note/off", [57])
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    x, sr = read_wav(wav)
    loud = np.flatnonzero(np.abs(x[:, 0]) > 1e-3)
    assert loud.size > sr // 2
    seg = x[loud[0] + 2400:loud[0] + 2400 + 19200, 0]
    assert abs(pitch_hz(seg, sr) / 220.0 - 1) < 0.01


def test_missing_audio_device_falls_back_to_null_output_with_one_line(tmp_path):
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", "presets/init.toml", "--no-midi",
         "--osc-port", str(port), "--osc-bind", "127.0.0.1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**__import__("os").environ, "JACK_DEFAULT_SERVER": "no-such-server",
             "JACK_NO_START_SERVER": "1"})
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "first audio" in line or not line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert "null output" in text or "audio:" in text  # a machine with a sound card plays on it


def test_a_burst_of_stop_signals_still_stops_it_cleanly():
    """Ctrl-C pressed again and again, then SIGTERM: the host stops with exit 0. Its handler
    once set a threading.Event, which deadlocked when a signal landed while the main thread was
    inside that Event's lock: the host then ignored every further signal."""
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "instrument.cli.main", "run",
                             "presets/init.toml", "--null", "--no-midi", "--no-zeroconf",
                             "--state-dir", "none", "--osc-port", str(port), "--osc-bind",
                             "127.0.0.1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "first audio" in proc.stdout.readline():
                break
        for _ in range(30):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.001)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
