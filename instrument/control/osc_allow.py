"""Which senders may reach the OSC router (``instrument run --osc-allow``).

``--osc-allow`` takes a comma-separated list of IPv4 networks (``192.168.1.0/24``, or an
address for one host), ``local`` (the default: loopback and the networks of this machine's
interfaces) and ``any`` (every sender; only on its own). A datagram from anyone else is
counted (``osc_denied`` in ``instrument status``) and dropped before it is parsed.

The local networks are read with ioctls (SIOCGIFADDR and SIOCGIFNETMASK for each interface of
``socket.if_nameindex()``): no subprocess and no text format to parse at start-up, and the
answer is exactly "the IPv4 networks of the interfaces". It sees each interface's primary
address only; add a secondary network by hand (``--osc-allow local,10.9.0.0/16``). When the
ioctls cannot be used at all (not Linux), ``local`` falls back to loopback plus the private
ranges of RFC 1918. Interfaces come and go (Wi-Fi gets its address after the service
started), so a refused sender makes ``local`` re-read them, at most once every
``LOCAL_REFRESH_S``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from instrument.errors import InstrumentError

log = logging.getLogger(__name__)

LOOPBACK = IPv4Network("127.0.0.0/8")
RFC1918_PRIVATE = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"),
                   IPv4Network("192.168.0.0/16"))
LOCAL_REFRESH_S = 5.0
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
_IFREQ_ADDRESS = slice(20, 24)  # struct ifreq: 16-byte name, then sockaddr_in (family, port, addr)


def local_ipv4_networks() -> tuple[IPv4Network, ...]:
    """Loopback and the IPv4 network of every interface that has an address; loopback plus
    RFC 1918 when interfaces cannot be asked (see the module docstring)."""
    try:
        import fcntl

        networks = [LOOPBACK]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _index, name in socket.if_nameindex():
                network = _interface_network(fcntl, probe.fileno(), name)
                if network is not None and network not in networks:
                    networks.append(network)
        return tuple(networks)
    except (ImportError, OSError, AttributeError, ValueError) as exc:
        log.warning("OSC: cannot list the local networks (%s); accepting loopback and the "
                    "private ranges 10/8, 172.16/12, 192.168/16", exc)
        return (LOOPBACK, *RFC1918_PRIVATE)


def _interface_network(fcntl, fd: int, name: str) -> IPv4Network | None:
    request = struct.pack("256s", name.encode()[:15])
    try:
        address = fcntl.ioctl(fd, SIOCGIFADDR, request)[_IFREQ_ADDRESS]
        netmask = fcntl.ioctl(fd, SIOCGIFNETMASK, request)[_IFREQ_ADDRESS]
    except OSError:  # EADDRNOTAVAIL: this interface has no IPv4 address (yet)
        return None
    return IPv4Network(f"{socket.inet_ntoa(address)}/{socket.inet_ntoa(netmask)}", strict=False)


class SenderAllowlist:
    """The decision for one sender address: ``allows(ip)``."""

    def __init__(self, networks=(), include_local: bool = False, allow_any: bool = False,
                 local_networks: Callable[[], tuple[IPv4Network, ...]] = local_ipv4_networks):
        self.networks = tuple(networks)
        self.include_local = include_local
        self.allow_any = allow_any
        self.read_local_networks = local_networks
        self.local: tuple[IPv4Network, ...] = local_networks() if include_local else ()
        self.local_read_at_s = time.monotonic()

    def allows(self, ip: IPv4Address) -> bool:
        """True when ``ip`` is in an allowed network (always, with ``any``)."""
        if self.allow_any:
            return True
        return any(ip in net for net in self.local) or any(ip in net for net in self.networks)

    def refresh_local(self, now_s: float) -> bool:
        """Re-read the local networks if ``local`` is on and the last read is older than
        ``LOCAL_REFRESH_S``; True when they changed."""
        if not self.include_local or now_s - self.local_read_at_s < LOCAL_REFRESH_S:
            return False
        self.local_read_at_s = now_s
        fresh = self.read_local_networks()
        changed = fresh != self.local
        self.local = fresh
        return changed

    def describe(self) -> str:
        if self.allow_any:
            return "any sender"
        return ", ".join(str(net) for net in (*self.local, *self.networks)) or "nobody"


def parse_osc_allow(text: str, local_networks=local_ipv4_networks) -> SenderAllowlist:
    """The allowlist for ``--osc-allow TEXT``; InstrumentError (one line) for anything that
    is not ``any``, ``local`` or an IPv4 network."""
    items = [item.strip() for item in text.split(",")]
    if "any" in items:
        if len(items) > 1:
            raise _bad(text, "'any' already allows every sender; give it alone")
        return SenderAllowlist(allow_any=True, local_networks=local_networks)
    networks = []
    for item in items:
        if item == "local":
            continue
        networks.append(_network(item))
    return SenderAllowlist(networks, include_local="local" in items, local_networks=local_networks)


def _network(item: str) -> IPv4Network:
    if not item:
        raise _bad(item, "empty entry")
    try:
        network = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise _bad(item, "not an IPv4 network") from None
    if not isinstance(network, IPv4Network):
        raise _bad(item, "OSC listens on IPv4 only")
    return network


def _bad(item: str, why: str) -> InstrumentError:
    return InstrumentError(f"{item!r}: {why}", "--osc-allow",
                           "use networks like 192.168.1.0/24, 'local' or 'any', "
                           "separated by commas")
