"""The host process: everything that allocates or blocks. MIDI and OSC in, preset loading and
plan publication, supervision of the audio process, status reporting.

It writes parameter targets straight into the shared table of the playing plan, queues notes
and controllers on the event ring, and compiles every preset itself: the audio process gets the
finished plan through its stdin (``runtime.handover``), so a broken preset never reaches it and
it never parses a file while it plays. Preset requests are coalesced to the latest, and a new
plan is sent only when the audio process has acknowledged the previous one (crossfade over).

Over the network a preset is named, never given as a path: ``/preset/load pad`` loads
``pad.toml`` from the preset folder and nothing else; paths are for the command line.

If the audio process dies, the host starts a new one with the same plan and parameter table
and replays what the player is holding (``PlayerState``: keys, pedal, bend, mod wheel, the
bend range a controller set with RPN 0).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from instrument.control.midi_clock import MidiClock
from instrument.control.midi_messages import REALTIME, MidiPort, dispatch_midi
from instrument.control.osc import OscAddressMap, OscRouter, OscServer
from instrument.engine.events import (
    ALL_NOTES_OFF, ALL_SOUND_OFF, CC, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_MOD_WHEEL,
    CC_SUSTAIN, CC_TIMBRE, CHANNEL_PRESSURE, MPE_ZONE, NOTE_OFF, NOTE_ON, PITCH_BEND,
    POLY_PRESSURE, TEMPO, TRANSPORT,
)
from instrument.errors import InstrumentError
from instrument.presets import compile_file
from instrument.presets.folder import preset_files, resolve_preset_name
from instrument.runtime.handover import encode
from instrument.runtime.player_state import PlayerState
from instrument.runtime.recording import (
    finish_recording, raw_path_for, recover_leftover, trim_partial_frame,
)
from instrument.runtime.ring_writer import RingWriter
from instrument.runtime.shared import (
    MAX_PARAMS, S_AUDIO_PID, S_BAD_EVENTS, S_CALLBACKS, S_CB_MAX_NS, S_FIRST_AUDIO_T, S_LATE,
    S_CB_RECENT_GAP_S, S_CB_RECENT_MAX_NS, S_MODULES_RESET, S_NONFINITE, S_NULL_OUTPUT, S_PEAK_L, S_PEAK_R, S_PLAN_ACK,
    S_RING_DROPPED,
    S_STATE, S_VOICES, S_XRUNS, STATE_RUNNING, SharedState, remove_stale_blocks,
)
from instrument.runtime.code_watch import CodeReload, CodeWatch
from instrument.runtime.preset_watch import PresetWatch
from instrument.runtime.state_store import (
    Autosaver, CrashGuard, Saved, StateError, StateStore, moved_values,
)
from instrument.runtime.sd_notify import ServiceNotifier, status_text
from instrument.settings import DEFAULTS

log = logging.getLogger("instrument.host")

ENGINE_CCS = (CC_MOD_WHEEL, CC_SUSTAIN, CC_TIMBRE, CC_ALL_SOUND_OFF, CC_ALL_NOTES_OFF)
QUICK_DEATH_S = 5.0  # an audio process that dies this soon, before playing, backs off
MIDI_RECENT = 16  # messages kept for the status (midi_recent)
MIDI_RECENT_BYTES = 16  # bytes kept of each (a SysEx is longer)
MIDI_RETRY_S = 3.0  # JACK MIDI that failed to open is tried again this often (_retry_midi)
LOAD_ERROR_LOG_S = 2.0  # failed network loads are logged at most this often (then summarized)


@dataclass
class RunOptions:
    preset: Path
    preset_dir: Path | None = None
    mapping: Path | None = None
    device: str | None = None
    rate: int = DEFAULTS.sample_rate_hz
    block: int = DEFAULTS.block_frames
    latency: str = DEFAULTS.latency
    cpu: int | None = None
    rt_priority: int | None = None
    midi_api: str = "alsa"
    midi: str | None = None
    no_midi: bool = False
    osc_port: int = DEFAULTS.osc_port
    osc_bind: str = "0.0.0.0"
    osc_reply_port: int | None = None  # --osc-reply-port: where surfaces listen for feedback
    osc_send: tuple = ()  # --osc-send HOST:PORT: static feedback targets
    osc_lease_s: float = 600.0  # --osc-lease-s: a silent client is forgotten after this
    osc_allow: str = "local"  # --osc-allow: IPv4 networks, 'local', 'any' (osc_allow.py)
    oscquery_port: int | None = None  # --oscquery-port: None the OSC port + 1, 0 none
    zeroconf: bool = True  # --no-zeroconf: False
    record: str | None = None
    null: bool = False
    status_interval: float = 0.0
    started: float = 0.0
    state_dir: Path | None = None  # --state-dir: autosave, restore, snapshots (None: off)
    restore: bool = False  # start from the saved state when there is one (--restore, or no PRESET)
    watch: bool = False  # --watch: reload the preset file when it is saved, restart on new code
    program_change: str = "presets"  # --program-change: 'presets' or 'snapshots'
    learn_timeout_s: float = 30.0  # --learn-timeout-s: MIDI learn gives up (control/midi_learn)


def _audio_env() -> dict:
    """The audio process's environment: one thread for numpy's BLAS and numba's pool (it does
    no linear algebra and no parallel loops; each idle BLAS thread holds a buffer and, under
    mlockall, locked address space: 561 -> 479 MB locked here)."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        env.setdefault(name, "1")
    return env


def runtime_dir() -> Path:
    if os.environ.get("RUNTIME_DIRECTORY"):  # systemd's RuntimeDirectory=: /run/instrument
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "instrument" if base else Path(f"/tmp/instrument-{os.getuid()}")


def midi_recent_text(recent) -> list:
    """The status's ``midi_recent``: [index, port, "90 3c 64"] per message kept by
    ``Host.on_midi`` (the hex written once a second here, not for every message heard)."""
    return [[index, port, " ".join(f"{b:02x}" for b in data)] for index, port, data in recent]


class Host:
    def __init__(self, options: RunOptions):
        self.opt = options
        remove_stale_blocks()
        self.shared = SharedState(f"instrument-{os.getpid()}", create=True)
        self.ring = RingWriter(self.shared.ring, self.shared.status)
        self.table = 0
        self.plan = None
        self.preset_path: Path | None = None
        self.plan_seq = 0  # last plan sent to the audio process; it acks in S_PLAN_ACK
        self.player = PlayerState()
        self.clock = MidiClock(lambda bpm, t: self.ring.push(TEMPO, 0, bpm, 0.0, t),  # MIDI
                               lambda beats, t: self.ring.push(TRANSPORT, 0, beats, 0.0, t))
        self.play_lock = threading.Lock()
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()  # (process, bytes) to its stdin
        self.sender = threading.Thread(target=self._send_loop, name="audio-pipe", daemon=True)
        self.sender.start()
        self.cb_max_last_s_ns = 0.0  # worst callback of the last status period (1 s)
        self.cb_gap_last_s = 0.0  # longest time between callback starts in that period
        self.load_errors = 0  # failed loads not logged yet
        self.load_error_logged_at = -LOAD_ERROR_LOG_S
        self.raw_record = raw_path_for(options.record) if options.record else None
        self.audio: subprocess.Popen | None = None
        self.audio_restarts = 0
        self.stop_requested = threading.Event()
        self.stop_signalled = False  # SIGINT/SIGTERM: see _on_stop_signal
        self.pending_load: tuple[str, str] | None = None  # latest request: ("name"|"path", ..)
        self.pending_lock = threading.Lock()
        self.osc_router = OscRouter(self)
        self.osc: OscServer | None = None
        self.feedback = None
        self.oscquery = None  # control/oscquery.py
        self.zeroconf = None  # control/zeroconf_service.py
        self.midi = None
        self.midi_retry_at = 0.0  # JACK: when to try opening MIDI again (_retry_midi)
        self.midi_feedback = None  # control/midi_feedback.py: values back to controllers
        self.cc_router = None
        self.mapping = None  # with the learned layer on top (control/midi_learn.py)
        self.learn = None  # MidiLearn: arming, classifying, learned.toml
        self.profiles = []  # (Profile, Mapping): a port's mapping by its name (control/profiles)
        self.midi_ports: dict[str, MidiPort] = {}  # per input port: held keys, bank, mapping
        self.port_routers: dict[int, tuple] = {}  # id(mapping) -> (plan, CcRouter), lazily
        self.midi_messages = 0
        self.midi_junk = 0
        # The last messages heard (index, port, bytes), for ``instrument status``: which
        # controller sent what, when a musician asks why a knob does nothing
        self.midi_recent: deque = deque(maxlen=MIDI_RECENT)
        self.first_audio_s: float | None = None
        self.audio_died_at: float | None = None
        self.audio_started = 0.0
        self.restart_backoff_s = 0.0
        self.restart_at: float | None = None
        self.last_restart_s: float | None = None
        self.systemd = ServiceNotifier()  # READY/STATUS/WATCHDOG/STOPPING under systemd
        self.store = StateStore(options.state_dir) if options.state_dir else None
        self.autosaver = Autosaver(self.store) if self.store else None
        self.crash_guard = CrashGuard(self.store) if self.store else None
        self.watcher = PresetWatch() if options.watch else None
        self.code_reload = CodeReload(CodeWatch(), options.rate, options.block) \
            if options.watch else None
        self.reexec = False  # new code passed its check: stop, then exec a fresh instrument
        self.pending_snapshots: queue.SimpleQueue = queue.SimpleQueue()  # (n, Saved) to write

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
        self.playing = (plan, table)
        self.osc_router.map = OscAddressMap.for_plan(plan)
        self.macro_values = [m.initial_norm for m in plan.macros]
        self.player.preset_loaded()  # RPN 0's bend range lasts until the next preset load
        self._make_cc_router()

    def load_preset(self, name: str) -> None:
        """Queue loading the preset called ``name`` in the preset folder (from the network:
        never a path). Runs in the main loop; requests coalesce to the latest."""
        self._request(("name", str(name)))

    def program_change(self, program: int) -> None:
        if self.opt.program_change == "snapshots":  # --program-change snapshots
            self.snapshot_load(program)
            return
        presets = self.preset_list()
        if 0 <= program < len(presets):
            self._request(("path", str(presets[program])))
        else:  # rate-limited like every failed load: a device repeating it cannot flood
            self._load_failed(f"program {program}: no preset with that number ({len(presets)} "
                              f"in {self.preset_dir()})")

    def _request(self, request: tuple[str, str]) -> None:
        with self.pending_lock:
            self.pending_load = request

    def preset_dir(self) -> Path:
        return self.opt.preset_dir or self.opt.preset.parent

    def preset_list(self) -> list[Path]:
        return preset_files(self.preset_dir())

    def _handover_idle(self) -> bool:
        """True when the audio process has adopted every plan sent (or is not there)."""
        if self.audio is None or self.audio.poll() is not None:
            return True
        return self.shared.status[S_PLAN_ACK] >= self.plan_seq

    def _take_request(self) -> tuple[str, str] | None:
        if not self._handover_idle():
            return None
        with self.pending_lock:
            request, self.pending_load = self.pending_load, None
        return request

    def _load_now(self, request: tuple[str, str]) -> None:
        kind, value = request
        saved = None  # values to write into the new table before the plan goes out
        try:
            if kind == "snapshot":  # /snapshot/load n: its preset, then its values
                saved = self._snapshot(int(value))
                path = Path(saved.preset)
            else:
                path = resolve_preset_name(value, self.preset_dir()) if kind == "name" else \
                    Path(value)
            plan = self._compile(path)
        except InstrumentError as exc:
            self._load_failed(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not take the host down
            self._load_failed(f"{value[:40]!r}: internal error {type(exc).__name__}: {exc}")
            return
        if kind == "reload":  # --watch: what the player moved stays (Engine.swap carry_params)
            old_plan, old_values = self.plan_and_values()
            saved = Saved(str(path), *moved_values(old_plan, old_values, self.macro_positions()))
        table = 1 - self.table
        self._install(plan, path, table)
        kept = self._apply_saved(saved) if saved is not None else 0
        self._send_plan()
        if kind == "reload":
            log.info("preset reloaded: %s (%s), %d moved values kept", plan.name, path, kept)
        elif kind == "snapshot":
            log.info("snapshot %s: %s (%s), %d values", value, plan.name, path, kept)
        else:
            log.info("preset: %s (%s)", plan.name, path)

    def _load_failed(self, line: str) -> None:
        """One line per failure, but at most one every LOAD_ERROR_LOG_S: a peer repeating a
        bad request cannot flood the log (the rest are summed up by ``_report_load_errors``)."""
        now = time.monotonic()
        if now - self.load_error_logged_at >= LOAD_ERROR_LOG_S:
            log.error("preset not loaded, the old one keeps playing: %s", line)
            self.load_error_logged_at = now
        else:
            self.load_errors += 1

    def _report_load_errors(self) -> None:
        now = time.monotonic()
        if self.load_errors and now - self.load_error_logged_at >= LOAD_ERROR_LOG_S:
            log.error("preset not loaded: %d more failed preset loads in the last %.0f s",
                      self.load_errors, now - self.load_error_logged_at)
            self.load_errors = 0
            self.load_error_logged_at = now

    # ---- saved state, snapshots, --watch (runtime/state_store.py, runtime/preset_watch.py) ----
    def _start_preset(self) -> None:
        """Install the first preset: the saved state's, with its values, when restoring and
        there is one; else ``--preset``. Before the audio process gets any plan, so the first
        sound is already the saved sound."""
        self.state_started = time.monotonic()
        if self.store is not None:
            self.store.remove_temp_files()
        saved = self._saved_to_restore()
        if saved is not None:
            path = Path(saved.preset)
            try:
                self._install(self._compile(path), path, 0)
            except InstrumentError as exc:
                log.warning("saved state not restored, starting from %s: %s", self.opt.preset,
                            exc)
            else:
                kept = self._apply_saved(saved)
                log.info("restored: %s (%s) with %d moved values, from %s", self.plan.name, path,
                         kept, self.store.state_path)
                return
        self._install(self._compile(self.opt.preset), self.opt.preset, 0)

    def _saved_to_restore(self) -> Saved | None:
        if self.store is None or not self.opt.restore:
            return None
        try:
            saved = self.store.load()
        except StateError as exc:  # a power cut on a bad SD card: one line, never a crash
            log.warning("saved state ignored, starting from %s: %s", self.opt.preset, exc)
            return None
        if saved is None:
            return None
        guard = self.crash_guard
        if guard.tripped():
            kept = guard.set_aside()
            log.warning("crash-loop guard: the instrument stopped within %.0f s of restoring its "
                        "saved state %d times in a row; starting from %s without it (kept as %s: "
                        "delete it, or move it back to state.json to try it again)",
                        guard.healthy_s, guard.limit, self.opt.preset, kept)
            return None
        try:
            guard.starting()  # counted before anything of the state is tried
        except StateError as exc:
            log.warning("crash-loop guard off: %s", exc)
        return saved

    def _apply_saved(self, saved: Saved) -> int:
        """Write saved macro positions, then parameter values, into the current table (macros
        first: a parameter moved after its macro keeps its own value). Names this preset does
        not have are skipped. Returns how many were written."""
        plan, n = self.plan, 0
        for index, macro in enumerate(plan.macros):
            if macro.name in saved.macros:
                self.set_macro(index, saved.macros[macro.name])
                n += 1
        for slot in plan.params:
            if slot.path in saved.params:
                self.set_param_norm(slot.index, saved.params[slot.path])
                n += 1
        return n

    def _current_saved(self) -> Saved:
        """What plays now, as a state or snapshot (any thread)."""
        while True:
            path = self.preset_path
            plan, values = self.plan_and_values()
            macros = self.macro_positions()
            if plan is self.plan and path == self.preset_path:  # no load slipped in between
                return Saved(str(path), *moved_values(plan, values, macros))

    def snapshot_save(self, n: int) -> None:
        """/snapshot/save n: what plays now, written by the main loop (never the OSC thread)."""
        if self.store is None:
            log.warning("snapshot %d not saved: no state folder (--state-dir)", n)
            return
        self.pending_snapshots.put((int(n), self._current_saved()))

    def snapshot_load(self, n: int) -> None:
        """/snapshot/load n (or a program change with --program-change snapshots): through the
        coalesced request path, like a preset."""
        if self.store is None:
            log.warning("snapshot %d not loaded: no state folder (--state-dir)", n)
            return
        self._request(("snapshot", str(int(n))))

    def _snapshot(self, n: int) -> Saved:
        return self.store.load_snapshot(n)

    def _state_tick(self, now: float) -> None:
        """Main loop, every 50 ms: snapshots to write, autosave, crash guard, --watch."""
        while True:
            try:
                n, saved = self.pending_snapshots.get_nowait()
            except queue.Empty:
                break
            try:
                log.info("snapshot %d saved: %s", n, self.store.save_snapshot(n, saved))
            except StateError as exc:
                log.error("snapshot not saved: %s", exc)
        if self.crash_guard is not None:
            self.crash_guard.tick(now - self.state_started)
        if self.autosaver is not None:
            plan, values = self.plan_and_values()
            self.autosaver.observe(now, plan, values, self.macro_positions(), self.preset_path)
        if self.watcher is not None and self.watcher.poll(self.preset_path, now):
            log.info("preset file changed: %s", self.preset_path)
            self._request(("reload", str(self.preset_path)))
        if self.code_reload is not None and self.code_reload.poll(self.preset_path, now):
            if self.opt.record:
                log.warning("new code not started: --record is on (a restart would end the "
                            "recording); stop and start the instrument to use it")
            else:
                if self.store is None:
                    log.warning("no state directory (--state-dir none): the restart starts "
                                "from the command line's preset")
                self.reexec = True
                self.stop_requested.set()

    def _save_state_at_exit(self) -> None:
        if self.autosaver is not None and self.plan is not None:
            plan, values = self.plan_and_values()
            self.autosaver.observe(time.monotonic(), plan, values, self.macro_positions(),
                                   self.preset_path)
            self.autosaver.flush()
        if self.crash_guard is not None:
            self.crash_guard.clear()  # a clean stop is not a crash

    # ---- parameters, notes, controllers (any thread) ----------------------------------------
    def set_param_norm(self, index: int, norm: float) -> None:
        if 0 <= index < MAX_PARAMS:
            self.shared.tables[self.table][index] = norm

    def plan_and_values(self):
        """(plan, its normalized parameter values): a copy of its table, read together (a
        preset load swaps both at once, as one tuple)."""
        plan, table = self.playing
        return plan, self.shared.tables[table][:len(plan.params)].copy()

    def macro_positions(self) -> list[float]:
        """Each macro's position, whoever moved it last (OSC, a knob, the preset)."""
        router, plan = self.cc_router, self.plan
        if router is not None:
            try:
                return [router.macro_value(m.name) for m in plan.macros]
            except KeyError:  # a router of the previous preset, for a moment
                pass
        return list(self.macro_values)

    def set_macro(self, index: int, norm: float) -> None:
        macro = self.plan.macros[index]
        self.macro_values[index] = norm
        for router in self._routers():  # a knob on this macro must pick it up again
            router.set_macro_value(macro.name, norm)
        table = self.shared.tables[self.table]
        for param, value in macro.targets_for(norm):
            table[param] = value

    def _play(self, kind: int, channel: int, a: float, b: float, t: float | None = None):
        """Queue an event for the audio process and keep the player's state in step (under
        ``play_lock``: a restart's replay of the state must not overtake a live event)."""
        with self.play_lock:
            self.player.note(kind, channel, a, b)
            self.ring.push(kind, channel, a, b, t)

    def note_on(self, note: int, velocity: float, channel: int = 0, t: float | None = None):
        self._play(NOTE_ON, channel, note, velocity, t)

    def note_off(self, note: int, channel: int = 0, t: float | None = None):
        self._play(NOTE_OFF, channel, note, 0.0, t)

    def pitch_bend(self, bend: float, channel: int = 0, t: float | None = None):
        self._play(PITCH_BEND, channel, bend, 0.0, t)

    def channel_pressure(self, value: float, channel: int = 0, t: float | None = None):
        self._play(CHANNEL_PRESSURE, channel, value, 0.0, t)

    def poly_pressure(self, note: int, value: float, channel: int = 0, t: float | None = None):
        self.ring.push(POLY_PRESSURE, channel, note, value, t)

    def control_change(self, channel: int, cc: int, value: int, t: float | None = None,
                       mapping=None):
        """``mapping``: a port's own (a controller profile); None for the host's."""
        if self.learn is not None and self.learn.intercept(channel, cc, value, t, mapping):
            return
        if cc in ENGINE_CCS:
            self._play(CC, channel, cc, value / 127.0, t)
        if cc == CC_TIMBRE and self.player.zones.is_member(channel):
            return  # an MPE note's own timbre (engine/expression.py), not a knob
        router = self.cc_router if mapping is None else self._port_router(mapping)
        if router is not None:
            for index, norm in router.handle(channel, cc, value, t):
                self.set_param_norm(index, norm)
            if self.port_routers:
                self._share_macros(router)

    def mpe_zone(self, channel: int, members: int) -> None:
        """An MPE Configuration Message (control/mpe.py): channel 0 lower zone, 15 upper."""
        self._play(MPE_ZONE, channel, float(members), 0.0)
        log.info("MPE: %s", self.player.zones.describe())

    def midi_realtime(self, byte: int, t: float) -> None:
        self.clock.realtime(byte, t)  # clock, start, continue, stop (control/midi_clock.py)

    def song_position(self, sixteenths: int) -> None:
        self.clock.song_position(sixteenths)

    def set_tempo(self, bpm: float) -> None:
        self.clock.set_tempo(bpm)  # /tempo: until a MIDI clock says otherwise

    def panic(self) -> None:
        self._play(ALL_SOUND_OFF, 0, 0.0, 0.0)

    def on_midi(self, message, t: float, port: str = "") -> None:
        self.midi_messages += 1
        if len(message) > 1 or message and message[0] < REALTIME:  # (not the clock)
            self.midi_recent.append((self.midi_messages, port, message[:MIDI_RECENT_BYTES]))
        if self.midi_feedback is not None:  # a knob being moved gets no feedback
            self.midi_feedback.on_midi(port, message, t)
        if not dispatch_midi(message, self.midi_ports.get(port) or self._midi_port(port), t):
            self.midi_junk += 1

    def on_midi_port(self, name: str, opened: bool) -> None:
        """From the MIDI scan: a port opened (choose its mapping) or gone (release its notes)."""
        if self.midi_feedback is not None:
            self.midi_feedback.port_event(name, opened)
        if opened:
            self._midi_port(name)
            return
        port = self.midi_ports.pop(name, None)
        if port is not None:
            keys, pedal = port.held()
            if keys or pedal:
                log.info("MIDI input %s gone: releasing %d held notes%s", name, len(keys),
                         ", sustain pedal up" if pedal else "")
            port.release()

    def _midi_port(self, name: str) -> MidiPort:
        port = self.midi_ports.get(name)
        if port is None:
            from instrument.control.profiles import match_profile, port_velocity

            found = match_profile(self.profiles, name)
            mapping = found[1] if found else None
            velocity = port_velocity(found[0] if found else None, mapping or self.mapping)
            port = self.midi_ports.setdefault(name, MidiPort(self, name, mapping, velocity))
            chosen = found[0].file.name + " (profile)" if found else \
                Path(self.mapping.source).name if self.mapping else "none"
            log.info("MIDI input %s: mapping %s, velocity %s", name, chosen,
                     velocity.name if velocity else "linear")
            zones = getattr(mapping or self.mapping, "mpe", None)
            for master, members in zip((0, 15), zones or ()):  # the mapping's [mpe]
                if members:
                    self.mpe_zone(master, members)
        return port

    def _port_router(self, mapping):
        """The router of a port's own mapping, for the playing preset (built on first use)."""
        plan, table_index = self.playing
        entry = self.port_routers.get(id(mapping))
        if entry is None or entry[0] is not plan:
            from instrument.control.cc_router import CcRouter

            table = self.shared.tables[table_index]
            router = CcRouter(mapping, plan.params, plan.macros, lambda i: float(table[i]),
                              self._bend_range, plan.bend_range_st)
            for macro, norm in zip(plan.macros, self.macro_positions()):
                router.set_macro_value(macro.name, norm)
            entry = self.port_routers[id(mapping)] = (plan, router)
        return entry[1]

    def _routers(self) -> list:
        routers = [r for p, r in list(self.port_routers.values()) if p is self.plan]
        return routers + [self.cc_router] if self.cc_router is not None else routers

    def ghost_positions(self) -> dict:
        """Pickup/scale knobs away from their target's value (``CcRouter.ghosts``), for OSC."""
        ghosts = {}
        for router in self._routers():
            ghosts.update(router.ghosts())
        return ghosts

    def _share_macros(self, moved) -> None:
        """A macro one router moved is moved for the others (their knobs pick it up again)."""
        try:
            for macro in self.plan.macros:
                norm = moved.macro_value(macro.name)
                for router in self._routers():
                    if router is not moved and router.macro_value(macro.name) != norm:
                        router.set_macro_value(macro.name, norm)
        except KeyError:  # a router of the previous preset, for a moment
            pass

    def _bend_range(self, channel: int, semitones: float) -> None:
        """RPN 0 from a router: the playing preset's bend range until the next preset load."""
        from instrument.engine.events import BEND_RANGE

        self._play(BEND_RANGE, channel, semitones, 0.0)  # the player state keeps it (restart)

    def _make_cc_router(self) -> None:
        self.port_routers = {}  # the ports' routers are built again for this plan, on use
        if self.mapping is None:
            self.cc_router = None
            return
        from instrument.control.cc_router import CcRouter

        table = self.shared.tables[self.table]
        self.cc_router = CcRouter(self.mapping, self.plan.params, self.plan.macros,
                                  lambda index: float(table[index]), self._bend_range,
                                  self.plan.bend_range_st)
        for line in self.cc_router.unresolved:  # e.g. bank knobs beyond this preset's macros
            log.debug("mapping: %s", line)

    # ---- audio process ---------------------------------------------------------------------
    def _spawn_audio(self, send_plan: bool = True) -> None:
        o = self.opt
        cmd = [sys.executable, "-m", "instrument.runtime.audio_main", "--shm", self.shared.name,
               "--rate", str(o.rate), "--block", str(o.block), "--latency", str(o.latency)]
        if self.raw_record is not None:
            trim_partial_frame(self.raw_record)  # a killed predecessor's half-written frame
        for flag, value in (("--device", o.device), ("--cpu", o.cpu),
                            ("--rt-priority", o.rt_priority), ("--record", self.raw_record)):
            if value is not None:
                cmd += [flag, str(value)]
        if o.null:
            cmd.append("--null")
        if o.device is None:
            cmd.append("--null-fallback")
        self.shared.status[S_STATE] = 0.0
        self.shared.status[S_CALLBACKS] = 0.0
        with self.play_lock:
            self.shared.ring[1] = self.shared.ring[0]  # events queued while no one played: drop
            for kind, channel, a, b in self.player.restore_events():  # ...but what is still
                self.ring.push(kind, channel, a, b)  # held comes back: keys, pedal, bend, wheel
            self.ring.push(TEMPO, 0, self.clock.tempo_bpm, 0.0)  # and the tempo
        if self.audio is not None:  # the dead predecessor's end of its pipe
            try:
                self.audio.stdin.close()
            except (OSError, ValueError):
                pass
        self.audio = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=_audio_env())
        self.audio_started = time.monotonic()
        if send_plan:
            self._send_plan()

    def _send_plan(self) -> None:
        """Hand the current plan to the audio process (its first, or a swap)."""
        self.plan_seq += 1
        self._send(("plan", self.table, self.plan, self.plan_seq))

    def _send(self, message: tuple) -> None:
        """Queue a message for the audio process's stdin. A thread writes it: a plan is up to
        ~450 KB, more than a pipe holds, and the main loop must not wait for a process that is
        still importing numba."""
        if self.audio is not None and self.audio.poll() is None:
            self.outbox.put((self.audio, encode(message)))

    def _send_loop(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            proc, data = item
            if proc.poll() is not None:
                continue  # it died; its successor gets the current plan at spawn
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
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
        for sig in (signal.SIGINT, signal.SIGTERM):  # from here on: a stop is a clean stop
            signal.signal(sig, self._on_stop_signal)
        self._remove_stale_status_files()
        if self.raw_record is not None:
            kept = recover_leftover(self.raw_record, o.record, o.rate)
            if kept is not None:
                log.warning("recording: a previous run was killed before it finished its "
                            "recording; kept as %s", kept)
        # The audio process starts first: it imports numpy and numba (0.25 s here) while this
        # process compiles the preset, then waits for the plan. A bad preset stops it again.
        self._spawn_audio(send_plan=False)
        if o.mapping is not None:
            from instrument.control.mapping import load_mapping

            self.mapping = load_mapping(o.mapping)
            from instrument.control.profiles import profiles_beside

            self.profiles = profiles_beside(o.mapping)  # default mapping: per-port profiles
        from instrument.control.midi_learn import MidiLearn

        self.learn = MidiLearn(self, o.state_dir, o.learn_timeout_s)  # learned.toml layered on
        self._start_preset()  # the saved state, or o.preset; installed before the first plan
        self._send_plan()
        self.osc = OscServer(self.osc_router, o.osc_bind, o.osc_port, o.osc_allow)
        from instrument.control.osc_feedback import OscFeedback

        self.feedback = OscFeedback(self, self.osc.sock, o.osc_reply_port, o.osc_lease_s,
                                    o.osc_send)
        self.osc.feedback = self.feedback
        self.osc.start()
        self.feedback.start()
        log.info("OSC: listening on %s:%d", o.osc_bind, self.osc.port)
        from instrument.control.oscquery import start_oscquery
        from instrument.control.zeroconf_service import start_zeroconf

        self.oscquery = start_oscquery(self)
        self.zeroconf = start_zeroconf(self)  # registers in its own thread
        if not o.no_midi:
            self._open_midi()

    def _open_midi(self) -> bool:
        """Open MIDI in, and MIDI feedback out where a mapping asks for it; True if MIDI is
        there. With no MIDI system, the instrument plays from OSC only."""
        from instrument.control.midi_feedback import start_midi_feedback
        from instrument.control.midi_in import MidiInputs

        o = self.opt
        try:
            self.midi = MidiInputs(o.midi_api, o.midi, self.on_midi, on_port=self.on_midi_port)
            self.midi.start()
        except Exception as exc:  # noqa: BLE001 - no MIDI system: play from OSC only
            log.warning("no MIDI (%s)", exc)
            self.midi = None
        if self.midi is None or not self.midi.available:
            return False
        self.midi_feedback = start_midi_feedback(self)
        return True

    def _retry_midi(self, now: float) -> None:
        """On JACK, MIDI that could not be opened (a JACK server started after the
        instrument, or a client open that failed for a moment under load) is tried again every
        ``MIDI_RETRY_S`` while a JACK server answers ``jack_lsp``: MIDI comes back without a
        restart. Not on ALSA: its sequencer is there from boot, or never."""
        if self.opt.no_midi or self.opt.midi_api != "jack" or now < self.midi_retry_at or \
                (self.midi is not None and self.midi.available):
            return
        self.midi_retry_at = now + MIDI_RETRY_S
        try:
            answered = subprocess.run(["jack_lsp"], capture_output=True, timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            return
        if answered.returncode == 0 and self._open_midi():
            log.info("MIDI: JACK MIDI opened on a later try")

    def _on_stop_signal(self, *_) -> None:
        """SIGINT or SIGTERM. Only a flag: a handler runs on the main thread between two
        bytecodes, and ``stop_requested.set()`` here deadlocked when the main thread was inside
        that Event's own lock (in ``wait``): a host that never stopped (seen in a benchmark's
        SIGINT, then SIGTERM did nothing)."""
        self.stop_signalled = True

    def run(self) -> int:
        self.next_scan = self.next_status = self.next_line = time.monotonic()
        failures_logged_at = -LOAD_ERROR_LOG_S
        while not (self.stop_signalled or self.stop_requested.is_set()):
            time.sleep(0.05)  # not stop_requested.wait(): its lock is no place for a signal
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - a bug must not take the host down
                now = time.monotonic()
                if now - failures_logged_at >= LOAD_ERROR_LOG_S:  # and must not flood the log
                    log.exception("host main loop: %s: %s (carrying on)", type(exc).__name__,
                                  exc)
                    failures_logged_at = now
        return self.shutdown()

    def _tick(self) -> None:
        """One turn of the main loop (every 50 ms): preset requests, supervision, state,
        systemd, MIDI port scan (1 s), status file (1 s)."""
        request = self._take_request()
        if request is not None:
            self._load_now(request)
        self._report_load_errors()
        self._supervise()
        self._state_tick(time.monotonic())
        if self.learn is not None:
            self.learn.tick(time.monotonic())
        now = time.monotonic()
        status = self.shared.status
        if self.first_audio_s is None and status[S_FIRST_AUDIO_T] > 0:
            self.first_audio_s = status[S_FIRST_AUDIO_T] - self.opt.started
            log.info("first audio %.2f s after start", self.first_audio_s)
        self.systemd.update(now, status[S_CALLBACKS],  # watchdog: only while callbacks run
                            status[S_CALLBACKS] > 0 and status[S_STATE] == STATE_RUNNING,
                            lambda: status_text(self.plan.name, self.status_dict()))
        if self.audio_died_at is not None and status[S_CALLBACKS] > 0 and \
                status[S_STATE] == STATE_RUNNING:
            self.last_restart_s = now - self.audio_died_at
            self.audio_died_at = None
            log.info("audio running again %.2f s after the audio process died",
                     self.last_restart_s)
        if self.midi is not None and now >= self.next_scan:
            self.midi.scan()
            self.next_scan = now + 1.0
        self._retry_midi(now)
        if now >= self.next_status:
            self.cb_max_last_s_ns = float(status[S_CB_RECENT_MAX_NS])
            self.cb_gap_last_s = float(status[S_CB_RECENT_GAP_S])
            status[S_CB_RECENT_MAX_NS] = 0.0  # a callback may raise it again at once: fine
            status[S_CB_RECENT_GAP_S] = 0.0
            self.write_status_file()
            self.next_status = now + 1.0
        if self.opt.status_interval and now >= self.next_line:
            print(self.status_line(), file=sys.stderr, flush=True)
            self.next_line = now + self.opt.status_interval

    def shutdown(self) -> int:
        """Release the notes, let them ring briefly, stop the audio process, clean up."""
        if self.reexec:  # the same process goes on with new code: not stopping for systemd
            self.systemd.restarting()
        else:
            self.systemd.stopping()
        if self.code_reload is not None:
            self.code_reload.stop()
        try:
            self._save_state_at_exit()
            self._play(ALL_NOTES_OFF, 0, 0.0, 0.0)
            end = time.monotonic() + 0.3
            while time.monotonic() < end and self.shared.status[S_VOICES] > 0:
                time.sleep(0.01)
            if self.midi_feedback is not None:
                self.midi_feedback.stop()
            if self.midi is not None:
                self.midi.stop()
            for service in (self.zeroconf, self.oscquery):
                if service is not None:
                    service.stop()
            if self.feedback is not None:
                self.feedback.stop()
            if self.osc is not None:
                self.osc.stop()
            self.outbox.put(None)
            self.sender.join(timeout=2.0)
            if self.audio is not None and self.audio.poll() is None:
                self._stop_audio()
            self._finish_recording()
            self.status_path().unlink(missing_ok=True)
        finally:
            self.shared.close()
        return 0

    def _stop_audio(self) -> None:
        """Ask the audio process to quit; kill it if it does not read its pipe (a frozen
        process must not hang the host's shutdown on a full pipe) or does not exit in 3 s."""
        audio = self.audio
        try:
            if self.sender.is_alive():
                raise TimeoutError  # still stuck writing an earlier message
            os.set_blocking(audio.stdin.fileno(), False)
            audio.stdin.write(encode(("quit",)))
            audio.stdin.close()
            audio.wait(timeout=3.0)
        except (subprocess.TimeoutExpired, TimeoutError, OSError, ValueError):
            audio.kill()
            audio.wait()

    def _finish_recording(self) -> None:
        if self.raw_record is None:
            return
        try:
            frames = finish_recording(self.raw_record, self.opt.record, self.opt.rate)
        except InstrumentError as exc:
            log.error("recording not written: %s (the raw samples stay in %s)", exc,
                      self.raw_record)
            return
        if frames:
            log.info("recording: %s (%.1f s)", self.opt.record, frames / self.opt.rate)

    # ---- status ----------------------------------------------------------------------------
    def status_dict(self, running: bool = True) -> dict:
        from instrument.runtime.status import percentiles  # (numba: not before the audio starts)

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
            "callback_max_last_s_pct": round(self.cb_max_last_s_ns / block_ns * 100, 2),
            "callback_gap_max_last_s_ms": round(self.cb_gap_last_s * 1000, 3),
            "active_voices": int(s[S_VOICES]),
            "peak_l": round(float(s[S_PEAK_L]), 4),
            "peak_r": round(float(s[S_PEAK_R]), 4),
            "midi_messages": self.midi_messages,
            "midi_junk": self.midi_junk,
            "midi_recent": midi_recent_text(self.midi_recent),
            "tempo_bpm": round(self.clock.tempo_bpm, 2),
            "midi_clock": self.clock.status(time.monotonic()),
            "midi_feedback": self.midi_feedback.status() if self.midi_feedback else None,
            "osc_messages": self.osc_router.counts.messages,
            "osc_unknown": self.osc_router.counts.unknown,
            "osc_malformed": self.osc_router.counts.malformed,
            "osc_oversize": self.osc_router.counts.oversize,
            "osc_denied": self.osc_router.counts.denied,
            "bad_events": int(s[S_BAD_EVENTS]),
            "dropped_events": int(s[S_RING_DROPPED]),
            "nonfinite_resets": int(s[S_NONFINITE]),
            "modules_reset": int(s[S_MODULES_RESET]),
            "audio_restarts": self.audio_restarts,
            "last_restart_s": self.last_restart_s,
            "first_audio_s": self.first_audio_s,
            "autosaves": self.autosaver.saves if self.autosaver else 0,
            "autosave_ms": round(self.autosaver.last_cost_s * 1000, 3) if self.autosaver else 0,
            "time": time.time(),
        }

    def status_line(self) -> str:
        d = self.status_dict()
        dropped = sum(d[k] for k in ("osc_unknown", "osc_malformed", "osc_oversize", "osc_denied",
                                     "dropped_events"))
        return (f"voices {d['active_voices']}  load p50 {d['callback_p50_pct']:.1f}% p99.9 "
                f"{d['callback_p999_pct']:.1f}% max {d['callback_max_pct']:.1f}%  xruns "
                f"{d['xruns']}  midi {d['midi_messages']}  osc {d['osc_messages']} "
                f"(dropped {dropped})")

    def status_path(self) -> Path:
        return runtime_dir() / f"status-{self.osc.port if self.osc else self.opt.osc_port}.json"

    def _remove_stale_status_files(self) -> None:
        """Status files of instances that are gone (killed before they could remove theirs)."""
        for path in runtime_dir().glob("status-*.json"):
            try:
                pid = int(json.loads(path.read_text()).get("pid", 0))
            except (OSError, ValueError, AttributeError):
                pid = 0
            if pid <= 0 or not Path(f"/proc/{pid}").exists():
                path.unlink(missing_ok=True)

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
