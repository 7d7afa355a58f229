"""Zeroconf (mDNS/DNS-SD): OSC clients find the instrument by name, without typing an address.

Two services, instance name "instrument on <hostname>":

- ``_osc._udp.local.`` on the OSC port (TouchOSC, Lemur, any OSC browser);
- ``_oscjson._tcp.local.`` on the OSCQuery port (ossia score, Chataigne, VDMX; the service
  type the OSCQuery proposal names), when OSCQuery is served.

TXT properties: ``preset`` (the playing preset's name, updated when it changes: a poll once a
second and one re-announcement, no hook in the host), ``osc_port``, ``oscquery_port``.

Addresses: with ``--osc-bind 0.0.0.0`` (the default) every IPv4 address of the machine but
loopback (loopback only if there is nothing else), announced on every interface; with a
specific ``--osc-bind`` only that address, announced on that interface only (``127.0.0.1``:
only clients on this machine see it).

Registration probes the network for name clashes (about 1.7 s), so it runs in a background
thread: start-up and audio never wait for it. Anything that goes wrong (no network, no
multicast, the package missing) is one warning line and the instrument plays on unadvertised.
Uses the ``zeroconf`` package (pure Python, maintained, what Home Assistant uses); on a Pi it
answers beside avahi-daemon, which keeps advertising the host itself.
"""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)

OSC_TYPE = "_osc._udp.local."
OSCQUERY_TYPE = "_oscjson._tcp.local."
PRESET_POLL_S = 1.0
MAX_LABEL_BYTES = 63  # a DNS label (the instance name) is at most 63 bytes
MAX_TXT_VALUE_BYTES = 200  # a TXT entry (key=value) is at most 255 bytes


def hostname() -> str:
    """This machine's short host name ("raspberrypi"), or "localhost" when it has none."""
    return socket.gethostname().split(".")[0] or "localhost"


def instance_name() -> str:
    """The name clients show: "instrument on raspberrypi" (cut to one DNS label)."""
    return _cut(f"instrument on {hostname()}", MAX_LABEL_BYTES)


def advertised_addresses(bind: str) -> list[str]:
    """The IPv4 addresses to announce for an OSC server bound to ``bind``."""
    if bind not in ("0.0.0.0", ""):
        return [bind]
    try:
        import ifaddr  # installed with zeroconf

        found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
                 if isinstance(ip.ip, str)]
    except Exception:  # noqa: BLE001 - no interface list: loopback only
        found = []
    outside = [a for a in found if not a.startswith("127.")]
    return sorted(set(outside)) or ["127.0.0.1"]


class ZeroconfAdvertiser:
    """Advertise the OSC (and OSCQuery) service of ``state`` in a background thread.
    ``state.plan.name`` is the preset name put in the TXT record."""

    def __init__(self, state, bind: str, osc_port: int, oscquery_port: int | None = None):
        self.state = state
        self.bind = bind
        self.osc_port = osc_port
        self.oscquery_port = oscquery_port
        self.name = instance_name()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.zc = None
        self.registered: list = []
        self.advertised = False  # registration over: stop() withdraws in order
        self.preset = None
        self.thread = threading.Thread(target=self._run, name="zeroconf", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Withdraw the services (goodbye packets, ~0.3 s) and close. A registration still
        probing (the first 2-4 s) cannot be interrupted and is not waited for: the thread
        withdraws what it registered when it is done, if the process still runs then."""
        self.stopping.set()
        if self.advertised:
            self.thread.join(timeout=timeout_s)

    # ---- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            from zeroconf import InterfaceChoice, IPVersion, Zeroconf
        except ImportError:
            log.warning("Zeroconf: not advertised (the 'zeroconf' package is not installed; "
                        "run ./setup.sh)")
            return
        try:
            interfaces = InterfaceChoice.All if self.bind in ("0.0.0.0", "") else [self.bind]
            with self.lock:
                if self.stopping.is_set():
                    return
                self.zc = Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            self.preset = self._preset()
            for info in self._infos():
                self.zc.register_service(info, allow_name_change=True)
                self.registered.append(info)
            self.advertised = True
            log.info("Zeroconf: advertised as '%s' (%s)", self.name,
                     ", ".join(f"{i.type[:-7]} {i.port}" for i in self.registered))
            while not self.stopping.wait(PRESET_POLL_S):
                preset = self._preset()
                if preset != self.preset:
                    self.preset = preset
                    self._update()
        except Exception as exc:  # noqa: BLE001 - no network, no multicast: play on unadvertised
            if not self.stopping.is_set():
                log.warning("Zeroconf: not advertised (%s: %s); clients can still connect to "
                            "the address and port", type(exc).__name__, exc)
        finally:
            self._close()

    def _preset(self) -> str:
        plan = getattr(self.state, "plan", None)
        return getattr(plan, "name", "") or ""

    def _properties(self) -> dict:
        props = {"preset": _cut(self.preset or "", MAX_TXT_VALUE_BYTES),
                 "osc_port": str(self.osc_port)}
        if self.oscquery_port:
            props["oscquery_port"] = str(self.oscquery_port)
        return props

    def _infos(self) -> list:
        from zeroconf import ServiceInfo

        addresses = advertised_addresses(self.bind)
        server = f"{hostname()}.local."
        services = [(OSC_TYPE, self.osc_port)]
        if self.oscquery_port:
            services.append((OSCQUERY_TYPE, self.oscquery_port))
        return [ServiceInfo(kind, f"{self.name}.{kind}", port=port,
                            properties=self._properties(), parsed_addresses=addresses,
                            server=server)
                for kind, port in services]

    def _update(self) -> None:
        """The same services (under the names registration settled on) with the new TXT."""
        from zeroconf import ServiceInfo

        for i, old in enumerate(self.registered):
            if self.stopping.is_set():
                return
            new = ServiceInfo(old.type, old.name, port=old.port, properties=self._properties(),
                              addresses=old.addresses, server=old.server)
            self.zc.update_service(new)
            self.registered[i] = new
        log.debug("Zeroconf: preset now '%s'", self.preset)

    def _close(self) -> None:
        with self.lock:
            zc, self.zc = self.zc, None
        if zc is None:
            return
        try:
            if self.registered:
                zc.unregister_all_services()
            zc.close()
        except Exception as exc:  # noqa: BLE001 - shutting down: nothing to save
            log.debug("Zeroconf: close: %s", exc)


def start_zeroconf(host) -> ZeroconfAdvertiser | None:
    """Start advertising ``host`` (a runtime Host, after its OSC server and OSCQuery started)
    unless ``--no-zeroconf``."""
    if not getattr(host.opt, "zeroconf", True) or host.osc is None:
        return None
    query = getattr(host, "oscquery", None)
    advertiser = ZeroconfAdvertiser(host, host.opt.osc_bind, host.osc.port,
                                    query.port if query is not None else None)
    advertiser.start()
    return advertiser


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
