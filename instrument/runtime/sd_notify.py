"""systemd's service notification protocol (sd_notify(3)), spoken directly: one datagram of
``NAME=value`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or ``@name``
for the abstract namespace). Without ``$NOTIFY_SOCKET`` (not under systemd, or not
``Type=notify``) everything here does nothing. Nothing here raises: a failed send is one
warning line (later failures are logged at debug level only).

``ServiceNotifier`` is what the host tells systemd (deploy/instrument.service):

- ``READY=1`` once, when the audio runs (the first audio callbacks were counted), not when
  the process merely started: a cold first start compiles the DSP code for minutes.
- ``STATUS=...`` once a second: preset, voices, load, xruns (``systemctl status instrument``).
- ``WATCHDOG=1`` only when the audio callback counter advanced since the previous ping, and at
  most every quarter of ``WATCHDOG_USEC``: a frozen audio process or a hung host main loop
  stops the pings and systemd restarts the service. While the host restarts a dead audio
  process (under a second) the pings pause; WatchdogSec is well above that.
- ``STOPPING=1`` when the host begins to shut down.

A small maintained library would do the sending as well (``systemd-python``'s
``daemon.notify`` needs libsystemd headers to build; ``sdnotify`` hides every error), but the
protocol is one ``sendto`` and this keeps the appliance free of another dependency.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable, Mapping

log = logging.getLogger("instrument.sd_notify")

STATUS_PERIOD_S = 1.0
WATCHDOG_FRACTION = 0.25  # ping every quarter of WatchdogSec (systemd suggests at least half)


def notify_address(value: str | None) -> str | None:
    """The socket address for ``$NOTIFY_SOCKET``: a filesystem path, or '\\0name' for '@name'
    (abstract namespace); None when unset or of a kind this does not speak (vsock:...)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_usec(environ: Mapping[str, str] | None = None) -> int:
    """sd_watchdog_enabled(3): the watchdog timeout in microseconds when ``$WATCHDOG_USEC`` is
    a positive number and ``$WATCHDOG_PID`` is unset or this process's pid; else 0."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = env.get("WATCHDOG_PID")
        if pid is not None and int(pid) != os.getpid():
            return 0
    except ValueError:
        return 0
    return max(usec, 0)


class Notifier:
    """Sends notification datagrams to ``$NOTIFY_SOCKET``; a no-op when it is unset."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET")
        self.raw = raw
        self.address = notify_address(raw)
        self.sock: socket.socket | None = None
        self.warned = False
        if raw and self.address is None:
            self._failed(f"NOTIFY_SOCKET={raw!r} is not a unix socket path or @name")

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` ('READY=1', 'STATUS=...') as one datagram; True if it was sent."""
        if self.address is None:
            return False
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.settimeout(1.0)  # systemd reads at once; never stall the host long
            self.sock.sendto("\n".join(fields).encode("utf-8", "replace"), self.address)
            return True
        except Exception as exc:  # noqa: BLE001 - telling systemd must never take the host down
            self._failed(f"cannot notify systemd at NOTIFY_SOCKET={self.raw}: {exc}")
            return False

    def _failed(self, line: str) -> None:
        if self.warned:
            log.debug("%s", line)
        else:
            log.warning("%s", line)
            self.warned = True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def status_text(preset_name: str, status: Mapping) -> str:
    """One line for ``STATUS=``, from ``Host.status_dict()``."""
    if not status.get("callbacks"):
        return f"{preset_name}, waiting for audio"
    return (f"{preset_name}, {status['active_voices']} voices, load p99.9 "
            f"{status['callback_p999_pct']:.0f}%, {status['xruns']} xruns")


class ServiceNotifier:
    """What the host's main loop tells systemd; call ``update`` every loop turn."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.notifier = Notifier(environ)
        usec = watchdog_usec(environ) if self.notifier.enabled else 0
        self.watchdog_period_s = usec / 1e6 * WATCHDOG_FRACTION if usec else None
        self.ready = False
        self.fed_callbacks: float | None = None
        self.fed_at = float("-inf")
        self.status_at = float("-inf")

    def update(self, now: float, callbacks: float, audio_running: bool,
               text: Callable[[], str]) -> None:
        """``callbacks``: the audio callback counter; ``audio_running``: the audio process
        plays (its state is running and it counted callbacks); ``text``: the status line,
        called only when it is sent."""
        if not self.notifier.enabled:
            return
        if not self.ready and audio_running:
            self.ready = self.notifier.notify("READY=1", "STATUS=" + text())
            self.status_at = now
        if self.ready and self.watchdog_period_s is not None and callbacks > 0 and \
                callbacks != self.fed_callbacks and now - self.fed_at >= self.watchdog_period_s:
            self.notifier.notify("WATCHDOG=1")
            self.fed_callbacks = callbacks
            self.fed_at = now
        if now - self.status_at >= STATUS_PERIOD_S:
            self.notifier.notify("STATUS=" + text())
            self.status_at = now

    def stopping(self) -> None:
        self.notifier.notify("STOPPING=1", "STATUS=stopping")

    def restarting(self) -> None:
        """The process is about to exec itself with new code (runtime/code_watch.py): same
        PID, so systemd keeps following it; the new program says READY=1 again."""
        self.notifier.notify("STATUS=restarting with new code")
