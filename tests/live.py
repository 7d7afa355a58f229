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

TESTS = Path(__file__).resolve().parent  # the test tree's root (its folders mirror the package)
REPO = TESTS.parent


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


def osc_dgram(address: str, *args) -> bytes:
    """One OSC message as python-osc builds it (types from the Python values)."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def send_osc(osc_port: int, address: str, *args) -> None:
    """One OSC message over UDP to the instance on 127.0.0.1:``osc_port``."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(osc_dgram(address, *args), ("127.0.0.1", osc_port))


def stop_checked(proc: subprocess.Popen, sig: int = 2) -> str:
    """Stop an ``instrument run`` (SIGINT, like Ctrl-C, by default); assert it exited 0 with
    no traceback; return its output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return out


def status_json(osc_port: int) -> dict:
    """``instrument status --json`` of the instance on ``osc_port``; {} when none answers."""
    import json

    out = subprocess.run([sys.executable, "-m", "instrument.cli.main", "status", "--json",
                          "--osc-port", str(osc_port)], capture_output=True, text=True,
                         timeout=20)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def status_file(osc_port: int) -> dict:
    """The status file of the instance on ``osc_port`` (written once a second), read
    directly: ``status_json`` starts a Python for it. {} when there is none."""
    import json

    from instrument.runtime.host import runtime_dir

    try:
        return json.loads((runtime_dir() / f"status-{osc_port}.json").read_text())
    except (OSError, ValueError):
        return {}


def _status_after(osc_port: int, t: float, timeout_s: float = 5.0) -> dict:
    """The status file once written after ``t`` (``time.time()``)."""
    end = time.monotonic() + timeout_s
    data = status_file(osc_port)
    while data.get("time", 0.0) <= t and time.monotonic() < end:
        time.sleep(0.05)
        data = status_file(osc_port)
    return data


SETTLE_S = 2.5  # no new message heard for this long (the status is written once a second)


def _heard_since(osc_port: int, base: int, n: int) -> list[str]:
    """The messages (hex) the instance heard after its ``base``-th, once ``n`` have come or
    the count stopped growing for ``SETTLE_S``."""
    count, changed = base, time.monotonic()
    data: dict = {}
    while time.monotonic() - changed < SETTLE_S:
        data = status_file(osc_port)
        now = data.get("midi_messages", base)
        if now >= base + n:
            break
        if now != count:
            count, changed = now, time.monotonic()
        time.sleep(0.05)
    return [hexed for index, _port, hexed in data.get("midi_recent", []) if index > base]


def wait_status(osc_port: int, ok, timeout_s: float = 10.0) -> dict:
    """Poll the status until ``ok(status)`` holds (the file is written once a second);
    returns the last status read."""
    end = time.monotonic() + timeout_s
    data: dict = {}
    while time.monotonic() < end:
        data = status_json(osc_port)
        if data and ok(data):
            return data
        time.sleep(0.2)
    return data


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def jack_ports(env: dict) -> list[str]:
    return list(jack_connections(env))


def jack_connections(env: dict) -> dict[str, set[str]]:
    """Every JACK port and the ports it is connected to (``jack_lsp -c``)."""
    out = subprocess.run(["jack_lsp", "-c"], env=env, capture_output=True, text=True, timeout=5)
    connections: dict[str, set[str]] = {}
    port = None
    for line in out.stdout.splitlines():
        if line.startswith(" ") and port is not None:
            connections[port].add(line.strip())
        elif line.strip():
            port = line.strip()
            connections[port] = set()
    return connections


def wait_connected(env: dict, source: str, client: str, timeout_s: float = 10.0) -> bool:
    """Until port ``source`` is connected to a port of a JACK client whose name starts with
    ``client`` (JACK renames a second client of one name ``name-01``). The timeline of a live
    test starts from there: on a loaded machine a connection can take seconds."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if any(peer.startswith(client) for peer in jack_connections(env).get(source, ())):
            return True
        time.sleep(0.05)
    return False


def start_recording(env: dict, ports: list[str], path: Path, seconds: float) -> subprocess.Popen:
    """``jack_rec`` of ``ports`` into ``path`` for ``seconds``; returns once every port is
    connected to the recorder, so what the caller does next is on the recording."""
    rec = subprocess.Popen(["jack_rec", "-f", str(path), "-d", str(seconds), *ports], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports:
        if not wait_connected(env, port, "jackrec"):
            rec.kill()
            raise AssertionError(f"jack_rec did not connect to {port} within 10 s")
    return rec


class JackMidiOut:
    """A python-rtmidi JACK MIDI output connected to the instrument's input port."""

    def __init__(self, target: str = "instrument:in"):
        import rtmidi

        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="test-keys")
        names = self.out.get_ports()
        index = next(i for i, n in enumerate(names) if n == target)
        self.out.open_port(index, "out")
        self.sent_at = 0.0  # time.time() of the last message sent
        # Messages sent before JACK has made the connection are lost (seen on a loaded
        # machine): wait for it, up to 10 s.
        end = time.monotonic() + 10.0
        while time.monotonic() < end and not any(
                peer.startswith("test-keys") for peer in jack_connections(dict(os.environ))
                .get(target, ())):
            time.sleep(0.05)

    def send(self, *data: int) -> None:
        self.out.send_message(list(data))
        self.sent_at = time.time()

    def send_confirmed(self, osc_port: int, *messages: tuple, tries: int = 4,
                       spacing_s: float = 0.01) -> int:
        """Send ``messages`` and make sure the instrument on ``osc_port`` heard every one;
        returns how many were sent again.

        JACK's dummy driver on these machines loses about one event in 4000 between any two
        clients (measured with jack_midiseq into jack_midi_dump, no instrument involved), more
        on a loaded machine. The instrument counts what it hears (status ``midi_messages``) and
        lists the last 16 (``midi_recent``): a message of ours missing there once the count has
        stopped growing for ``SETTLE_S`` is sent again, up to ``tries`` times. A message the
        instrument heard but did not act on is not hidden by this: it is counted."""
        pending = [tuple(m) for m in messages]
        assert len(pending) <= 16, "the status lists the last 16 messages heard"
        resent = 0
        for attempt in range(tries):
            base = _status_after(osc_port, self.sent_at + 0.1).get("midi_messages", 0)
            for message in pending:
                self.send(*message)
                time.sleep(spacing_s)
            self.sent_at = time.time()
            heard = _heard_since(osc_port, base, len(pending))
            missing = list(pending)
            for hexed in heard:
                message = tuple(int(b, 16) for b in hexed.split())
                if message in missing:
                    missing.remove(message)
            if not missing:
                return resent
            resent += len(missing)
            pending = missing
        raise AssertionError(f"the instrument did not hear {pending} in {tries} tries")

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


def median_centroid_hz(x: np.ndarray, sample_rate: int, parts: int = 8) -> float:
    """The median of the centroids of ``parts`` slices of ``x``: one xrun click on the loaded
    test machine (a repeated or dropped period, seen on the recordings) moves one slice only."""
    return float(np.median([centroid_hz(p, sample_rate) for p in np.array_split(x, parts)]))


def median_pitch_hz(x: np.ndarray, sample_rate: int, parts: int = 4) -> float:
    """The median of the pitches of ``parts`` slices of ``x`` (see ``median_centroid_hz``)."""
    return float(np.median([pitch_hz(p, sample_rate) for p in np.array_split(x, parts)]))


def median_rms(x: np.ndarray, parts: int = 8) -> float:
    """The median of the RMS of ``parts`` slices of ``x`` (see ``median_centroid_hz``)."""
    return float(np.median([rms(p) for p in np.array_split(x, parts)]))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2)))
