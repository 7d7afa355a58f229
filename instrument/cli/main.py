"""The ``instrument`` command line. User mistakes print one line and exit 2; never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from instrument.errors import InstrumentError
from instrument.settings import DEFAULTS

log = logging.getLogger("instrument")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="instrument", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    live = sub.add_parser("run", help="play live: audio out, MIDI and OSC in")
    live.add_argument("preset", nargs="?", default=None,
                      help="preset file; without it the saved state, else presets/init.toml")
    live.add_argument("--restore", action="store_true",
                      help="start from the saved state even with a PRESET (PRESET is then the "
                           "fallback: first start, no state, or the crash-loop guard)")
    live.add_argument("--state-dir", metavar="DIR",
                      help="autosave, restore and snapshots here (default: $STATE_DIRECTORY, "
                           "else $XDG_STATE_HOME/instrument, else ~/.local/state/instrument; "
                           "'none': no saved state)")
    live.add_argument("--watch", action="store_true",
                      help="reload the preset file when it is saved, keeping what was moved; "
                           "for development, restart with the saved state when the "
                           "instrument's own code is saved (after checking the new code)")
    live.add_argument("--program-change", choices=("presets", "snapshots"), default="presets",
                      help="program change N loads the N-th preset of the folder (presets), "
                           "or snapshot N (snapshots)")
    live.add_argument("--config", metavar="FILE",
                      help="read the run options from this TOML file (deploy/instrument.toml); "
                           "options given here win")
    live.add_argument("--device", help="audio output device (number or part of its name)")
    live.add_argument("--rate", type=int, default=DEFAULTS.sample_rate_hz,
                      help=f"sample rate in Hz ({DEFAULTS.sample_rate_hz})")
    live.add_argument("--block", type=int, default=DEFAULTS.block_frames,
                      help=f"block size in frames ({DEFAULTS.block_frames})")
    live.add_argument("--latency", default=DEFAULTS.latency,
                      help="PortAudio latency: low, high or seconds")
    live.add_argument("--cpu", type=int, help="pin the audio process to this CPU")
    live.add_argument("--rt-priority", type=int, help="SCHED_FIFO priority of the audio thread")
    live.add_argument("--midi-api", choices=("alsa", "jack"), default="alsa")
    live.add_argument("--midi", help="only MIDI inputs whose name matches this pattern")
    live.add_argument("--no-midi", action="store_true", help="no MIDI input")
    live.add_argument("--mapping", default=None,
                      help="CC mapping file (mappings/generic.toml; 'none' for no mapping)")
    live.add_argument("--learn-timeout-s", type=float, default=30.0, metavar="S",
                      help="MIDI learn gives up after this many seconds with nothing moved (30)")
    live.add_argument("--preset-dir", help="folder of presets for program change (the preset's)")
    live.add_argument("--osc-port", type=int, default=DEFAULTS.osc_port,
                      help=f"OSC UDP port ({DEFAULTS.osc_port})")
    live.add_argument("--osc-bind", default="0.0.0.0", help="OSC address to listen on")
    live.add_argument("--osc-allow", default="local", metavar="CIDR[,CIDR]",
                      help="OSC senders to accept: IPv4 networks, 'local' (loopback and this "
                           "machine's networks; the default) or 'any'")
    live.add_argument("--osc-reply-port", type=int, default=None, metavar="PORT",
                      help="send feedback to this port of each client (TouchOSC listens on a "
                           "fixed port; default: the port a client sends from)")
    live.add_argument("--osc-send", action="append", default=[], metavar="HOST:PORT",
                      help="also send feedback to this surface, always (repeatable)")
    live.add_argument("--osc-lease-s", type=float, default=600.0, metavar="SECONDS",
                      help="forget a client silent this long (600)")
    live.add_argument("--oscquery-port", type=int, default=None, metavar="PORT",
                      help="OSCQuery (HTTP, JSON) port on the OSC address (default: the OSC "
                           "port + 1; 0: none)")
    live.add_argument("--no-zeroconf", action="store_true",
                      help="do not advertise _osc._udp and _oscjson._tcp over Zeroconf/mDNS")
    live.add_argument("--record", help="with no audio device: record the null output to WAV")
    live.add_argument("--null", action="store_true", help="use the null output, no device")
    live.add_argument("--status-interval", type=float, default=0.0,
                      help="print a status line every N seconds")

    st = sub.add_parser("status", help="status of a running instrument")
    st.add_argument("--osc-port", type=int, default=None, help="the instance's OSC port")
    st.add_argument("--json", action="store_true")

    r = sub.add_parser("render", help="render a MIDI file to WAV, offline")
    r.add_argument("preset")
    r.add_argument("--midi", required=True, help="Standard MIDI File to play")
    r.add_argument("-o", "--output", required=True, help="WAV file to write")
    r.add_argument("--rate", type=int, default=DEFAULTS.sample_rate_hz,
                   help=f"sample rate in Hz ({DEFAULTS.sample_rate_hz})")
    r.add_argument("--block", type=int, default=DEFAULTS.block_frames,
                   help=f"block size in frames ({DEFAULTS.block_frames})")
    r.add_argument("--format", choices=("pcm24", "float32"), default="pcm24")
    r.add_argument("--max-tail-s", type=float, default=30.0,
                   help="longest release tail after the last event, seconds (30)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    c = sub.add_parser("check", help="validate preset files")
    c.add_argument("files", nargs="+")

    sub.add_parser("modules", help="list modules and their parameters")
    sub.add_parser("devices", help="list audio devices")

    lay = sub.add_parser("layout", help="write a TouchOSC layout (.tosc) for a preset")
    lay.add_argument("preset")
    lay.add_argument("-o", "--output", help="file to write (default: <preset name>.tosc here)")

    b = sub.add_parser("bench", help="real-time factor and per-block cost")
    b.add_argument("preset", nargs="?", default=None, help="preset (default: poly16)")
    b.add_argument("--seconds", type=float, default=60.0, help="audio to render (60)")
    b.add_argument("--rate", type=int, default=DEFAULTS.sample_rate_hz)
    b.add_argument("--block", type=int, default=DEFAULTS.block_frames)
    b.add_argument("--voices", type=int, default=None, help="notes held at once (polyphony)")

    cache = sub.add_parser("cache", help="where the compiled DSP code is kept for this code version")
    cache.add_argument("--prune", action="store_true",
                       help="remove the compiled code of other versions (deploy/install.sh does)")
    cache.add_argument("--warm", nargs="+", metavar="PRESET", default=[],
                       help="compile everything playing these presets runs, now (setup.sh and "
                            "deploy/install.sh do: the first start then takes about a second)")

    doc = sub.add_parser("doctor", help="check this machine for playing live, one line each")
    doc.add_argument("--config", metavar="FILE",
                     help="run configuration whose ports and device to check (default: "
                          "/etc/instrument/instrument.toml when it exists)")
    doc.add_argument("--osc-port", type=int, default=None,
                     help=f"OSC port to check ({DEFAULTS.osc_port})")
    return p


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "run":  # the saved state wins over a preset from --config only
            args.preset_named = args.preset is not None
        if args.command == "run" and args.config:
            from instrument.cli.run_config import apply_run_config

            apply_run_config(args, parser, sys.argv[1:] if argv is None else argv)
        if args.command == "run" and argv is None:  # --watch may restart it with new code
            return _run(args, sys.argv[1:])
        return _COMMANDS[args.command](args)
    except InstrumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args, argv_for_restart=None) -> int:
    import time

    from instrument.runtime.host import Host, RunOptions

    started = time.monotonic()
    _check_rate_block(args.rate, args.block)
    _check_osc_allow(args.osc_allow)
    osc_send = tuple(_host_port(text) for text in args.osc_send)
    for port in (args.osc_reply_port,):
        if port is not None and not 0 < port < 65536:
            raise InstrumentError(f"--osc-reply-port {port} is not a UDP port", "command line",
                                  "use a number from 1 to 65535")
    if args.oscquery_port is not None and not 0 <= args.oscquery_port < 65536:
        raise InstrumentError(f"--oscquery-port {args.oscquery_port} is not a TCP port",
                              "command line", "use a number from 1 to 65535, or 0 for none")
    if not args.learn_timeout_s > 0:
        raise InstrumentError(f"--learn-timeout-s {args.learn_timeout_s} must be positive",
                              "command line", "use a number of seconds, like 30")
    if not args.osc_lease_s > 0:
        raise InstrumentError(f"--osc-lease-s {args.osc_lease_s} must be positive",
                              "command line", "use a number of seconds, like 600")
    root = Path(__file__).resolve().parents[2]
    preset = Path(args.preset) if args.preset else root / "presets" / "init.toml"
    from instrument.runtime.state_store import default_state_dir

    if args.state_dir == "none":
        state_dir = None
    else:
        state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    # The saved state wins over the default and --config's preset; a PRESET named on the
    # command line wins over the state, unless --restore makes it the fallback only.
    restore = args.restore or not getattr(args, "preset_named", args.preset is not None)
    mapping = args.mapping
    if mapping is None:
        default = root / "mappings" / "generic.toml"
        mapping = default if default.exists() else None
    elif mapping == "none":
        mapping = None
    options = RunOptions(
        preset=preset, preset_dir=Path(args.preset_dir) if args.preset_dir else None,
        mapping=Path(mapping) if mapping else None, device=args.device, rate=args.rate,
        block=args.block, latency=args.latency, cpu=args.cpu, rt_priority=args.rt_priority,
        midi_api=args.midi_api, midi=args.midi, no_midi=args.no_midi, osc_port=args.osc_port,
        osc_bind=args.osc_bind, osc_allow=args.osc_allow, osc_reply_port=args.osc_reply_port,
        osc_send=osc_send, osc_lease_s=args.osc_lease_s, oscquery_port=args.oscquery_port,
        zeroconf=not args.no_zeroconf, record=args.record, null=args.null,
        status_interval=args.status_interval, started=started, state_dir=state_dir,
        restore=restore, watch=args.watch, program_change=args.program_change,
        learn_timeout_s=args.learn_timeout_s)
    host = Host(options)
    try:
        host.start()
    except OSError as exc:
        host.shutdown()
        raise InstrumentError(f"cannot start: {exc.strerror or exc}", f"OSC port {args.osc_port}",
                              "choose another --osc-port") from None
    except InstrumentError:
        host.shutdown()
        raise
    code = host.run()
    if argv_for_restart is not None and host.reexec:
        from instrument.runtime.code_watch import reexec

        reexec(argv_for_restart)  # does not return
    return code


def _osc_dropped(data: dict) -> int:
    return sum(data.get(k, 0) for k in ("osc_unknown", "osc_malformed", "osc_oversize",
                                         "osc_denied"))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _status(args) -> int:
    import json

    from instrument.runtime.host import runtime_dir

    folder = runtime_dir()
    pattern = f"status-{args.osc_port}.json" if args.osc_port else "status-*.json"
    # The appliance's service writes to its RuntimeDirectory (/run/instrument): look there too,
    # so 'instrument status' works from a login shell.
    folders = [folder] + [p for p in (Path("/run/instrument"),) if p != folder and p.is_dir()]
    files = sorted((f for d in folders for f in d.glob(pattern)), key=_mtime, reverse=True)
    import time as _time

    for path in files:
        try:  # an instance that just stopped removes its file: skip it
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("running") and _time.time() - data.get("time", 0) < 5.0:
            if args.json:
                print(json.dumps(data, indent=1))
            else:
                print(f"running: {data['preset']}, {data['active_voices']} voices, callback "
                      f"p50 {data['callback_p50_pct']:.1f}% p99.9 {data['callback_p999_pct']:.1f}%"
                      f" max {data['callback_max_pct']:.1f}% of the deadline, "
                      f"{data['xruns']} xruns, MIDI {data['midi_messages']}, OSC "
                      f"{data['osc_messages']} (dropped {_osc_dropped(data)})"
                      f", audio restarts {data['audio_restarts']}")
            return 0
    print("not running (no fresh status file in " + str(folder) + ")", file=sys.stderr)
    return 1


def _render(args) -> int:
    from instrument.render.offline import render_file

    _check_rate_block(args.rate, args.block)
    result = render_file(args.preset, args.midi, args.output, args.rate, args.block,
                         args.format, args.max_tail_s, progress=not args.quiet)
    print(f"wrote {args.output}: {result.duration_s:.1f} s, {result.n_notes} notes, peak "
          f"{_db(result.peak)}, {result.realtime_factor:.0f}x real time", file=sys.stderr)
    return 0


def _check(args) -> int:
    from instrument.cli.check import check_file

    failed = 0
    for path in args.files:
        problem = check_file(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            failed += 1
        else:
            print(f"ok: {path}")
    return 2 if failed else 0


def _cache(args) -> int:
    from instrument.cache_folder import numba_cache_dir, prune_other_versions

    if args.prune:
        for folder in prune_other_versions():
            print(f"removed {folder}")
    if args.warm:
        from instrument.engine.fused import is_compiled
        from instrument.modules.precompile import compile_kernels
        from instrument.modules.registry import default_registry
        from instrument.presets import compile_file
        from instrument.runtime.audio_main import exercise_engine

        registry = default_registry()
        if not is_compiled(registry.renderer()):  # cold: the kernels first, on every core
            compile_kernels(sorted(registry.modules))
        for path in args.warm:
            rate, block = DEFAULTS.sample_rate_hz, DEFAULTS.block_frames
            exercise_engine(compile_file(Path(path), rate, block), float(rate), block)
            print(f"warm: {path}")
    print(numba_cache_dir())
    return 0


def _modules(args) -> int:
    from instrument.cli.listing import list_modules

    print(list_modules())
    return 0


def _devices(args) -> int:
    from instrument.cli.listing import list_devices

    print(list_devices())
    return 0


def _layout(args) -> int:
    import tempfile

    from instrument.control.touchosc_layout import layout_bytes, read_layout
    from instrument.presets import compile_file

    plan = compile_file(args.preset, DEFAULTS.sample_rate_hz, DEFAULTS.block_frames)
    data = layout_bytes(plan)
    out = Path(args.output) if args.output else Path.cwd() / (Path(args.preset).stem + ".tosc")
    try:  # a temporary file beside the target, then a rename: never a half-written layout
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make the layout private
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise InstrumentError(f"cannot write the layout: {exc.strerror or exc}", str(out),
                              "choose another -o path") from None
    controls = read_layout(data)
    pages = len({c.page for c in controls if c.page})
    print(f"wrote {out}: {plan.name}, {pages} pages, {len(controls)} OSC bindings",
          file=sys.stderr)
    return 0


def _bench(args) -> int:
    from instrument.bench import run_bench

    _check_rate_block(args.rate, args.block)
    print(run_bench(args.preset, args.seconds, args.rate, args.block, args.voices).report())
    return 0


def _doctor(args) -> int:
    from instrument.cli.doctor import doctor

    return doctor(args.config, args.osc_port, run_parser=_parser())


def _check_rate_block(rate: int, block: int) -> None:
    if not 8000 <= rate <= 384000:
        raise InstrumentError(f"sample rate {rate} is out of range", "--rate", "use 8000 to 384000")
    if not 1 <= block <= 8192:
        raise InstrumentError(f"block size {block} is out of range", "--block", "use 1 to 8192")


def _host_port(text: str) -> tuple[str, int]:
    """``--osc-send HOST:PORT`` -> (IPv4 address, port); InstrumentError on anything else."""
    import socket

    host, _, port = text.rpartition(":")
    try:
        number = int(port)
        if not 0 < number < 65536 or not host:
            raise ValueError
        return socket.gethostbyname(host), number
    except (ValueError, OSError):
        raise InstrumentError(f"--osc-send '{text}' is not HOST:PORT of a reachable host",
                              "command line", "write it like 192.168.1.20:9001") from None


def _check_osc_allow(text: str) -> None:
    """A bad --osc-allow fails here, before any process starts (InstrumentError, one line)."""
    from instrument.control.osc_allow import parse_osc_allow

    parse_osc_allow(text, local_networks=lambda: ())  # the syntax only; the host reads them


def _db(x: float) -> str:
    import math

    return "-inf dBFS" if x <= 0 else f"{20 * math.log10(x):.1f} dBFS"


_COMMANDS = {
    "run": _run,
    "status": _status,
    "render": _render,
    "check": _check,
    "modules": _modules,
    "devices": _devices,
    "cache": _cache,
    "bench": _bench,
    "layout": _layout,
    "doctor": _doctor,
}

if __name__ == "__main__":
    sys.exit(main())
