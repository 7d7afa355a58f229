"""systemd integration: the sd_notify module, a real ``instrument run`` talking to a notify
socket the test binds (READY only once audio runs, STATUS, WATCHDOG only while the audio
callbacks progress, STOPPING), and ``systemd-analyze verify`` of deploy/instrument.service."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from instrument.runtime.sd_notify import (
    Notifier, ServiceNotifier, notify_address, status_text, watchdog_usec,
)
from live import REPO, free_udp_port

UNIT = REPO / "deploy" / "instrument.service"


# ---- the module --------------------------------------------------------------------------------
def _abstract_receiver():
    name = f"instrument-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    return sock, "@" + name


def test_notify_reaches_an_abstract_namespace_socket():
    sock, env_value = _abstract_receiver()
    try:
        notifier = Notifier({"NOTIFY_SOCKET": env_value})
        assert notifier.enabled
        assert notifier.notify("READY=1", "STATUS=Poly 16, 0 voices")
        assert sock.recv(4096) == b"READY=1\nSTATUS=Poly 16, 0 voices"
        notifier.close()
    finally:
        sock.close()


def test_notify_reaches_a_path_socket(tmp_path):
    path = _short_socket_path(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2.0)
        assert Notifier({"NOTIFY_SOCKET": str(path)}).notify("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    service = ServiceNotifier({"WATCHDOG_USEC": "2000000"})
    assert service.watchdog_period_s is None
    service.update(1.0, 100, True, lambda: pytest.fail("no status text without systemd"))
    service.stopping()


def test_a_failing_socket_never_raises_and_warns_once(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.DEBUG, logger="instrument.sd_notify"):
        assert notifier.notify("READY=1") is False
        assert notifier.notify("WATCHDOG=1") is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "NOTIFY_SOCKET" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="instrument.sd_notify"):
        bad = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})  # a kind this does not speak
        assert not bad.enabled and bad.notify("READY=1") is False
    assert len(caplog.records) == 1


def test_addresses_and_watchdog_environment():
    assert notify_address(None) is None and notify_address("") is None
    assert notify_address("@sd/notify") == "\0sd/notify"
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert watchdog_usec({}) == 0
    assert watchdog_usec({"WATCHDOG_USEC": "10000000"}) == 10_000_000
    assert watchdog_usec({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) \
        == 10_000_000
    assert watchdog_usec({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) == 0  # not ours
    assert watchdog_usec({"WATCHDOG_USEC": "soon"}) == 0
    assert watchdog_usec({"WATCHDOG_USEC": "0"}) == 0


def test_status_text():
    d = {"callbacks": 1200, "active_voices": 3, "callback_p999_pct": 5.2, "xruns": 0}
    assert status_text("Poly 16", d) == "Poly 16, 3 voices, load p99.9 5%, 0 xruns"
    assert status_text("Poly 16", {"callbacks": 0}) == "Poly 16, waiting for audio"


def test_service_notifier_ready_once_audio_runs_and_watchdog_only_on_progress():
    sock, env_value = _abstract_receiver()
    sock.settimeout(0.05)

    def drain():
        got = []
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                return got

    try:
        service = ServiceNotifier({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "2000000"})
        assert service.watchdog_period_s == pytest.approx(0.5)
        service.update(0.0, 0, False, lambda: "P, waiting for audio")  # compiling, starting
        sent = drain()
        assert sent == ["STATUS=P, waiting for audio"]  # no READY, no WATCHDOG yet
        service.update(0.1, 64, True, lambda: "P, 0 voices")
        sent = drain()
        assert sent[0] == "READY=1\nSTATUS=P, 0 voices" and "WATCHDOG=1" in sent
        service.update(0.2, 128, True, lambda: "P")  # progress, but too soon after the ping
        assert drain() == []
        service.update(0.7, 128, True, lambda: "P")
        assert drain() == ["WATCHDOG=1"]
        for t in (1.3, 1.9, 2.5):  # frozen callbacks: STATUS goes on, WATCHDOG does not
            service.update(t, 128, True, lambda: "P")
        assert "WATCHDOG=1" not in drain()
        service.update(3.0, 0, False, lambda: "P")  # the audio process restarts: counter 0
        assert "WATCHDOG=1" not in drain()
        service.update(3.2, 64, True, lambda: "P")  # ... and plays again
        sent = drain()
        assert "WATCHDOG=1" in sent and not any("READY" in m for m in sent)  # READY only once
        service.stopping()
        assert drain() == ["STOPPING=1\nSTATUS=stopping"]
    finally:
        sock.close()


# ---- a real instance ---------------------------------------------------------------------------
def _short_socket_path(tmp_path: Path) -> Path:
    """A socket path under the 108-byte limit of sun_path."""
    path = tmp_path / "notify.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="sdn-")) / "notify.sock"


class NotifySocket:
    """Binds a datagram socket like systemd's and records every message with its arrival time."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def fields(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, str]]:
        """Every NAME=value line that arrived in [since, until), with its arrival time."""
        with self.lock:
            return [(t, line) for t, m in self.messages if since <= t < until
                    for line in m.split("\n")]

    def wait_for(self, field: str, timeout_s: float, since: float = 0.0) -> float | None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for t, line in self.fields(since):
                if line == field:
                    return t
            time.sleep(0.05)
        return None

    def close(self):
        self.done.set()
        self.thread.join(timeout=2.0)
        self.sock.close()


def _read_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _wait_status(path: Path, ok, timeout_s: float) -> dict:
    end = time.monotonic() + timeout_s
    data: dict = {}
    while time.monotonic() < end:
        data = _read_status(path)
        if data and ok(data):
            return data
        time.sleep(0.1)
    return data


def test_instrument_run_under_a_notify_socket(tmp_path):
    notify = NotifySocket(_short_socket_path(tmp_path))
    port = free_udp_port()
    run_dir = tmp_path / "run"  # as systemd's RuntimeDirectory= would give it
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="2000000",
               RUNTIME_DIRECTORY=str(run_dir))
    env.pop("WATCHDOG_PID", None)
    status_file = run_dir / f"status-{port}.json"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", "presets/poly16.toml", "--null",
         "--no-midi", "--osc-port", str(port), "--osc-bind", "127.0.0.1", "--no-zeroconf",
         "--oscquery-port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    audio_pid = 0
    stopped = False
    try:
        ready_t = notify.wait_for("READY=1", 240)
        assert ready_t is not None, "no READY=1"
        # READY came only once the audio ran: its status line already counts voices, and the
        # first audio callback (measured from the host's start, which is after `started`)
        # happened before READY arrived.
        ready_status = [line for t, line in notify.fields(ready_t, ready_t + 1e-9)
                        if line.startswith("STATUS=")]
        assert ready_status and "voices" in ready_status[0], ready_status
        data = _wait_status(status_file, lambda d: d.get("first_audio_s") is not None, 30)
        assert data.get("first_audio_s") is not None, data
        assert ready_t - started >= data["first_audio_s"]
        assert data["callbacks"] > 0
        assert not [line for t, line in notify.fields(until=ready_t)
                    if line == "WATCHDOG=1"]  # no watchdog ping before READY

        # STATUS once a second with the preset's name; WATCHDOG=1 again and again.
        assert notify.wait_for("WATCHDOG=1", 10, since=ready_t + 2.0) is not None
        statuses = [line for _, line in notify.fields(ready_t) if line.startswith("STATUS=")]
        assert len(statuses) >= 2 and all(s.startswith("STATUS=Poly 16, ") for s in statuses)
        assert re.fullmatch(r"STATUS=Poly 16, \d+ voices, load p99\.9 \d+%, \d+ xruns",
                            statuses[-1]), statuses[-1]
        pings = [t for t, line in notify.fields(ready_t) if line == "WATCHDOG=1"]
        assert len(pings) >= 3, pings

        # A frozen audio process (not dead: the host does not restart it) stops the pings;
        # the host itself goes on (STATUS goes on), so systemd's watchdog would restart it.
        audio_pid = int(data["audio_pid"])
        assert audio_pid > 0
        os.kill(audio_pid, signal.SIGSTOP)
        frozen_t = time.monotonic()
        time.sleep(4.0)
        after = notify.fields(since=frozen_t + 1.0)  # a ping in flight at the stop is fine
        assert "WATCHDOG=1" not in [line for _, line in after], after
        assert any(line.startswith("STATUS=") for _, line in after)
        assert proc.poll() is None
        os.kill(audio_pid, signal.SIGCONT)
        stopped = True
        thawed_t = time.monotonic()
        assert notify.wait_for("WATCHDOG=1", 10, since=thawed_t) is not None  # pings resume

        # SIGTERM (systemctl stop): STOPPING=1, then a clean exit.
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
        assert "STOPPING=1" in [line for _, line in notify.fields()]
        assert not status_file.exists()  # removed from the runtime directory at exit
        assert [line for _, line in notify.fields()].count("READY=1") == 1
    finally:
        if audio_pid and not stopped:
            try:
                os.kill(audio_pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        notify.close()


# ---- the unit file -----------------------------------------------------------------------------
# What `systemd-analyze verify` says about this machine rather than about the unit (a container
# without systemd as PID 1, no "instrument" user, nothing installed under /opt).
_ENVIRONMENT_NOISE = (
    "/opt/instrument", "/etc/instrument", "instrument.service: Command", "Failed to connect",
    "System has not been booted with systemd", "sound.target", "user instrument",
    "group instrument",
)


def test_unit_file_says_what_it_should():
    text = UNIT.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    assert settings["Type"] == ["notify"]
    assert settings["NotifyAccess"] == ["main"]
    assert settings["ExecStart"] == [
        "/opt/instrument/.venv/bin/instrument run --config /etc/instrument/instrument.toml"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["ProtectSystem"] == ["strict"]
    for key in ("WatchdogSec", "TimeoutStartSec", "LimitRTPRIO", "LimitMEMLOCK",
                "StateDirectory", "CacheDirectory", "RuntimeDirectory"):
        assert key in settings, key
    for key in ("PrivateDevices", "RestrictRealtime", "MemoryDenyWriteExecute"):
        assert key not in settings, f"{key} would break real-time audio or the JIT"


def test_systemd_analyze_verify():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    out = subprocess.run([tool, "verify", "--man=no", str(UNIT)], capture_output=True,
                         text=True, timeout=60)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    about_unit = [line for line in lines
                  if not any(noise in line for noise in _ENVIRONMENT_NOISE)]
    assert not about_unit, "\n".join(lines)
    for line in lines:  # unknown or misspelt settings are never environment noise
        assert "Unknown key" not in line and "Unknown lvalue" not in line, line
        assert "Failed to parse" not in line and "Invalid" not in line, line
