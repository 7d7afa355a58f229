"""OSCQuery (JSON over HTTP) and Zeroconf: through a real ``instrument run`` (null output, OSC
and HTTP on 127.0.0.1, mDNS on loopback only), plus the HTTP server's refusals in-process."""

import http.client
import json
import signal
import socket
import struct
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from live import REPO, free_udp_port, osc_dgram, stop_checked, wait_status

CUTOFF = "/param/filt/cutoff_hz"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, target, timeout=5.0):
    """(status, headers, body) of GET http://127.0.0.1:port<target>; errors are statuses."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(port, target):
    status, _, body = get(port, target)
    assert status == 200, (target, status, body)
    return json.loads(body)


def request(port, method, target, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Instance:
    def __init__(self, *extra):
        self.port = free_udp_port()
        self.query_port = free_tcp_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "instrument.cli.main", "run", "presets/poly16.toml", "--null",
             "--no-midi", "--osc-port", str(self.port), "--osc-bind", "127.0.0.1",
             "--oscquery-port", str(self.query_port), *extra],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.proc.communicate()[0]
            try:
                if get(self.query_port, "/?HOST_INFO", timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("OSCQuery did not answer within 30 s")

    def send(self, address, *args):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(osc_dgram(address, *args), ("127.0.0.1", self.port))

    def stop(self):
        return stop_checked(self.proc)


@pytest.fixture(scope="module")
def inst():
    instance = Instance()
    yield instance
    instance.stop()


# ---- OSCQuery over HTTP, real instance ---------------------------------------------------------
def test_root_tree_describes_parameters_with_normalized_range_value_and_display(inst):
    root = get_json(inst.query_port, "/")
    assert root["FULL_PATH"] == "/" and "CONTENTS" in root
    node = root["CONTENTS"]["param"]["CONTENTS"]["filt"]["CONTENTS"]["cutoff_hz"]
    assert node["FULL_PATH"] == CUTOFF
    assert node["TYPE"] == "f" and node["ACCESS"] == 3
    assert node["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}] and node["CLIPMODE"] == ["both"]
    assert len(node["VALUE"]) == 1 and 0.0 <= node["VALUE"][0] <= 1.0
    assert node["DESCRIPTION"].startswith("Cutoff, 20.0 Hz .. 20.0 kHz, log")
    assert node["DISPLAY"]["UNIT"] == "Hz" and node["DISPLAY"]["TEXT"].endswith("Hz")
    contents = root["CONTENTS"]
    assert contents["macro"]["CONTENTS"]["1"]["TYPE"] == "f"
    assert contents["macro"]["CONTENTS"]["cutoff"]["FULL_PATH"] == "/macro/cutoff"
    assert contents["note"]["CONTENTS"]["on"]["TYPE"] == "if"
    assert contents["note"]["CONTENTS"]["on"]["ACCESS"] == 2
    assert "VALUE" not in contents["note"]["CONTENTS"]["on"]
    load = contents["preset"]["CONTENTS"]["load"]
    assert load["TYPE"] == "s" and load["VALUE"] == ["poly16"]
    assert "pad" in load["RANGE"][0]["VALS"]
    assert contents["preset"]["CONTENTS"]["name"]["VALUE"] == ["Poly 16"]
    assert "TYPE" not in contents["panic"]


def test_one_node_and_one_attribute(inst):
    node = get_json(inst.query_port, CUTOFF)
    assert node["FULL_PATH"] == CUTOFF and "CONTENTS" not in node
    assert get_json(inst.query_port, CUTOFF + "/")["FULL_PATH"] == CUTOFF
    value = get_json(inst.query_port, CUTOFF + "?VALUE")
    assert list(value) == ["VALUE"] and len(value["VALUE"]) == 1
    assert get_json(inst.query_port, CUTOFF + "?RANGE") == {"RANGE": [{"MIN": 0.0, "MAX": 1.0}]}
    assert get_json(inst.query_port, "/param/filt")["CONTENTS"].keys() >= {"cutoff_hz"}
    assert get_json(inst.query_port, "/note?TYPE") == {}  # a container has no type
    assert get(inst.query_port, "/note/on?VALUE")[0] == 204  # write only
    assert get(inst.query_port, CUTOFF + "?NONSENSE")[0] == 400


def test_host_info(inst):
    info = get_json(inst.query_port, "/?HOST_INFO")
    assert info["OSC_PORT"] == inst.port and info["OSC_TRANSPORT"] == "UDP"
    assert info["OSC_IP"] == "127.0.0.1"
    assert info["NAME"].startswith("instrument on ")
    assert info["EXTENSIONS"]["VALUE"] is True and info["EXTENSIONS"]["LISTEN"] is False
    assert get_json(inst.query_port, "/param?HOST_INFO") == info  # the path is irrelevant


def test_value_follows_what_osc_sets(inst):
    inst.send(CUTOFF, 0.8)
    end = time.monotonic() + 5
    value = None
    while time.monotonic() < end:
        value = get_json(inst.query_port, CUTOFF + "?VALUE")["VALUE"][0]
        if abs(value - 0.8) < 1e-6:
            break
        time.sleep(0.05)
    assert abs(value - 0.8) < 1e-6
    node = get_json(inst.query_port, CUTOFF)
    assert node["DISPLAY"]["TEXT"].endswith("kHz")  # 0.8 of 20 Hz .. 20 kHz, log


def test_unknown_paths_are_404_and_only_get_is_answered(inst):
    assert get(inst.query_port, "/param/filt/nonsense")[0] == 404
    assert get(inst.query_port, "/etc/passwd")[0] == 404
    assert get(inst.query_port, "/%2e%2e/%2e%2e/etc/passwd")[0] == 404
    assert request(inst.query_port, "POST", CUTOFF)[0] == 405
    assert request(inst.query_port, "PUT", CUTOFF)[0] == 405
    assert request(inst.query_port, "BREW", "/")[0] == 501
    assert get_json(inst.query_port, CUTOFF)["FULL_PATH"] == CUTOFF  # still serving


def test_the_touchosc_layout_of_the_playing_preset(inst):
    import importlib.util

    status, headers, body = get(inst.query_port, "/layout.tosc")
    if importlib.util.find_spec("instrument.control.touchosc_layout") is None:
        assert status == 404
        return
    assert status == 200 and body and headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="Poly 16.tosc"'


# ---- Zeroconf, real instance -------------------------------------------------------------------
def loopback_multicast_works() -> bool:
    """Can a multicast datagram go out on 127.0.0.1 and come back (what mDNS on loopback
    needs)? A private port on the mDNS group, 1 s at most."""
    group = "224.0.0.251"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", 0))
        port = rx.getsockname()[1]
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
        rx.settimeout(1.0)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, struct.pack("b", 1))
        tx.sendto(b"probe", (group, port))
        return rx.recv(16) == b"probe"
    except OSError:
        return False
    finally:
        rx.close()
        tx.close()


def browse(service_type, port, want, seconds=20.0):
    """The ServiceInfo of ``service_type`` on loopback whose port is ``port`` and for which
    ``want(info)`` holds, or the last one seen with that port (None if none)."""
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf

    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    names = set()
    browser = ServiceBrowser(zc, service_type,
                             handlers=[lambda zeroconf, service_type, name, state_change:
                                       names.add(name)])
    seen = None
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name in list(names):
                info = zc.get_service_info(service_type, name, timeout=500)
                if info is not None and info.port == port:
                    seen = info
                    if want(info):
                        return info
            time.sleep(0.2)
        return seen
    finally:
        browser.cancel()
        zc.close()


@pytest.fixture(scope="module")
def multicast():
    pytest.importorskip("zeroconf")
    if not loopback_multicast_works():
        pytest.skip("multicast on loopback does not work in this sandbox: mDNS cannot be seen")


def test_zeroconf_advertises_osc_and_oscquery_with_the_preset(inst, multicast):
    info = browse("_osc._udp.local.", inst.port, lambda i: True)
    assert info is not None, "no _osc._udp service with our port on loopback"
    assert info.name.startswith("instrument on ")
    assert info.properties[b"preset"] == b"Poly 16"
    assert info.properties[b"oscquery_port"] == str(inst.query_port).encode()
    # 127.0.0.1 is ours; the host name's address records are shared by every instance on
    # this machine, so another one bound elsewhere may add its address to the answer.
    assert "127.0.0.1" in info.parsed_addresses()
    query = browse("_oscjson._tcp.local.", inst.query_port, lambda i: True)
    assert query is not None, "no _oscjson._tcp service with our port on loopback"
    assert query.properties[b"osc_port"] == str(inst.port).encode()


def test_zeroconf_txt_follows_a_preset_change(inst, multicast):
    # Last: it changes the preset of the shared instance. A load waits until the audio process
    # has taken the first plan, which takes a minute while numba compiles on a cold cache.
    assert wait_status(inst.port, lambda status: status.get("callbacks", 0) > 0, 90)
    inst.send("/preset/load", "pad")
    info = browse("_osc._udp.local.", inst.port, lambda i: i.properties[b"preset"] == b"Warm Pad")
    assert info is not None and info.properties[b"preset"] == b"Warm Pad"
    assert get_json(inst.query_port, "/preset/name?VALUE") == {"VALUE": ["Warm Pad"]}


# ---- in-process: refusals, layout, no zeroconf ---------------------------------------------------
@pytest.fixture(scope="module")
def plan():
    from instrument.presets import compile_file

    return compile_file(REPO / "presets/poly16.toml", 48000, 64)


def _state(plan):
    values = np.array([slot.initial_norm for slot in plan.params])
    return types.SimpleNamespace(plan=plan, preset_path=Path("presets/poly16.toml"),
                                 plan_and_values=lambda: (plan, values.copy()),
                                 macro_positions=lambda: [m.initial_norm for m in plan.macros])


@pytest.fixture
def served(plan):
    from instrument.control.oscquery import OscQueryServer

    allowed = {"yes": True}
    server = OscQueryServer(_state(plan), "127.0.0.1", 0, 9000, lambda ip: allowed["yes"])
    server.start()
    yield server, allowed
    server.stop()


def test_senders_outside_the_allowlist_get_403(served):
    server, allowed = served
    allowed["yes"] = False
    assert get(server.port, "/")[0] == 403
    assert get(server.port, "/?HOST_INFO")[0] == 403
    assert server.denied == 2
    allowed["yes"] = True
    assert get(server.port, "/?HOST_INFO")[0] == 200


def test_oversized_requests_are_refused(served):
    server, _ = served
    assert request(server.port, "GET", "/", {"X-Padding": "a" * 9000})[0] == 431
    assert request(server.port, "GET", "/" + "a" * 9000)[0] in (400, 414, 431)
    assert get(server.port, "/?HOST_INFO")[0] == 200


def test_a_silent_connection_does_not_block_others(served):
    server, _ = served
    idle = socket.create_connection(("127.0.0.1", server.port))
    try:
        assert get(server.port, "/?HOST_INFO", timeout=2.0)[0] == 200
    finally:
        idle.close()


def test_layout_is_404_without_the_module_and_served_with_it(served, monkeypatch):
    server, _ = served
    name = "instrument.control.touchosc_layout"
    monkeypatch.setitem(sys.modules, name, None)  # as if not there
    assert get(server.port, "/layout.tosc")[0] == 404
    fake = types.ModuleType(name)
    fake.layout_bytes = lambda plan: b"PK-" + plan.name.encode()
    monkeypatch.setitem(sys.modules, name, fake)
    status, headers, body = get(server.port, "/layout.tosc")
    assert status == 200 and body == b"PK-Poly 16"
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="Poly 16.tosc"'


def test_descriptions_name_the_display_range():
    from instrument.control.oscquery import describe
    from instrument.params import ParamSpec

    shape = ParamSpec.choice("shape", "Shape", ("Saw", "Square"))
    assert describe(shape) == "Shape: Saw | Square"
    gain = ParamSpec("gain_db", "Gain", "dB", -60, 12, 0, doc="Output level.")
    assert describe(gain) == "Gain, -60.0 dB .. 12.0 dB. Output level."


def test_advertised_addresses():
    from instrument.control.zeroconf_service import advertised_addresses

    assert advertised_addresses("127.0.0.1") == ["127.0.0.1"]
    everywhere = advertised_addresses("0.0.0.0")
    assert everywhere and all(a.count(".") == 3 for a in everywhere)
    assert everywhere == ["127.0.0.1"] or not any(a.startswith("127.") for a in everywhere)


def test_an_unusable_network_is_one_warning_line(caplog):
    pytest.importorskip("zeroconf")
    from instrument.control.zeroconf_service import ZeroconfAdvertiser

    state = types.SimpleNamespace(plan=types.SimpleNamespace(name="Poly 16"))
    advertiser = ZeroconfAdvertiser(state, "203.0.113.7", 9000)  # not an address of ours
    advertiser.start()
    advertiser.thread.join(10.0)
    advertiser.stop()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "Zeroconf: not advertised" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_no_zeroconf_and_oscquery_port_0_turn_them_off():
    instance = Instance("--no-zeroconf")  # --oscquery-port given: served
    try:
        assert get(instance.query_port, "/?HOST_INFO")[0] == 200
    finally:
        out = instance.stop()
    assert "Zeroconf" not in out
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", "presets/poly16.toml", "--null",
         "--no-midi", "--osc-port", str(port), "--osc-bind", "127.0.0.1", "--oscquery-port",
         "0", "--no-zeroconf"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        assert wait_status(port, lambda status: status.get("running"), 30), "did not start"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "OSC: listening" in out and "OSCQuery" not in out and "Traceback" not in out
