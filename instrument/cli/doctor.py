"""``instrument doctor``: is this machine ready to play live? One line per check.

Each line starts with ``ok:``, ``warn:`` or ``fail:``, says what was found and, unless it is
ok, what to change. A ``fail`` is something that stops ``instrument run`` from working as
configured (a port taken, a configured device missing, no PortAudio, a current under-voltage);
a ``warn`` is something that costs timing or convenience (no real-time priority, a CPU governor
that changes clock speed, no MIDI controller yet). Exit status 1 when any check failed, else 0.

The checks run as the user calling ``doctor``: the systemd unit sets its own limits
(``LimitRTPRIO``, ``LimitMEMLOCK``) and cache folder, which the lines point out.
"""

from __future__ import annotations

import contextlib
import glob
import os
import resource
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from instrument.errors import InstrumentError

SYSTEM_CONFIG = Path("/etc/instrument/instrument.toml")
SERVICE_CACHE = "/var/cache/instrument"
OK, WARN, FAIL = "ok", "warn", "fail"

# vcgencmd get_throttled bits: (bit, what, now?)
THROTTLE_BITS = (
    (0, "under-voltage", True), (1, "ARM frequency capped", True),
    (2, "throttled", True), (3, "soft temperature limit", True),
    (16, "under-voltage", False), (17, "ARM frequency capped", False),
    (18, "throttling", False), (19, "soft temperature limit", False),
)


class Report:
    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.fails = 0
        self.lines: list[str] = []

    def __call__(self, level: str, what: str, fix: str = "") -> None:
        line = f"{level}: {what}" + (f" ({fix})" if fix and level != OK else "")
        self.lines.append(line)
        if level == FAIL:
            self.fails += 1
        print(line, file=self.out, flush=True)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (ALSA, JACK) that print to file descriptor 2 while probing."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# -- settings ---------------------------------------------------------------------------------

def settings(config: str | None, osc_port: int | None, parser) -> tuple[dict, str]:
    """The ``run`` settings doctor checks (defaults, then the file, then ``--osc-port``), and
    where they came from."""
    from instrument.cli.run_config import read_run_config, subparser

    run_parser = subparser(parser, "run")
    values = {a.dest: a.default for a in run_parser._actions if a.dest != "help"}
    source = "the defaults"
    if config is None and SYSTEM_CONFIG.is_file():
        config = str(SYSTEM_CONFIG)
    if config is not None:
        values.update(read_run_config(config, run_parser))
        source = config
    if osc_port is not None:
        values["osc_port"] = osc_port
    return values, source


# -- the checks -------------------------------------------------------------------------------

def _limit_text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def check_rtprio(report: Report, opts: dict) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    wanted = opts.get("rt_priority") or 0
    fix = ("for a login shell: install deploy/limits.conf as "
           "/etc/security/limits.d/95-instrument-audio.conf, join the audio group, log in "
           "again; the systemd unit sets LimitRTPRIO=95 itself")
    if os.geteuid() == 0:
        report(OK, "real-time priority: allowed (root)")
    elif soft == resource.RLIM_INFINITY or (soft > 0 and soft >= wanted):
        report(OK, f"real-time priority: allowed up to {_limit_text(soft)} (RLIMIT_RTPRIO)"
                   + (f", rt_priority {wanted} fits" if wanted else ""))
    elif soft > 0:
        report(WARN, f"real-time priority: rt_priority {wanted} is above the limit {soft} "
                     "(RLIMIT_RTPRIO)", f"use rt_priority {soft} or less, or raise the limit: "
                     + fix)
    else:
        report(WARN, "real-time priority: not allowed (RLIMIT_RTPRIO 0); the audio thread "
                     "cannot use SCHED_FIFO", fix)


def check_memlock(report: Report, opts: dict) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() == 0 or soft == resource.RLIM_INFINITY:
        report(OK, "locked memory: unlimited (" + ("root" if os.geteuid() == 0 else
                                                     "RLIMIT_MEMLOCK") + ")")
    else:
        report(WARN, f"locked memory: limited to {soft // 1024} KiB (RLIMIT_MEMLOCK); the "
                     "audio process cannot mlockall and may page-fault while playing",
               "for a login shell: 'memlock unlimited' from deploy/limits.conf in "
               "/etc/security/limits.d, then log in again; the systemd unit sets "
               "LimitMEMLOCK=infinity itself")


def check_governor(report: Report, opts: dict, sys_root: str = "/sys") -> None:
    files = sorted(glob.glob(f"{sys_root}/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
    if not files:
        report(OK, "CPU governor: no cpufreq here (nothing to set)")
        return
    governors: dict[str, list[str]] = {}
    for path in files:
        cpu = Path(path).parent.parent.name
        try:
            governors.setdefault(Path(path).read_text().strip(), []).append(cpu)
        except OSError:
            continue
    others = {g: cpus for g, cpus in governors.items() if g != "performance"}
    if not others:
        report(OK, f"CPU governor: performance on {len(files)} CPUs")
    else:
        found = "; ".join(f"{g} on {', '.join(cpus)}" for g, cpus in sorted(others.items()))
        report(WARN, f"CPU governor: {found}; clock changes under load cost audio deadlines",
               "sudo deploy/install.sh --tune sets 'performance' at every boot")
    cpu = opts.get("cpu")
    if cpu is not None:
        isolated = ""
        with contextlib.suppress(OSError):
            isolated = Path(f"{sys_root}/devices/system/cpu/isolated").read_text().strip()
        if cpu not in os.sched_getaffinity(0):
            report(WARN, f"audio CPU: cpu = {cpu} is not a CPU this process may use "
                         f"({sorted(os.sched_getaffinity(0))})", "set cpu to one of those")
        elif isolated and str(cpu) in _cpu_list(isolated):
            report(OK, f"audio CPU: {cpu}, isolated from the scheduler (isolcpus)")
        else:
            report(OK, f"audio CPU: {cpu} (not isolated; deploy/install.sh --tune --isolcpus "
                       f"{cpu} reserves it)")


def _cpu_list(text: str) -> set[str]:
    cpus: set[str] = set()
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(str(i) for i in range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(part)
    return cpus


def check_audio(report: Report, opts: dict) -> None:
    if opts.get("null"):
        report(OK, "audio: the null output (null = true), no device used")
        return
    try:
        import sounddevice as sd
    except OSError as exc:
        report(FAIL, f"audio: PortAudio is not available ({exc})",
               "install libportaudio2 (./setup.sh does)")
        return
    with _quiet_stderr():
        try:
            devices = sd.query_devices()
        except Exception as exc:  # noqa: BLE001 - PortAudio can fail in many ways
            devices = []
            report(WARN, f"audio: cannot list devices ({exc})", "see 'instrument devices'")
    outputs = [(i, d["name"]) for i, d in enumerate(devices) if d["max_output_channels"] > 0]
    device = opts.get("device")
    if device is not None:
        from instrument.runtime.audio_main import _device

        try:
            with _quiet_stderr():
                info = sd.query_devices(_device(device), "output")
            report(OK, f"audio: device '{device}' is {info['name']} "
                       f"({int(info['max_output_channels'])} out)")
        except Exception as exc:  # noqa: BLE001
            names = ", ".join(f"{i} {n}" for i, n in outputs) or "none"
            report(FAIL, f"audio: the configured device '{device}' is not usable "
                         f"({str(exc).splitlines()[0] if str(exc) else exc}); outputs: {names}",
                   "set device to one of those numbers or part of its name, or plug it in")
        return
    if not outputs:
        report(WARN, "audio: no output device; run would play on the clock-driven null output",
               "connect an audio interface (USB, HAT) or enable the Pi's jack with "
               "dtparam=audio=on; see 'instrument devices'")
        return
    try:
        with _quiet_stderr():
            info = sd.query_devices(kind="output")
        report(OK, f"audio: {len(outputs)} output device(s); run would use the default: "
                   f"{info['name']}")
    except Exception:  # noqa: BLE001 - no default output
        report(WARN, f"audio: {len(outputs)} output device(s) but no default; run would fall "
                     "back to the null output",
               f"set device (like device = \"{outputs[0][1]}\") in the configuration")


def check_midi(report: Report, opts: dict) -> None:
    if opts.get("no_midi"):
        report(OK, "MIDI: off (no_midi = true)")
        return
    try:
        import rtmidi
    except ImportError as exc:
        report(FAIL, f"MIDI: python-rtmidi is not installed ({exc})", "run ./setup.sh again")
        return
    api = opts.get("midi_api") or "alsa"
    compiled = set(rtmidi.get_compiled_api())
    for name, constant in (("alsa", "API_LINUX_ALSA"), ("jack", "API_UNIX_JACK")):
        code = getattr(rtmidi, constant, None)
        if code is None or code not in compiled:
            if name == api:
                report(FAIL, f"MIDI ({name}): python-rtmidi was built without {name.upper()}",
                       "reinstall python-rtmidi with libasound2-dev and libjack-jackd2-dev "
                       "present (./setup.sh)")
            continue
        try:
            with _quiet_stderr():
                probe = rtmidi.MidiIn(rtapi=code, name="instrument-doctor")
                ports = probe.get_ports()
                probe.delete()
        except Exception as exc:  # noqa: BLE001 - no sequencer, no JACK server
            if name == api:
                report(WARN, f"MIDI ({name}): unavailable ({exc}); run plays without MIDI",
                       "load the ALSA sequencer (modprobe snd-seq)" if name == "alsa"
                       else "start the JACK server first, or use midi_api = \"alsa\"")
            else:
                report(OK, f"MIDI ({name}): no server (only needed with midi_api = \"{name}\")")
            continue
        ports = [p for p in ports if not p.startswith(("instrument:", "instrument-doctor"))
                 and "Midi Through" not in p]
        pattern = opts.get("midi")
        if pattern and name == api:
            import re

            ports = [p for p in ports if re.search(pattern, p, re.IGNORECASE)]
        used = " (used)" if name == api else f" (not used: midi_api = \"{api}\")"
        if ports:
            report(OK, f"MIDI ({name}): {len(ports)} input(s){used}: {', '.join(ports)}")
        elif name == api:
            report(WARN, f"MIDI ({name}): no controller "
                         + (f"matching '{pattern}' " if pattern else "") + "connected",
                   "plug one in (it is opened while running too), or send notes to the "
                   "virtual input instrument:in")
        else:
            report(OK, f"MIDI ({name}): no inputs{used}")


def _running_instance_on(port: int) -> bool:
    """Whether the instrument itself holds the port (fresh status file, or the service)."""
    import json
    import time

    from instrument.runtime.host import runtime_dir

    with contextlib.suppress(OSError, ValueError):
        data = json.loads((runtime_dir() / f"status-{port}.json").read_text())
        if data.get("running") and time.time() - data.get("time", 0) < 5.0:
            return True
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["systemctl", "is-active", "--quiet", "instrument"],
                                  timeout=5, check=False)
            return done.returncode == 0
    return False


def _port_free(kind: int, bind: str, port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server
        try:
            sock.bind((bind, port))
        except OSError as exc:
            return exc
    return None


def check_port(report: Report, opts: dict, label: str, key: str, port: int, kind: int) -> None:
    bind = opts.get("osc_bind") or "0.0.0.0"
    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
    if not 0 < port < 65536:
        report(FAIL, f"{label}: {port} is not a {proto} port", f"set {key} from 1 to 65535")
        return
    try:
        error = _port_free(kind, bind, port)
    except OSError as exc:  # socket() itself refused, bad address family
        error = exc
    if error is None:
        report(OK, f"{label}: {proto} {bind}:{port} is free")
    elif error.errno == 98 and _running_instance_on(opts.get("osc_port") or 9000):
        report(OK, f"{label}: {proto} port {port} is held by the running instrument")
    elif error.errno == 98:
        report(FAIL, f"{label}: {proto} port {port} on {bind} is in use by another program",
               f"stop it (see 'ss -lunp' / 'ss -ltnp'), or choose another port with {key} in "
               f"the configuration or --{key.replace('_', '-')}")
    elif error.errno == 99:
        report(FAIL, f"{label}: {bind} is not an address of this machine",
               "set osc_bind to one of its addresses, or 0.0.0.0 for all")
    else:
        report(FAIL, f"{label}: cannot bind {proto} {bind}:{port} ({error.strerror or error})",
               f"choose another port with {key}")


def check_osc_ports(report: Report, opts: dict) -> None:
    port = opts.get("osc_port") or 9000
    check_port(report, opts, "OSC port", "osc_port", port, socket.SOCK_DGRAM)
    query = opts.get("oscquery_port")
    if query == 0:
        report(OK, "OSCQuery port: off (oscquery_port = 0)")
        return
    check_port(report, opts, "OSCQuery port", "oscquery_port",
               port + 1 if query is None else query, socket.SOCK_STREAM)


def check_cache(report: Report, opts: dict) -> None:
    from instrument.engine.fused import cache_dir, is_compiled
    from instrument.modules.registry import default_registry

    try:
        renderer = default_registry().renderer()
    except OSError as exc:
        report(FAIL, f"DSP cache: cannot write to {cache_dir()} ({exc.strerror or exc})",
               "set INSTRUMENT_CACHE_DIR to a writable folder")
        return
    service = ("" if str(cache_dir()).startswith(SERVICE_CACHE) else
               f"; the service uses {SERVICE_CACHE}: check it with "
               f"INSTRUMENT_CACHE_DIR={SERVICE_CACHE} NUMBA_CACHE_DIR={SERVICE_CACHE}/numba "
               "instrument doctor")
    if is_compiled(renderer):
        report(OK, f"DSP cache: compiled for this machine in {cache_dir()}{service}")
    else:
        report(WARN, f"DSP cache: not compiled yet in {cache_dir()}; the first start compiles "
                     f"for a minute or more{service}",
               "run 'instrument cache --warm presets/*.toml' once with the same cache folder "
               "(setup.sh and deploy/install.sh do)")


def state_dir() -> Path:
    """Where ``run`` saves its state by default (as instrument.runtime.state_store)."""
    base = os.environ.get("STATE_DIRECTORY")
    if base:
        return Path(base.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "instrument"


def check_state(report: Report, opts: dict) -> None:
    configured = opts.get("state_dir")
    if configured == "none":
        report(OK, "state directory: none (state_dir = \"none\": nothing saved)")
        return
    folder = Path(configured) if configured else state_dir()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        report(OK, f"state directory: {folder} is writable"
                   + ("" if existing == folder else " (created on first use)"))
    else:
        report(FAIL, f"state directory: {folder} is not writable (by uid {os.geteuid()})",
               f"fix the ownership of {existing}, or set STATE_DIRECTORY to a writable folder "
               "(the systemd unit's StateDirectory=instrument gives /var/lib/instrument)")


def check_throttling(report: Report, opts: dict) -> None:
    tool = shutil.which("vcgencmd")
    if tool is None:
        report(OK, "power and temperature: no vcgencmd (not a Raspberry Pi), not checked")
        return
    try:
        text = subprocess.run([tool, "get_throttled"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        value = int(text.split("=", 1)[1], 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError) as exc:
        report(WARN, f"power and temperature: vcgencmd get_throttled failed ({exc})",
               "add this user to the video group to read it")
        return
    now = [what for bit, what, current in THROTTLE_BITS if current and value >> bit & 1]
    past = [what for bit, what, current in THROTTLE_BITS if not current and value >> bit & 1]
    fix = ("use the official power supply (5.1 V, 3 A on a Pi 4, 5 A on a Pi 5) and a short "
           "cable; add a heatsink or fan when it is the temperature")
    if now:
        report(FAIL, f"power and temperature: {', '.join(now)} now ({text})", fix)
    elif past:
        report(WARN, f"power and temperature: {', '.join(past)} since boot ({text})", fix)
    else:
        report(OK, f"power and temperature: no under-voltage or throttling since boot ({text})")


CHECKS = (check_rtprio, check_memlock, check_governor, check_audio, check_midi, check_osc_ports,
          check_cache, check_state, check_throttling)


def doctor(config: str | None, osc_port: int | None, run_parser, out=None) -> int:
    """Run every check; 1 when one failed. A bad configuration file is an InstrumentError."""
    opts, source = settings(config, osc_port, run_parser)
    report = Report(out)
    report(OK, f"settings: {source}")
    for check in CHECKS:
        try:
            check(report, opts)
        except InstrumentError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            report(WARN, f"{check.__name__[6:]}: the check itself failed "
                         f"({type(exc).__name__}: {exc})", "report this as a bug")
    return 1 if report.fails else 0
