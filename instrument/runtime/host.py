"""The host process: everything that allocates or blocks. MIDI and OSC in, preset loading and
plan publication, supervision of the audio process, status reporting.

It writes parameter targets straight into the shared table of the playing plan, queues notes
and controllers on the event ring, and tells the audio process (through its stdin) to swap to
a new preset, after compiling the file itself so a broken preset never reaches it. If the audio
process dies, the host starts a new one with the same preset and the same parameter table.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from instrument.control.midi_messages import dispatch_midi
from instrument.control.osc import OscAddressMap, OscRouter, OscServer
from instrument.engine.events import (
    ALL_NOTES_OFF, ALL_SOUND_OFF, CC, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_MOD_WHEEL,
    CC_SUSTAIN, CHANNEL_PRESSURE, NOTE_OFF, NOTE_ON, PITCH_BEND, POLY_PRESSURE,
)
from instrument.errors import InstrumentError
from instrument.presets import compile_file
from instrument.runtime.ring import RingWriter
from instrument.runtime.shared import (
    MAX_PARAMS, S_AUDIO_PID, S_BAD_EVENTS, S_CALLBACKS, S_CB_MAX_NS, S_FIRST_AUDIO_T, S_LATE,
    S_MODULES_RESET, S_NONFINITE, S_NULL_OUTPUT, S_PEAK_L, S_PEAK_R, S_RING_DROPPED, S_STATE,
    S_VOICES, S_XRUNS, STATE_RUNNING, SharedState, remove_stale_blocks,
)
from instrument.runtime.status import percentiles

log = logging.getLogger("instrument.host")

ENGINE_CCS = (CC_MOD_WHEEL, CC_SUSTAIN, CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF)
QUICK_DEATH_S = 5.0  # an audio process that dies this soon, before playing, backs off


@dataclass
class RunOptions:
    preset: Path
    preset_dir: Path | None = None
    mapping: Path | None = None
    device: str | None = None
    rate: int = 48000
    block: int = 64
    latency: str = "low"
    cpu: int | None = None
    rt_priority: int | None = None
    midi_api: str = "alsa"
    midi: str | None = None
    no_midi: bool = False
    osc_port: int = 9000
    osc_bind: str = "0.0.0.0"
    record: str | None = None
    null: bool = False
    status_interval: float = 0.0
    started: float = 0.0


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "instrument" if base else Path(f"/tmp/instrument-{os.getuid()}")


class Host:
    def __init__(self, options: RunOptions):
        self.opt = options
        remove_stale_blocks()
        self.shared = SharedState(f"instrument-{os.getpid()}", create=True)
        self.ring = RingWriter(self.shared.ring, self.shared.status)
        self.table = 0
        self.plan = None
        self.preset_path: Path | None = None
        self.audio: subprocess.Popen | None = None
        self.audio_restarts = 0
        self.stop_requested = threading.Event()
        self.pending: list = []  # work for the main loop (preset loads from MIDI/OSC threads)
        self.pending_lock = threading.Lock()
        self.osc_router = OscRouter(self)
        self.osc: OscServer | None = None
        self.midi = None
        self.cc_router = None
        self.mapping = None
        self.midi_messages = 0
        self.midi_junk = 0
        self.first_audio_s: float | None = None
        self.audio_died_at: float | None = None
        self.audio_started = 0.0
        self.restart_backoff_s = 0.0
        self.restart_at: float | None = None
        self.last_restart_s: float | None = None

    # ---- presets -----------------------------------------------------------------------------
    def _compile(self, path: Path):
        return compile_file(path, self.opt.rate, self.opt.block)

    def _install(self, plan, path: Path, table: int) -> None:
        """Fill ``table`` with the plan's initial values and make it the host's current plan."""
        values = self.shared.tables[table]
        values[:] = 0.0
        for slot in plan.params:
            values[slot.index] = slot.initial_norm
        self.plan = plan
        self.preset_path = path
        self.table = table
        self.osc_router.map = OscAddressMap.for_plan(plan)
        self.macro_values = [m.initial_norm for m in plan.macros]
        self._make_cc_router()

    def load_preset(self, name: str) -> None:
        """Queue a preset change (called from MIDI/OSC threads; runs in the main loop)."""
        with self.pending_lock:
            self.pending.append(("load", name))

    def program_change(self, program: int) -> None:
        presets = self.preset_list()
        if 0 <= program < len(presets):
            self.load_preset(str(presets[program]))
        else:
            log.warning("program %d: no preset with that number (%d in %s)", program,
                        len(presets), self.preset_dir())

    def preset_dir(self) -> Path:
        return self.opt.preset_dir or self.opt.preset.parent

    def preset_list(self) -> list[Path]:
        return sorted(self.preset_dir().glob("*.toml"))

    def _load_now(self, name: str) -> None:
        path = Path(name)
        if not path.is_absolute() and not path.exists():
            path = self.preset_dir() / name
            if path.suffix != ".toml":
                path = path.with_suffix(".toml")
        try:
            plan = self._compile(path)
        except InstrumentError as exc:
            log.error("preset not loaded, the old one keeps playing: %s", exc)
            return
        table = 1 - self.table
        self._install(plan, path, table)
        self._send(f"swap {table} {path}")
        log.info("preset: %s (%s)", plan.name, path)

    # ---- parameters, notes, controllers (any thread) ----------------------------------------
    def set_param_norm(self, index: int, norm: float) -> None:
        if 0 <= index < MAX_PARAMS:
            self.shared.tables[self.table][index] = norm

    def set_macro(self, index: int, norm: float) -> None:
        macro = self.plan.macros[index]
        self.macro_values[index] = norm
        if self.cc_router is not None:  # a knob on this macro must pick it up again
            self.cc_router.set_macro_value(macro.name, norm)
        table = self.shared.tables[self.table]
        for param, value in macro.targets_for(norm):
            table[param] = value

    def note_on(self, note: int, velocity: float, channel: int = 0, t: float | None = None):
        self.ring.push(NOTE_ON, channel, note, velocity, t)

    def note_off(self, note: int, channel: int = 0, t: float | None = None):
        self.ring.push(NOTE_OFF, channel, note, 0.0, t)

    def pitch_bend(self, bend: float, channel: int = 0, t: float | None = None):
        self.ring.push(PITCH_BEND, channel, bend, 0.0, t)

    def channel_pressure(self, value: float, channel: int = 0, t: float | None = None):
        self.ring.push(CHANNEL_PRESSURE, channel, value, 0.0, t)

    def poly_pressure(self, note: int, value: float, channel: int = 0, t: float | None = None):
        self.ring.push(POLY_PRESSURE, channel, note, value, t)

    def control_change(self, channel: int, cc: int, value: int, t: float | None = None):
        if cc in ENGINE_CCS:
            self.ring.push(CC, channel, cc, value / 127.0, t)
        if self.cc_router is not None:
            for index, norm in self.cc_router.handle(channel, cc, value):
                self.set_param_norm(index, norm)

    def panic(self) -> None:
        self.ring.push(ALL_SOUND_OFF, 0, 0.0, 0.0)

    def on_midi(self, message, t: float) -> None:
        self.midi_messages += 1
        if not dispatch_midi(message, self, t):
            self.midi_junk += 1

    def _make_cc_router(self) -> None:
        if self.mapping is None:
            self.cc_router = None
            return
        from instrument.control.cc_router import CcRouter

        table = self.shared.tables[self.table]
        self.cc_router = CcRouter(self.mapping, self.plan.params, self.plan.macros,
                                  lambda index: float(table[index]))
        for line in self.cc_router.unresolved:  # e.g. bank knobs beyond this preset's macros
            log.debug("mapping: %s", line)

    # ---- audio process ---------------------------------------------------------------------
    def _spawn_audio(self) -> None:
        o = self.opt
        cmd = [sys.executable, "-m", "instrument.runtime.audio_main", "--shm", self.shared.name,
               "--preset", str(self.preset_path), "--table", str(self.table),
               "--rate", str(o.rate), "--block", str(o.block), "--latency", str(o.latency)]
        for flag, value in (("--device", o.device), ("--cpu", o.cpu),
                            ("--rt-priority", o.rt_priority), ("--record", o.record)):
            if value is not None:
                cmd += [flag, str(value)]
        if o.null:
            cmd.append("--null")
        if o.device is None:
            cmd.append("--null-fallback")
        self.shared.status[S_STATE] = 0.0
        self.shared.status[S_CALLBACKS] = 0.0
        self.shared.ring[1] = self.shared.ring[0]  # events queued while no one played: drop
        self.audio = subprocess.Popen(cmd, stdin=subprocess.PIPE, text=True)
        self.audio_started = time.monotonic()

    def _send(self, line: str) -> None:
        if self.audio is None or self.audio.poll() is not None:
            return
        try:
            self.audio.stdin.write(line + "\n")
            self.audio.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def _supervise(self) -> None:
        """Restart a dead audio process at once; if it dies before playing (a device gone, say),
        wait 1, 2, 4 ... up to 30 s between attempts instead of spinning."""
        if self.audio is None:
            return
        now = time.monotonic()
        if self.audio.poll() is None:
            if now - self.audio_started > QUICK_DEATH_S:
                self.restart_backoff_s = 0.0
            return
        if self.restart_at is None:  # just found dead
            self.audio_restarts += 1
            if self.audio_died_at is None:
                self.audio_died_at = now
            status = self.shared.status
            never_played = status[S_STATE] != STATE_RUNNING
            if never_played and now - self.audio_started < QUICK_DEATH_S:
                self.restart_backoff_s = min(max(1.0, 2 * self.restart_backoff_s), 30.0)
            else:
                self.restart_backoff_s = 0.0
            status[S_STATE] = 0.0  # what it wrote no longer describes a running process
            status[S_CALLBACKS] = 0.0
            self.restart_at = now + self.restart_backoff_s
            log.error("audio process exited (code %s); restarting it with the same preset and "
                      "parameters%s", self.audio.returncode,
                      f" in {self.restart_backoff_s:.0f} s" if self.restart_backoff_s else "")
        if now >= self.restart_at:
            self.restart_at = None
            self._spawn_audio()

    def wait_running(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.shared.status[S_STATE] == STATE_RUNNING:
                return True
            if self.audio is not None and self.audio.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        o = self.opt
        if o.mapping is not None:
            from instrument.control.mapping import load_mapping

            self.mapping = load_mapping(o.mapping)
        self._install(self._compile(o.preset), o.preset, 0)
        self._spawn_audio()
        self.osc = OscServer(self.osc_router, o.osc_bind, o.osc_port)
        self.osc.start()
        log.info("OSC: listening on %s:%d", o.osc_bind, self.osc.port)
        if not o.no_midi:
            from instrument.control.midi_in import MidiInputs

            try:
                self.midi = MidiInputs(o.midi_api, o.midi, self.on_midi)
                self.midi.start()
            except Exception as exc:  # noqa: BLE001 - no MIDI system: play from OSC only
                log.warning("no MIDI (%s)", exc)
                self.midi = None

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_requested.set())
        next_scan = next_status = next_line = time.monotonic()
        while not self.stop_requested.is_set():
            self.stop_requested.wait(0.05)
            with self.pending_lock:
                work, self.pending = self.pending, []
            for kind, arg in work:
                if kind == "load":
                    self._load_now(arg)
            self._supervise()
            now = time.monotonic()
            status = self.shared.status
            if self.first_audio_s is None and status[S_FIRST_AUDIO_T] > 0:
                self.first_audio_s = status[S_FIRST_AUDIO_T] - self.opt.started
                log.info("first audio %.2f s after start", self.first_audio_s)
            if self.audio_died_at is not None and status[S_CALLBACKS] > 0 and \
                    status[S_STATE] == STATE_RUNNING:
                self.last_restart_s = now - self.audio_died_at
                self.audio_died_at = None
                log.info("audio running again %.2f s after the audio process died",
                         self.last_restart_s)
            if self.midi is not None and now >= next_scan:
                self.midi.scan()
                next_scan = now + 1.0
            if now >= next_status:
                self.write_status_file()
                next_status = now + 1.0
            if self.opt.status_interval and now >= next_line:
                print(self.status_line(), file=sys.stderr, flush=True)
                next_line = now + self.opt.status_interval
        return self.shutdown()

    def shutdown(self) -> int:
        """Release the notes, let them ring briefly, stop the audio process, clean up."""
        try:
            self.ring.push(ALL_NOTES_OFF, 0, 0.0, 0.0)
            end = time.monotonic() + 0.3
            while time.monotonic() < end and self.shared.status[S_VOICES] > 0:
                time.sleep(0.01)
            if self.midi is not None:
                self.midi.stop()
            if self.osc is not None:
                self.osc.stop()
            if self.audio is not None and self.audio.poll() is None:
                self._send("quit")
                try:
                    self.audio.stdin.close()
                    self.audio.wait(timeout=3.0)
                except (subprocess.TimeoutExpired, OSError):
                    self.audio.kill()
            self.write_status_file(running=False)
        finally:
            self.shared.close()
        return 0

    # ---- status ----------------------------------------------------------------------------
    def status_dict(self, running: bool = True) -> dict:
        s = self.shared.status
        pct = percentiles(s)
        block_ns = self.opt.block / self.opt.rate * 1e9
        return {
            "running": running,
            "pid": os.getpid(),
            "audio_pid": int(s[S_AUDIO_PID]),
            "preset": str(self.preset_path),
            "null_output": bool(s[S_NULL_OUTPUT]),
            "sample_rate": self.opt.rate,
            "block": self.opt.block,
            "callbacks": int(s[S_CALLBACKS]),
            "xruns": int(s[S_XRUNS]),
            "late_blocks": int(s[S_LATE]),
            "callback_p50_pct": pct[50.0],
            "callback_p99_pct": pct[99.0],
            "callback_p999_pct": pct[99.9],
            "callback_max_pct": round(s[S_CB_MAX_NS] / block_ns * 100, 2),
            "active_voices": int(s[S_VOICES]),
            "peak_l": round(float(s[S_PEAK_L]), 4),
            "peak_r": round(float(s[S_PEAK_R]), 4),
            "midi_messages": self.midi_messages,
            "midi_junk": self.midi_junk,
            "osc_messages": self.osc_router.counts.messages,
            "osc_unknown": self.osc_router.counts.unknown,
            "osc_malformed": self.osc_router.counts.malformed,
            "bad_events": int(s[S_BAD_EVENTS]),
            "dropped_events": int(s[S_RING_DROPPED]),
            "nonfinite_resets": int(s[S_NONFINITE]),
            "modules_reset": int(s[S_MODULES_RESET]),
            "audio_restarts": self.audio_restarts,
            "last_restart_s": self.last_restart_s,
            "first_audio_s": self.first_audio_s,
            "time": time.time(),
        }

    def status_line(self) -> str:
        d = self.status_dict()
        return (f"voices {d['active_voices']}  load p50 {d['callback_p50_pct']:.1f}% p99.9 "
                f"{d['callback_p999_pct']:.1f}% max {d['callback_max_pct']:.1f}%  xruns "
                f"{d['xruns']}  midi {d['midi_messages']}  osc {d['osc_messages']} "
                f"(dropped {d['osc_unknown'] + d['osc_malformed'] + d['dropped_events']})")

    def status_path(self) -> Path:
        return runtime_dir() / f"status-{self.osc.port if self.osc else self.opt.osc_port}.json"

    def write_status_file(self, running: bool = True) -> None:
        """Atomic (temp file, rename) so ``instrument status`` never reads half a file."""
        path = self.status_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status_dict(running), indent=1))
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("status file: %s", exc)
