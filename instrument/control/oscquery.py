"""OSCQuery: the OSC namespace as JSON over HTTP, for ossia score, Chataigne, VDMX and friends.

Follows the OSCQuery proposal (Vidvox/OSCQueryProposal, README, third revision): ``GET /``
answers the whole tree, ``GET /param/filt/cutoff_hz`` one node (and what is under it),
``GET /any/path?HOST_INFO`` the host's description, ``GET /node?ATTRIBUTE`` only that
attribute (``{"VALUE": [0.42]}``; ``{}`` when the node has no such attribute, 204 for the VALUE
of a node that cannot be read, 400 for an attribute this server does not know). The fragment
is ignored. Every node has FULL_PATH; containers CONTENTS; methods TYPE, ACCESS (1 read,
2 write, 3 both), RANGE (``[{"MIN": 0, "MAX": 1}]``, or ``VALS``), VALUE when readable,
CLIPMODE, DESCRIPTION.

The namespace (the same addresses ``osc.py`` routes, and what ``osc_feedback.py`` sends):

====================  ====  ======  ==================================================
address               TYPE  ACCESS  value
====================  ====  ======  ==================================================
/param/<node>/<par>   f     3       normalized 0..1 (clipped); DESCRIPTION "Cutoff, 20.0
                                    Hz .. 20.0 kHz, log", DISPLAY {UNIT, MIN, MAX, ...}
/macro/<n>, /<name>   f     3       0..1 (clipped)
/note/on              if    2       note 0..127, velocity 0..1
/note/off             i     2       note 0..127
/preset/load          s     3       the preset file's name; RANGE VALS: the folder's
/preset/name          s     1       the preset's display name
/panic                -     0       no arguments
/status/voices        i     1       active voices
/status/load          f     1       callback p99.9, % of the deadline
/status/xruns         i     1       xruns since start
====================  ====  ======  ==================================================

UNIT is left out on purpose: the proposal's UNIT is the unit of the OSC value, and ours is
normalized; clients that convert units (ossia) would read 0.5 as 0.5 Hz. The display unit and
range are in DESCRIPTION and in ``DISPLAY`` (an attribute of our own, as the proposal allows):
``{"UNIT": "Hz", "MIN": 20, "MAX": 20000, "DEFAULT": 1000, "CURVE": "log", "KIND":
"continuous", "TEXT": "1.20 kHz"}`` (``CHOICES`` for a choice). No websocket (LISTEN,
PATH_CHANGED): values reach clients through OSC feedback; a client re-reads the tree after a
preset change.

``GET /layout.tosc`` serves a TouchOSC layout of the playing preset when
``instrument.control.touchosc_layout.layout_bytes(plan)`` exists (404 otherwise).

The server answers GET only (405 for the usual other methods, 501 for the rest), reads at most
``MAX_REQUEST_BYTES`` of a request (431 past that), never a body, never a file; unknown paths
are 404, senders outside ``--osc-allow`` 403; at most ``MAX_CONNECTIONS`` at once (more are
closed unanswered), ``REQUEST_TIMEOUT_S`` per connection, one request per connection. Nothing
a peer sends is logged above debug level, and no request can raise out of the server.

Why the standard library's ``http.server`` (ThreadingHTTPServer in a daemon thread): the
protocol needs a handful of GET routes and JSON, the instrument already lives on a small
machine with few dependencies, and the maintained small alternatives (aiohttp, starlette with
uvicorn) bring an event loop and several packages for nothing we need here.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from instrument.control.zeroconf_service import hostname, instance_name

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192  # request line and headers together
MAX_CONNECTIONS = 8
REQUEST_TIMEOUT_S = 5.0
POLL_S = 0.25  # how soon stop() is noticed

# Attributes a client may ask for with ?NAME (the proposal's, plus DISPLAY); others are a 400.
ATTRIBUTES = frozenset({"FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE",
                        "DESCRIPTION", "CLIPMODE", "TAGS", "UNIT", "EXTENDED_TYPE", "CRITICAL",
                        "OVERLOADS", "DISPLAY"})
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True,
              "CLIPMODE": True, "UNIT": False, "TAGS": False, "EXTENDED_TYPE": False,
              "CRITICAL": False, "OVERLOADS": False, "HTML": False, "LISTEN": False,
              "PATH_CHANGED": False, "PATH_RENAMED": False, "PATH_ADDED": False,
              "PATH_REMOVED": False, "DISPLAY": True}
READ, WRITE = 1, 2
NORMALIZED = [{"MIN": 0.0, "MAX": 1.0}]
LAYOUT_PATH = "/layout.tosc"


# ---- the namespace ---------------------------------------------------------------------------
def namespace(state) -> dict:
    """The whole tree as the OSCQuery JSON object of ``/``, with current values.

    ``state`` provides ``plan_and_values()``, ``macro_positions()``, and optionally
    ``preset_list()`` (paths), ``preset_path`` and ``status_dict()``."""
    plan, values = state.plan_and_values()
    root = _container("/", f"instrument: {plan.name}")
    _add(root, "/param", _container("/param", "parameters, normalized 0..1"))
    for slot in plan.params:
        node, _, name = slot.path.partition(".")
        value = float(values[slot.index]) if slot.index < len(values) else slot.initial_norm
        _add(root, f"/param/{node}", _container(f"/param/{node}", node))
        _add(root, f"/param/{node}/{name}", _param(f"/param/{node}/{name}", slot, value))
    _add(root, "/macro", _container("/macro", "macros, 0..1, by number or by name"))
    positions = list(state.macro_positions())
    for macro in plan.macros:
        value = positions[macro.index] if macro.index < len(positions) else macro.initial_norm
        moves = ", ".join(plan.params[i].path for i, _, _ in macro.targets
                          if 0 <= i < len(plan.params))
        for address, also in ((f"/macro/{macro.index + 1}", f"/macro/{macro.name}"),
                              (f"/macro/{macro.name}", f"/macro/{macro.index + 1}")):
            text = f"macro {macro.label} (also {also})" + (f": moves {moves}" if moves else "")
            _add(root, address, _method(address, "f", READ | WRITE, text, [_finite(value)],
                                        NORMALIZED, ["both"]))
    _add(root, "/note", _container("/note", "notes"))
    _add(root, "/note/on", _method("/note/on", "if", WRITE,
                                   "note on: note 0..127, velocity 0..1 (an int above 1: MIDI "
                                   "velocity)", None,
                                   [{"MIN": 0, "MAX": 127}, {"MIN": 0.0, "MAX": 1.0}],
                                   ["none", "both"]))
    _add(root, "/note/off", _method("/note/off", "i", WRITE, "note off: note 0..127", None,
                                    [{"MIN": 0, "MAX": 127}], ["none"]))
    _add(root, "/preset", _container("/preset", "presets"))
    path = getattr(state, "preset_path", None)
    names = _preset_names(state)
    _add(root, "/preset/load", _method(
        "/preset/load", "s", READ | WRITE,
        "load the preset of this name from the preset folder (never a path)",
        [path.stem] if path is not None else None, [{"VALS": names}] if names else None, None))
    _add(root, "/preset/name", _method("/preset/name", "s", READ, "the playing preset's name",
                                       [plan.name], None, None))
    _add(root, "/panic", {"FULL_PATH": "/panic", "ACCESS": 0,
                          "DESCRIPTION": "all sound off (a message without arguments)"})
    status = _status(state)
    if status is not None:
        _add(root, "/status", _container("/status", "status, read only"))
        for name, kind, key, text in (
                ("voices", "i", "active_voices", "active voices"),
                ("load", "f", "callback_p999_pct", "audio callback p99.9, % of the deadline"),
                ("xruns", "i", "xruns", "xruns since start")):
            value = status.get(key, 0) or 0
            value = int(value) if kind == "i" else _finite(float(value))
            _add(root, f"/status/{name}", _method(f"/status/{name}", kind, READ, text, [value],
                                                  None, None))
    return root


def find(root: dict, path: str) -> dict | None:
    """The node at ``path`` ("/" is the root), or None."""
    node = root
    for part in path.strip("/").split("/") if path.strip("/") else ():
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def host_info(name: str, osc_port: int, osc_ip: str | None = None) -> dict:
    info = {"NAME": name, "OSC_PORT": osc_port, "OSC_TRANSPORT": "UDP",
            "EXTENSIONS": dict(EXTENSIONS)}
    if osc_ip:
        info["OSC_IP"] = osc_ip
    return info


def describe(spec) -> str:
    """"Cutoff, 20.0 Hz .. 20.0 kHz, log"; "Shape: saw | square"; then the spec's doc."""
    kind = spec.kind.name.lower()
    if kind in ("choice", "bool"):
        options = spec.choices if kind == "choice" else ("off", "on")
        text = f"{spec.label}: {' | '.join(options)}"
    else:
        text = f"{spec.label}, {_format(spec, spec.min)} .. {_format(spec, spec.max)}"
        curve = spec.curve.name.lower()
        if curve != "linear":
            text += f", {curve}"
    return f"{text}. {spec.doc}" if spec.doc else text


def _container(path: str, description: str) -> dict:
    return {"FULL_PATH": path, "ACCESS": 0, "DESCRIPTION": description, "CONTENTS": {}}


def _method(path, kind, access, description, value, rng, clipmode) -> dict:
    node = {"FULL_PATH": path, "TYPE": kind, "ACCESS": access, "DESCRIPTION": description}
    if value is not None and access & READ:
        node["VALUE"] = value
    if rng is not None:
        node["RANGE"] = rng
    if clipmode is not None:
        node["CLIPMODE"] = clipmode
    return node


def _param(path: str, slot, norm: float) -> dict:
    spec = slot.spec
    node = _method(path, "f", READ | WRITE, describe(spec), [_finite(norm)], NORMALIZED,
                   ["both"])
    display = {"UNIT": spec.unit, "MIN": spec.min, "MAX": spec.max, "DEFAULT": spec.default,
               "CURVE": spec.curve.name.lower(), "KIND": spec.kind.name.lower(),
               "TEXT": _text(spec, norm)}
    if spec.choices:
        display["CHOICES"] = list(spec.choices)
    node["DISPLAY"] = display
    return node


def _add(root: dict, path: str, node: dict) -> None:
    """Put ``node`` at ``path`` (its parent exists); an existing container is kept."""
    parent_path, _, name = path.rpartition("/")
    parent = find(root, parent_path or "/")
    contents = parent.setdefault("CONTENTS", {})
    if name not in contents:
        contents[name] = node


def _format(spec, value: float) -> str:
    try:
        return spec.format(value)
    except Exception:  # noqa: BLE001 - a description must never fail the request
        return f"{value:g}"


def _text(spec, norm: float) -> str:
    try:
        return spec.format(spec.from_norm(norm))
    except Exception:  # noqa: BLE001
        return ""


def _finite(value: float):
    value = float(value)
    return value if math.isfinite(value) else None


def _preset_names(state) -> list[str]:
    lister = getattr(state, "preset_list", None)
    try:
        return [p.stem for p in lister()] if lister is not None else []
    except OSError:
        return []


def _status(state) -> dict | None:
    status_dict = getattr(state, "status_dict", None)
    if status_dict is None:
        return None
    try:
        return status_dict()
    except Exception:  # noqa: BLE001 - status is a nicety
        return None


# ---- HTTP ------------------------------------------------------------------------------------
class _LimitedReader:
    """The request stream, cut off after ``limit`` bytes (``exceeded`` is then True)."""

    def __init__(self, raw, limit: int):
        self.raw = raw
        self.left = limit
        self.exceeded = False

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.exceeded = True
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        line = self.raw.readline(size)
        self.left -= len(line)
        if self.left <= 0 and not line.endswith(b"\n"):
            self.exceeded = True
        return line

    def read(self, size: int = -1) -> bytes:  # never used for a body; bounded all the same
        if self.left <= 0:
            self.exceeded = True
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.raw.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.raw.close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "instrument-oscquery"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # errors to junk get a status line, never HTTP/0.9
    timeout = REQUEST_TIMEOUT_S
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def setup(self) -> None:
        super().setup()
        self.rfile = _LimitedReader(self.rfile, MAX_REQUEST_BYTES)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.rfile.exceeded:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return False
        if not self.server.app.allows(self.client_address[0]):
            self.server.app.denied += 1
            self.send_error(HTTPStatus.FORBIDDEN)
            return False
        self.close_connection = True  # one request per connection
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        try:
            status, body, headers = self.server.app.answer(self.path)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the server
            log.debug("OSCQuery %r failed: %s", self.path[:200], exc)
            status, body, headers = HTTPStatus.INTERNAL_SERVER_ERROR, b"", {}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if body and status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)

    def _refuse(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("OSCQuery %s: " + format, self.client_address[0], *args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def __init__(self, address, app):
        self.app = app
        self.active = 0
        self.active_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks socket.getfqdn(), a reverse DNS lookup that can stall
        # start-up for seconds without a network; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address) -> None:
        with self.active_lock:
            if self.active >= MAX_CONNECTIONS:
                self.app.refused += 1
                self.shutdown_request(request)
                return
            self.active += 1
        try:
            super().process_request(request, client_address)
        except Exception:
            with self.active_lock:
                self.active -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.active_lock:
                self.active -= 1

    def handle_error(self, request, client_address) -> None:
        log.debug("OSCQuery: connection from %s failed", client_address[0], exc_info=True)


class OscQueryServer:
    """OSCQuery over HTTP on ``bind:port`` for the OSC server on ``osc_port``. ``state`` is
    what ``namespace`` reads; ``allows(ip_text)`` decides who is answered (the OSC
    allowlist)."""

    def __init__(self, state, bind: str, port: int, osc_port: int, allows,
                 name: str | None = None):
        self.state = state
        self.bind = bind
        self.osc_port = osc_port
        self.allows = _safe(allows)
        self.name = name or instance_name()
        self.denied = 0  # requests from senders outside the allowlist
        self.refused = 0  # connections over MAX_CONNECTIONS
        self.httpd = _HttpServer((bind, port), self)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(POLL_S,),
                                       name="oscquery", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def url(self) -> str:
        shown = self.bind if self.bind not in ("0.0.0.0", "") else f"{hostname()}.local"
        return f"http://{shown}:{self.port}/"

    def answer(self, target: str) -> tuple[int, bytes, dict]:
        """(status, body, headers) for the GET request target ``target``."""
        raw_path, _, query = target.partition("#")[0].partition("?")
        path = unquote(raw_path) or "/"
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        attribute = query.split("&")[0].split("=")[0].upper()
        if attribute == "HOST_INFO":
            osc_ip = self.bind if self.bind not in ("0.0.0.0", "") else None
            return _json(host_info(self.name, self.osc_port, osc_ip))
        if getattr(self.state, "plan", None) is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, b"", {}
        if path == LAYOUT_PATH and not attribute:
            return self._layout()
        node = find(namespace(self.state), path)
        if node is None:
            return HTTPStatus.NOT_FOUND, b"no such OSC address\n", {
                "Content-Type": "text/plain; charset=utf-8"}
        if not attribute:
            return _json(node)
        if attribute not in ATTRIBUTES:
            return HTTPStatus.BAD_REQUEST, b"unknown attribute\n", {
                "Content-Type": "text/plain; charset=utf-8"}
        if attribute == "VALUE" and not node.get("ACCESS", 0) & READ:
            return HTTPStatus.NO_CONTENT, b"", {}
        return _json({attribute: node[attribute]} if attribute in node else {})

    def _layout(self) -> tuple[int, bytes, dict]:
        import importlib

        try:
            module = importlib.import_module("instrument.control.touchosc_layout")
        except ModuleNotFoundError as exc:
            if exc.name in ("instrument.control.touchosc_layout",):
                return HTTPStatus.NOT_FOUND, b"no TouchOSC layout here\n", {
                    "Content-Type": "text/plain; charset=utf-8"}
            raise
        layout_bytes = getattr(module, "layout_bytes", None)
        if layout_bytes is None:
            return HTTPStatus.NOT_FOUND, b"no TouchOSC layout here\n", {
                "Content-Type": "text/plain; charset=utf-8"}
        plan = self.state.plan_and_values()[0]
        data = bytes(layout_bytes(plan))
        filename = re.sub(r"[^A-Za-z0-9 ._-]", "_", plan.name).strip(" .") or "instrument"
        return HTTPStatus.OK, data, {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{filename}.tosc"'}


def start_oscquery(host) -> OscQueryServer | None:
    """Serve OSCQuery for ``host`` (a runtime Host whose OSC server is running) on
    ``--oscquery-port`` (default: the OSC port + 1; 0: not at all). A port that cannot be had
    is one warning line: the instrument plays on without it."""
    o = host.opt
    if host.osc is None:
        return None
    port = o.oscquery_port if getattr(o, "oscquery_port", None) is not None else host.osc.port + 1
    if port == 0:
        return None
    try:
        server = OscQueryServer(host, o.osc_bind, port, host.osc.port, host.osc.sender_allowed)
    except (OSError, OverflowError) as exc:
        log.warning("OSCQuery: not served on port %d (%s); choose another --oscquery-port, or 0 "
                    "for none", port, getattr(exc, "strerror", None) or exc)
        return None
    server.start()
    log.info("OSCQuery: %s", server.url())
    return server


def _json(obj) -> tuple[int, bytes, dict]:
    return HTTPStatus.OK, json.dumps(obj).encode("utf-8"), {
        "Content-Type": "application/json"}


def _safe(allows):
    def check(ip: str) -> bool:
        try:
            return bool(allows(ip))
        except (ValueError, TypeError):  # not an IPv4 address: not ours to answer
            return False
    return check
