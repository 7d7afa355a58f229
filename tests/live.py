"""Helpers for live tests: start ``instrument run`` against the test JACK server, record its
output with ``jack_rec``, send MIDI through JACK and OSC over UDP on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveInstrument:
    """``instrument run`` as a subprocess on the JACK server in ``env``."""

    def __init__(self, env: dict, preset: str = "presets/poly16.toml", *extra: str):
        self.osc_port = free_udp_port()
        self.env = dict(env)
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"instrument-live-{self.osc_port}.log"
        self.log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "instrument.cli.main", "run", str(REPO / preset),
               "--device", "system", "--midi-api", "jack", "--osc-port", str(self.osc_port),
               "--osc-bind", "127.0.0.1", *extra]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ports(self, timeout_s: float = 60.0) -> None:
        """Until the audio output ports and the MIDI input port exist in JACK."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"instrument exited early:\n{self.output()}")
            ports = jack_ports(self.env)
            if any("PortAudio" in p for p in ports) and "instrument:in" in ports:
                return
            time.sleep(0.1)
        raise AssertionError(f"instrument ports did not appear:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def out_ports(self) -> list[str]:
        return [p for p in jack_ports(self.env) if p.startswith("PortAudio") and ":out_" in p]

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT, like Ctrl-C
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def jack_ports(env: dict) -> list[str]:
    out = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=5)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def start_recording(env: dict, ports: list[str], path: Path, seconds: float) -> subprocess.Popen:
    """``jack_rec`` of ``ports`` into ``path`` for ``seconds``."""
    return subprocess.Popen(["jack_rec", "-f", str(path), "-d", str(seconds), *ports], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class JackMidiOut:
    """A python-rtmidi JACK MIDI output connected to the instrument's input port."""

    def __init__(self, target: str = "instrument:in"):
        import rtmidi

        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="test-keys")
        names = self.out.get_ports()
        index = next(i for i, n in enumerate(names) if n == target)
        self.out.open_port(index, "out")

    def send(self, *data: int) -> None:
        self.out.send_message(list(data))

    def close(self) -> None:
        self.out.close_port()
        self.out.delete()


def pitch_hz(x: np.ndarray, sample_rate: int) -> float:
    """Strongest spectral peak with parabolic interpolation."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w))
    spec[:5] = 0
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-30)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sample_rate / len(x)


def centroid_hz(x: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    return float((spec * freqs).sum() / (spec.sum() + 1e-30))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)))
