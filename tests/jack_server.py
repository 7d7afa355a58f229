"""A real JACK server (dummy driver) for integration tests; the fixture lives in conftest.py.

The server gets a name unique to the test session and is reached through ``JACK_DEFAULT_SERVER``,
which libjack reads in every client: python-rtmidi's JACK MIDI, PortAudio's JACK host API,
``jack_lsp``/``jack_midiseq``/``jack_rec``. Subprocesses inherit it from ``os.environ``.

PortAudio enumerates host APIs and devices once, when it is initialised (``import sounddevice``);
call :func:`portaudio_rescan` after the server is up if sounddevice may have been imported
before it. PortAudio must also be shut down before the server stops (the fixture does that),
or its JACK host API aborts the process at exit.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0


class JackServerError(RuntimeError):
    pass


@dataclass
class JackServer:
    name: str
    rate: int
    period: int
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False)

    def lsp(self, *args: str, timeout: float = 5.0) -> str:
        """Output of ``jack_lsp ARGS`` against this server (raises if it fails)."""
        return subprocess.run(["jack_lsp", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=True).stdout

    def ports(self) -> list[str]:
        return [line.strip() for line in self.lsp().splitlines() if line.strip()]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            self.log_path.unlink()
        except OSError:
            pass


def jack_env(name: str, base: dict | None = None) -> dict:
    """Environment for JACK clients of server ``name``."""
    env = dict(os.environ if base is None else base)
    env["JACK_DEFAULT_SERVER"] = name
    env["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation
    env["JACK_NO_START_SERVER"] = "1"       # a client must never auto-start some other server
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # If pytest is killed outright, take jackd with it (Linux PR_SET_PDEATHSIG = 1).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


TEST_REALTIME_PRIORITY = 70  # jackd -P: its clients' process threads run just below it


def realtime_allowed() -> bool:
    """True when this process may use SCHED_FIFO (root or an rtprio limit), unless
    ``INSTRUMENT_TEST_JACK_RT=0`` asks for a server without real-time threads."""
    if os.environ.get("INSTRUMENT_TEST_JACK_RT", "1") == "0":
        return False
    try:
        return subprocess.run(["chrt", "-f", "1", "true"], capture_output=True,
                              timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_realtime_priority() -> int:
    """The priority the test servers use: real-time where allowed. Measured on the 2-core test
    VM with 6 busy processes beside it, 4 000 JACK MIDI messages through an rtmidi pair per
    run: 73 of 16 000 lost without real-time threads (a client starved past its cycle is
    skipped by the asynchronous server, with that cycle's MIDI events), 0 of 16 000 with them.
    Lost events made a live test fail in one full-suite run out of three."""
    return TEST_REALTIME_PRIORITY if realtime_allowed() else 0


def start_jack_server(name: str | None = None, rate: int = 48000, period: int = 64,
                      timeout: float = START_TIMEOUT_S, realtime_priority: int = 0,
                      sync: bool = False) -> JackServer:
    """Start ``jackd --no-realtime -n NAME [-S] -d dummy -r RATE -p PERIOD`` (``-R -P N``
    instead of ``--no-realtime`` for ``realtime_priority`` N > 0) and wait until a client
    (``jack_lsp``) can connect. ``sync`` (-S): the server waits for late clients instead of
    skipping them in that cycle, and a skipped client loses the MIDI events of the cycle.
    Raises :class:`JackServerError` with jackd's log on failure."""
    jackd = shutil.which("jackd")
    if jackd is None:
        raise JackServerError("jackd not found (Debian package jackd2; ./setup.sh --test installs it)")
    if shutil.which("jack_lsp") is None:
        raise JackServerError("jack_lsp not found (Debian package jackd2)")
    name = name or f"instrument-test-{os.getpid()}"
    env = jack_env(name)
    _clear_stale_jack_registry()
    fd, log_name = tempfile.mkstemp(prefix=f"jackd-{name}-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            [jackd, *(["-R", "-P", str(realtime_priority)] if realtime_priority else ["--no-realtime"]),
             "-n", name, *(["-S"] if sync else []), "-d", "dummy", "-r", str(rate), "-p", str(period)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    server = JackServer(name, rate, period, process, log_path, env)

    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if process.poll() is not None:
            text = server.log()
            server.stop()
            raise JackServerError(f"jackd exited with code {process.returncode} during start:\n{text}")
        try:
            probe = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=5)
            if probe.returncode == 0 and "system:playback_1" in probe.stdout:
                return server
            last = (probe.stdout + probe.stderr).strip()
        except subprocess.TimeoutExpired:
            last = "jack_lsp timed out"
        if time.monotonic() > deadline:
            text = server.log()
            server.stop()
            raise JackServerError(f"JACK server {name!r} not reachable after {timeout:.0f} s "
                                  f"(last jack_lsp: {last!r}); jackd log:\n{text}")
        time.sleep(0.1)


def _clear_stale_jack_registry() -> None:
    """A jackd killed with SIGKILL leaves its entry in JACK's shared-memory registry; after a
    few, every new server fails with "Too many servers already active". With no jackd running
    at all, the registry is stale: remove it."""
    alive = subprocess.run(["pgrep", "-x", "jackd"], capture_output=True).returncode == 0
    if alive:
        return
    for path in Path("/dev/shm").glob("jack*"):
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass


def portaudio_terminate() -> int:
    """Shut PortAudio down completely if sounddevice is loaded; return how many times it had
    been initialised (for :func:`portaudio_initialize`).

    Must run before the JACK server goes away: PortAudio's JACK host API asserts (aborting the
    whole process) when it closes its client on a server that is gone.
    """
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return 0
    count = sd._initialized
    while sd._initialized > 0:
        sd._terminate()
    return count


def portaudio_initialize(count: int = 1) -> None:
    """Initialise PortAudio ``count`` times (the reference count sounddevice keeps)."""
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    for _ in range(count):
        sd._initialize()


def portaudio_rescan() -> None:
    """Make sounddevice/PortAudio enumerate host APIs and devices again (e.g. to see JACK)."""
    import sounddevice  # noqa: F401

    portaudio_initialize(max(portaudio_terminate(), 1))
