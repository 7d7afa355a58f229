"""Saved state, snapshots and ``--watch`` through the real path: ``instrument run --null``
subprocesses with their own ``--state-dir``, driven over UDP; values read back with ``/q``.

Measured and printed (not asserted; ``pytest -s`` shows them): file save to the reloaded plan,
the cost of one autosave and how often it runs while a fader keeps moving."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from instrument.control.osc_datagram import decode_datagram
from instrument.presets import compile_file
from instrument.runtime.state_store import (
    COUNTER_FILE, CRASHED_FILE, Saved, StateStore, read_saved,
)
from live import REPO, free_udp_port, osc_dgram, status_json, wait_status

CUTOFF = "/param/filt/cutoff_hz"
RESONANCE = "/param/filt/resonance"


_RUNNING: list["Instance"] = []


@pytest.fixture(autouse=True)
def _no_instance_outlives_its_test():
    """A test that fails half-way must not leave its ``instrument run`` playing."""
    yield
    while _RUNNING:
        inst = _RUNNING.pop()
        if inst.proc.poll() is None:
            inst.proc.kill()
            inst.proc.wait(timeout=10)


class Instance:
    """``instrument run`` with its own state folder; its output lines, timestamped."""

    def __init__(self, state_dir, *args, wait=True):
        self.port = free_udp_port()
        self.state_dir = Path(state_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "instrument.cli.main", "run", *args, "--null", "--no-midi",
             "--osc-port", str(self.port), "--osc-bind", "127.0.0.1", "--no-zeroconf",
             "--oscquery-port", "0", "--state-dir", str(state_dir)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _RUNNING.append(self)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.status = {}
        if wait:
            self.status = wait_status(self.port, lambda d: d.get("callbacks", 0) > 0, 60)
            assert self.status, self.output()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def matching(self, text):
        return [(t, line) for t, line in self.lines if text in line]

    def wait_matching(self, text, count=1, timeout_s=2.0):
        """``matching(text)`` once it has ``count`` lines (the output is read by a thread, a
        moment after the instrument acted), or whatever it has after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while len(self.matching(text)) < count and time.monotonic() < end:
            time.sleep(0.02)
        return self.matching(text)

    def send(self, address, *args):
        self.sock.sendto(osc_dgram(address, *args), ("127.0.0.1", self.port))

    def query(self, address, seconds=0.5) -> float:
        """The value ``/q`` answers for ``address``."""
        while True:  # drop what earlier messages brought (first-contact dump, feedback)
            try:
                self.sock.recvfrom(65536)
            except socket.timeout:
                break
        self.send("/q", address)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            for a, args in decode_datagram(data):
                if a == address and args and isinstance(args[0], float):
                    return args[0]
        raise AssertionError(f"no answer to /q {address}\n{self.output()}")

    def wait_value(self, address, expected, timeout_s=3.0, tol=1e-6) -> float:
        end = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < end:
            value = self.query(address, 0.3)
            if abs(value - expected) < tol:
                return value
        raise AssertionError(f"{address} is {value}, not {expected}\n{self.output()}")

    def current(self) -> dict:
        return status_json(self.port)

    def kill_host(self) -> None:
        """SIGKILL the host (a power cut, for the host), then its orphaned audio process."""
        audio_pid = self.current().get("audio_pid") or self.status.get("audio_pid")
        self.proc.kill()
        self.proc.wait(timeout=10)
        if audio_pid:
            try:
                os.kill(int(audio_pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.reader.join(timeout=5)
        self.sock.close()

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.reader.join(timeout=5)
        self.sock.close()
        out = self.output()
        assert self.proc.returncode == 0, out
        assert "Traceback" not in out, out
        return out


def wait_state(state_dir, ok, timeout_s=6.0) -> Saved:
    end = time.monotonic() + timeout_s
    saved = None
    while time.monotonic() < end:
        saved = read_saved(Path(state_dir) / "state.json")
        if saved is not None and ok(saved):
            return saved
        time.sleep(0.05)
    raise AssertionError(f"state not saved as expected: {saved}")


def norm(plan, path, value):
    return plan.params[plan.param_index(path)].spec.to_norm(value)


def test_state_survives_sigterm_and_sigkill(tmp_path):
    state = tmp_path / "state"
    pad = str(REPO / "presets" / "pad.toml")
    a = Instance(state, pad)  # named on the command line: no restore
    a.send(CUTOFF, 0.8)
    a.send("/macro/chorus", 0.2)
    a.send(RESONANCE, 0.65)  # after the macros: its own value
    t0 = time.monotonic()
    saved = wait_state(state, lambda s: "filt.resonance" in s.params and "chorus" in s.macros)
    print(f"\nautosave: on disk {time.monotonic() - t0:.2f} s after the last move "
          f"(debounce 0.5 s quiet, at most every 2 s)")
    assert saved.preset == pad
    assert abs(saved.params["filt.cutoff_hz"] - 0.8) < 1e-6
    st = wait_status(a.port, lambda d: d.get("autosaves", 0) >= 1)
    print(f"autosave: {st['autosaves']} saves, last one took {st['autosave_ms']:.2f} ms "
          "(write + fsync + rename + fsync of the folder)")
    a.stop()

    b = Instance(state)  # no preset: the saved state
    assert b.status["preset"] == pad, b.output()
    assert b.matching("restored: Warm Pad"), b.output()
    assert abs(b.query(CUTOFF) - 0.8) < 1e-6
    assert abs(b.query(RESONANCE) - 0.65) < 1e-6
    b.send(CUTOFF, 0.25)
    b.send("/macro/space", 0.9)
    wait_state(state, lambda s: abs(s.params.get("filt.cutoff_hz", 0) - 0.25) < 1e-6
               and "space" in s.macros)
    b.kill_host()

    c = Instance(state, "presets/poly16.toml", "--restore")  # poly16 only as the fallback
    assert c.status["preset"] == pad, c.output()
    assert abs(c.query(CUTOFF) - 0.25) < 1e-6
    assert abs(c.query(RESONANCE) - 0.65) < 1e-6
    c.send("/sync")  # the macros come back too: /macro/space and /macro/chorus as saved
    got = {}
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        try:
            data, _ = c.sock.recvfrom(65536)
        except socket.timeout:
            continue
        got.update(dict(decode_datagram(data)))
    assert abs(got["/macro/space"][0] - 0.9) < 1e-6 and abs(got["/macro/chorus"][0] - 0.2) < 1e-6
    c.stop()

    d = Instance(state, "presets/poly16.toml")  # named, no --restore: poly16 as it is
    assert d.status["preset"] == "presets/poly16.toml"
    plan = compile_file(REPO / "presets" / "poly16.toml", 48000, 64)
    assert abs(d.query(CUTOFF) - norm(plan, "filt.cutoff_hz", 300)) < 1e-6
    d.stop()


def test_autosave_rate_while_a_fader_keeps_moving(tmp_path):
    inst = Instance(tmp_path, "presets/poly16.toml")
    start = wait_status(inst.port, lambda d: d.get("autosaves", 0) >= 1)["autosaves"]
    for i in range(40):  # 8 s of a fader moved every 0.2 s: never quiet for 0.5 s
        inst.send(CUTOFF, i / 40)
        time.sleep(0.2)
    during = status_json(inst.port)["autosaves"] - start
    for i in range(8):  # 8 s of one move a second: quiet after each
        inst.send(CUTOFF, 0.5 + i / 20)
        time.sleep(1.0)
    st = status_json(inst.port)
    print(f"\nautosave rate: {during} saves in 8 s of continuous moves (saved after 10 s "
          f"at the latest), {st['autosaves'] - start - during} in 8 s of one move a second "
          f"(at most one every 2 s); last save {st['autosave_ms']:.2f} ms")
    assert st["autosaves"] - start - during <= 5
    inst.stop()


WRITER = textwrap.dedent("""
    import sys
    from instrument.runtime.state_store import Saved, StateStore
    store = StateStore(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        store.save(Saved("/presets/p%d.toml" % i, {"n%d.p" % k: i / 1e6 for k in range(40)},
                         {"m": i / 1e6}))
""")


def test_kill_during_autosave_never_leaves_a_broken_state(tmp_path):
    store = StateStore(tmp_path)
    store.save(Saved("/presets/p0.toml", {f"n{k}.p": 0.0 for k in range(40)}, {"m": 0.0}))
    rng = random.Random(7)
    generations = set()
    for _ in range(50):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.03))
        writer.kill()
        writer.wait()
        writer.stdout.close()
        saved = store.load()  # never None, never a StateError: old or new, complete
        values = set(saved.params.values())
        assert len(saved.params) == 40 and len(values) == 1, saved
        i = round(values.pop() * 1e6)
        assert saved.preset == f"/presets/p{i}.toml" and abs(saved.macros["m"] - i / 1e6) < 1e-12
        generations.add(i)
    leftovers = list(tmp_path.glob(".*.tmp"))
    assert store.remove_temp_files(older_than_s=-1) == len(leftovers)
    print(f"\nkill during autosave: 50 kills, {len(generations)} different complete states "
          f"read back, {len(leftovers)} temp files left by the kills (removed at start)")
    assert len(generations) > 5  # the kills did land during writing


def test_corrupt_state_is_one_warning_and_a_start_from_the_preset(tmp_path):
    (tmp_path / "state.json").write_bytes(b'{"format": 1, "preset": "/x.to')  # cut short
    inst = Instance(tmp_path)
    assert inst.status["preset"].endswith("init.toml")
    out = inst.stop()
    assert len([line for line in out.splitlines() if "saved state ignored" in line]) == 1, out
    (tmp_path / "state.json").write_bytes(b"")
    inst = Instance(tmp_path)
    assert inst.status["preset"].endswith("init.toml")
    assert "corrupt" in inst.stop()


def test_crash_loop_guard(tmp_path):
    pad = str(REPO / "presets" / "pad.toml")
    store = StateStore(tmp_path)
    store.save(Saved(pad, {"filt.cutoff_hz": 0.9}, {}))
    a = Instance(tmp_path)  # a start from the state is counted...
    assert a.status["preset"] == pad
    assert (tmp_path / COUNTER_FILE).read_text().strip() == "1"
    a.kill_host()  # ...and a death before 30 s leaves it counted
    assert (tmp_path / COUNTER_FILE).read_text().strip() == "1"

    (tmp_path / COUNTER_FILE).write_text("3")  # three quick deaths in a row
    b = Instance(tmp_path)
    assert b.status["preset"].endswith("init.toml"), b.output()
    guard = b.matching("crash-loop guard")
    assert len(guard) == 1 and CRASHED_FILE in guard[0][1], b.output()
    assert (tmp_path / CRASHED_FILE).exists() and not (tmp_path / COUNTER_FILE).exists()
    b.stop()
    c = Instance(tmp_path)  # a clean stop reset it; the new state (init) is restored
    assert c.status["preset"].endswith("init.toml")
    c.stop()
    assert not (tmp_path / COUNTER_FILE).exists()


def test_snapshots_over_udp(tmp_path):
    inst = Instance(tmp_path, "presets/poly16.toml")
    poly16 = inst.status["preset"]
    inst.send(CUTOFF, 0.8)
    inst.send("/snapshot/save", 3)
    snap = tmp_path / "snapshots" / "3.json"
    end = time.monotonic() + 3
    while not snap.exists() and time.monotonic() < end:
        time.sleep(0.05)
    data = json.loads(snap.read_text())
    assert abs(data["params"]["filt.cutoff_hz"] - 0.8) < 1e-6
    inst.send(CUTOFF, 0.1)
    inst.send("/preset/load", "pad")
    wait_status(inst.port, lambda d: d["preset"].endswith("pad.toml"))
    inst.send("/snapshot/load", 3)
    st = wait_status(inst.port, lambda d: d["preset"].endswith("poly16.toml"))
    assert st["preset"].endswith("poly16.toml"), inst.output()
    inst.wait_value(CUTOFF, 0.8)
    before = status_json(inst.port)["osc_malformed"]
    inst.send("/snapshot/save", 128)
    inst.send("/snapshot/load", -1)
    inst.send("/snapshot/load", "3")
    inst.send("/snapshot/load", 42)  # in range, never saved: one line, nothing changes
    st = wait_status(inst.port, lambda d: d["osc_malformed"] >= before + 3)
    assert st["osc_malformed"] == before + 3
    time.sleep(0.3)
    assert inst.matching("no snapshot 42")
    assert status_json(inst.port)["preset"].endswith("poly16.toml")
    assert poly16.endswith("poly16.toml")
    inst.stop()


def _set_cutoff(text: str, hz: int) -> str:
    return text.replace("cutoff_hz = 300", f"cutoff_hz = {hz}", 1)


def test_watch_reloads_the_preset_keeping_what_was_moved(tmp_path):
    original = (REPO / "presets" / "poly16.toml").read_text()
    assert "cutoff_hz = 300" in original
    preset = tmp_path / "live.toml"
    preset.write_text(original)
    inst = Instance(tmp_path / "state", str(preset), "--watch")
    inst.send(RESONANCE, 0.9)  # moved by the player: kept across reloads
    inst.wait_value(RESONANCE, 0.9)

    edited = tmp_path / "edited.toml"
    edited.write_text(_set_cutoff(original, 1000))
    expected = norm(compile_file(edited, 48000, 64), "filt.cutoff_hz", 1000)
    saved_at = time.monotonic()
    preset.write_text(edited.read_text())
    inst.wait_value(CUTOFF, expected, timeout_s=3.0)
    heard_at = time.monotonic()
    loaded = inst.wait_matching("preset reloaded")
    assert loaded, inst.output()
    print(f"\n--watch: file saved -> reload logged {loaded[0][0] - saved_at:.3f} s, -> new value "
          f"answered by /q {heard_at - saved_at:.3f} s (polls every 0.25 s)")
    assert heard_at - saved_at < 1.5
    assert abs(inst.query(RESONANCE) - 0.9) < 1e-6

    callbacks = status_json(inst.port)["callbacks"]
    preset.write_text(original.replace("[voice.nodes.filt]", "[voice.nodes.filt", 1))
    time.sleep(1.5)
    errors = inst.matching("preset not loaded")
    assert len(errors) == 1 and "live.toml" in errors[0][1], inst.output()
    print(f"--watch: a broken save logs: {errors[0][1]}")
    st = wait_status(inst.port, lambda d: d["callbacks"] > callbacks + 100)
    assert st["callbacks"] > callbacks and st["preset"] == str(preset)
    assert abs(inst.query(CUTOFF) - expected) < 1e-6  # the old sound keeps playing

    preset.write_text(_set_cutoff(original, 2000))
    inst.wait_value(CUTOFF, norm(compile_file(preset, 48000, 64), "filt.cutoff_hz", 2000))
    assert abs(inst.query(RESONANCE) - 0.9) < 1e-6
    assert len(inst.wait_matching("preset reloaded", 2)) == 2
    inst.stop()


# ---- units: the debounce, the guard's clock, program change to snapshots ----------------------

class _Plan:
    def __init__(self):
        from types import SimpleNamespace

        self.params = (SimpleNamespace(index=0, path="a.x", initial_norm=0.5),
                       SimpleNamespace(index=1, path="a.y", initial_norm=0.25))
        self.macros = (SimpleNamespace(name="m", initial_norm=0.0),)


def test_autosaver_debounce(tmp_path):
    import numpy as np

    from instrument.runtime.state_store import Autosaver

    store = StateStore(tmp_path)
    saver = Autosaver(store, min_interval_s=2.0, quiet_s=0.5, max_delay_s=10.0)
    plan = _Plan()
    values = np.array([0.5, 0.25])
    assert not saver.observe(0.0, plan, values, [0.0], "p.toml")  # the start: dirty
    assert saver.observe(0.5, plan, values, [0.0], "p.toml")  # quiet 0.5 s: written
    assert store.load().params == {} and store.load().macros == {}
    t = 0.5
    for step in range(100):  # moving every 50 ms for 5 s: never quiet, not written
        t += 0.05
        assert not saver.observe(t, plan, np.array([step / 100, 0.25]), [0.0], "p.toml")
    assert not saver.observe(t + 0.05, plan, np.array([0.99, 0.25]), [0.3], "p.toml")
    t += 0.05
    assert not saver.observe(t + 0.4, plan, np.array([0.99, 0.25]), [0.3], "p.toml")
    assert saver.observe(t + 0.5, plan, np.array([0.99, 0.25]), [0.3], "p.toml")
    saved = store.load()
    assert saved.params == {"a.x": 0.99} and saved.macros == {"m": 0.3}
    assert saved.preset == os.path.abspath("p.toml")
    t += 0.6
    assert not saver.observe(t, plan, np.array([0.7, 0.25]), [0.3], "p.toml")
    assert not saver.observe(t + 0.6, plan, np.array([0.7, 0.25]), [0.3], "p.toml")  # < 2 s
    assert saver.observe(t + 2.0, plan, np.array([0.7, 0.25]), [0.3], "p.toml")
    t += 2.0
    for step in range(300):  # a fader that never stops: saved after max_delay_s anyway
        t += 0.05
        if saver.observe(t, plan, np.array([step / 300, 0.25]), [0.3], "p.toml"):
            break
    assert 9.9 < step * 0.05 < 10.2 and saver.saves == 4


def test_crash_guard_counts_and_clears(tmp_path):
    from instrument.runtime.state_store import CrashGuard

    store = StateStore(tmp_path)
    guard = CrashGuard(store, limit=3, healthy_s=30.0)
    for n in (1, 2, 3):
        assert not guard.tripped()
        guard.starting()
        assert guard.count() == n
    assert guard.tripped()
    guard.tick(29.0)
    assert guard.count() == 3
    guard.tick(30.0)
    assert guard.count() == 0 and not guard.tripped()


def test_program_change_selects_snapshots_when_asked():
    from types import SimpleNamespace

    from instrument.runtime.host import Host

    loaded = []
    host = SimpleNamespace(opt=SimpleNamespace(program_change="snapshots"),
                           snapshot_load=loaded.append)
    Host.program_change(host, 5)
    assert loaded == [5]


def test_watch_restarts_on_new_code_and_keeps_playing_on_broken_code(tmp_path):
    """--watch, development: a saved source file of the package is checked in a fresh process
    while the old code plays; good code restarts the instrument in the same process (exec)
    with what was moved restored; broken code is one line and the old code keeps playing.
    The edited file is a probe added to the package (a kernel edit works the same way but
    recompiles the renderer: tens of seconds, too long for the suite)."""
    probe = REPO / "instrument" / f"_code_watch_probe_{os.getpid()}.py"
    inst = Instance(tmp_path / "state", "presets/poly16.toml", "--watch")
    try:
        first = inst.current()
        inst.send(RESONANCE, 0.9)
        inst.wait_value(RESONANCE, 0.9)
        wait_state(tmp_path / "state", lambda s: abs(s.params.get("filt.resonance", 0) - 0.9)
                   < 1e-6)

        saved_at = time.monotonic()
        probe.write_text("VALUE = 1\n")
        st = wait_status(inst.port, lambda d: d.get("audio_pid") != first["audio_pid"] and
                         d.get("callbacks", 0) > 0, 90)
        restarted = inst.matching("new code checked: restarting")
        assert restarted and st, inst.output()
        assert st["pid"] == first["pid"] == inst.proc.pid  # exec: the same process goes on
        assert len(inst.matching("first audio")) == 2, inst.output()
        print(f"\n--watch: code saved -> checked {restarted[0][0] - saved_at:.2f} s, -> playing "
              f"again {inst.matching('first audio')[-1][0] - saved_at:.2f} s")
        assert abs(inst.query(RESONANCE) - 0.9) < 1e-6  # restored from the saved state

        playing = inst.current()
        probe.write_text("def broken(:\n")
        end = time.monotonic() + 60
        while time.monotonic() < end and not inst.matching("code change not applied"):
            time.sleep(0.2)
        errors = inst.matching("code change not applied")
        assert len(errors) == 1, inst.output()
        assert f"{probe.name}:1: SyntaxError" in errors[0][1], errors[0][1]
        print(f"--watch: broken code logs: {errors[0][1]}")
        later = wait_status(inst.port, lambda d: d["callbacks"] > playing["callbacks"] + 100)
        assert later["audio_pid"] == playing["audio_pid"]  # the old code keeps playing
        assert len(inst.matching("first audio")) == 2
        assert abs(inst.query(RESONANCE) - 0.9) < 1e-6
    finally:
        probe.unlink(missing_ok=True)
        inst.stop()
