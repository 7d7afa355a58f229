"""State that survives power cuts: the preset playing, what the player moved, and snapshots.

``<state dir>/state.json`` holds the current preset (its path), every parameter whose value
differs from the preset's initial value (by ``node.param``, normalized) and every macro moved
off its initial position (by name). The host's main loop hands ``Autosaver.observe`` the
playing plan and its values every loop (a numpy compare, no hook in any setter); a change is
written once it has been quiet for ``QUIET_S`` (a fader being dragged is saved when it stops,
or after ``MAX_DELAY_S`` at the latest), at most once every ``MIN_INTERVAL_S``.

Every file here is written atomically (``write_json_atomic``: a temp file in the same folder,
write, flush, fsync, ``os.replace``, fsync of the folder): after a power cut the file is the
old one or the new one, never half of one. A file that is corrupt anyway (a bad SD card) is a
``StateError``: the host logs one line and starts from the preset.

The crash-loop guard (``CrashGuard``): each start from a saved state counts one in
``<state dir>/quick-exits``; 30 s of playing, or a clean stop, clears it. When it reaches
``CRASH_LIMIT``, the saved state is what kills the instrument: it is moved aside to
``state-crashed.json`` and the instrument starts from the default preset.

Snapshots: ``<state dir>/snapshots/<n>.json`` (n 0..127), the same content as the state file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instrument.errors import InstrumentError
from instrument.fsutil import replace_atomically

log = logging.getLogger("instrument.state")

FORMAT = 1
STATE_FILE = "state.json"
CRASHED_FILE = "state-crashed.json"
COUNTER_FILE = "quick-exits"
SNAPSHOT_DIR = "snapshots"
SNAPSHOTS = 128  # /snapshot/save 0..127, like program change
MIN_INTERVAL_S = 2.0
QUIET_S = 0.5
MAX_DELAY_S = 10.0  # a value that never stops moving is saved this long after it started
CRASH_LIMIT = 3
HEALTHY_S = 30.0


class StateError(InstrumentError):
    """A state or snapshot file that cannot be read or written."""


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd's StateDirectory=), else ``$XDG_STATE_HOME/instrument``,
    else ``~/.local/state/instrument``."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])  # several StateDirectory= entries: the first
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "instrument"


@dataclass
class Saved:
    """A state or snapshot: a preset and the values moved away from its initial values."""

    preset: str
    params: dict[str, float] = field(default_factory=dict)
    macros: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        preset = os.path.abspath(self.preset)  # the state must not depend on the cwd
        return {"format": FORMAT, "preset": preset, "params": self.params,
                "macros": self.macros, "saved_at": time.time()}

    @classmethod
    def from_json(cls, data, where: str) -> "Saved":
        fix = "delete it; the instrument starts from its preset"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateError("not a state file of this version", where, fix)
        preset = data.get("preset")
        if not isinstance(preset, str) or not preset:
            raise StateError("no preset in it", where, fix)
        values = []
        for key in ("params", "macros"):
            table = data.get(key, {})
            if not isinstance(table, dict):
                raise StateError(f"'{key}' is not a table", where, fix)
            values.append({str(k): min(max(float(v), 0.0), 1.0) for k, v in table.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v)})
        return cls(preset, values[0], values[1])


def moved_values(plan, values, macro_positions) -> tuple[dict[str, float], dict[str, float]]:
    """What the player moved: ``node.param`` -> value of every parameter whose value differs
    from its initial value in ``plan``, name -> position of every macro off its initial
    position (the rule of ``Engine.swap(carry_params=True)``, plus the macros)."""
    params = {slot.path: float(values[slot.index]) for slot in plan.params
              if values[slot.index] != slot.initial_norm}
    macros = {m.name: float(pos) for m, pos in zip(plan.macros, macro_positions)
              if pos != m.initial_norm}
    return params, macros


def write_json_atomic(path: Path, data: dict) -> None:
    """Temp file beside ``path``, write, flush, fsync, ``os.replace``, fsync the folder."""
    path = Path(path)
    text = json.dumps(data, indent=1, sort_keys=True).encode()
    try:
        replace_atomically(path, text)
    except OSError as exc:
        raise StateError(f"cannot write: {exc.strerror or exc}", str(path),
                         "check that the state folder is writable (--state-dir)") from None


def read_saved(path: Path) -> Saved | None:
    """The state or snapshot at ``path``; None when there is none; StateError when it is
    corrupt (empty, cut short, not JSON, wrong shape)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read: {exc.strerror or exc}", str(path),
                         "check the state folder's permissions") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise StateError("corrupt (empty or cut short)" if len(raw) < 2 else "corrupt (not JSON)",
                         str(path), "delete it; the instrument starts from its preset") from None
    return Saved.from_json(data, str(path))


class StateStore:
    """The files of one state folder."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.state_path = self.dir / STATE_FILE

    def ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state folder: {exc.strerror or exc}",
                             str(self.dir), "choose a writable --state-dir") from None

    def load(self) -> Saved | None:
        return read_saved(self.state_path)

    def remove_temp_files(self, older_than_s: float = 60.0) -> int:
        """Temp files of writers killed mid-write (never one still being written)."""
        removed = 0
        now = time.time()
        for folder in (self.dir, self.dir / SNAPSHOT_DIR):
            for tmp in folder.glob(".*.tmp"):
                try:
                    if now - tmp.stat().st_mtime > older_than_s:
                        tmp.unlink()
                        removed += 1
                except OSError:
                    pass
        return removed

    def save(self, saved: Saved) -> None:
        self.ensure_dir()
        write_json_atomic(self.state_path, saved.to_json())

    def snapshot_path(self, n: int) -> Path:
        if not 0 <= int(n) < SNAPSHOTS:
            raise StateError(f"snapshot {n} is out of range", "/snapshot", "use 0 to 127")
        return self.dir / SNAPSHOT_DIR / f"{int(n)}.json"

    def save_snapshot(self, n: int, saved: Saved) -> Path:
        path = self.snapshot_path(n)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the snapshot folder: {exc.strerror or exc}",
                             str(path.parent), "choose a writable --state-dir") from None
        write_json_atomic(path, saved.to_json())
        return path

    def load_snapshot(self, n: int) -> Saved:
        path = self.snapshot_path(n)
        saved = read_saved(path)
        if saved is None:
            raise StateError(f"no snapshot {n}", str(path), f"save one with /snapshot/save {n}")
        return saved


class Autosaver:
    """Debounced autosave of the playing state. ``observe`` costs a copy and a compare of the
    parameter values (a few hundred floats) per call; it writes only when due."""

    def __init__(self, store: StateStore, min_interval_s: float = MIN_INTERVAL_S,
                 quiet_s: float = QUIET_S, max_delay_s: float = MAX_DELAY_S):
        self.store = store
        self.min_interval_s = min_interval_s
        self.quiet_s = quiet_s
        self.max_delay_s = max_delay_s
        self.seen = None  # (plan, values, macros, preset path) last observed
        self.dirty_since: float | None = None
        self.changed_at = 0.0
        self.saved_at = -math.inf
        self.saves = 0
        self.last_cost_s = 0.0
        self.failed = False

    def observe(self, now: float, plan, values: np.ndarray, macros: list, preset) -> bool:
        """Note the current state; write it when due. True when it wrote."""
        seen = self.seen
        if seen is None or seen[0] is not plan or seen[3] != preset or seen[2] != macros or \
                not np.array_equal(seen[1], values):
            self.seen = (plan, values, list(macros), preset)
            self.changed_at = now
            if self.dirty_since is None:
                self.dirty_since = now
        if self.dirty_since is None or now - self.saved_at < self.min_interval_s:
            return False
        if now - self.changed_at < self.quiet_s and now - self.dirty_since < self.max_delay_s:
            return False
        return self.flush(now)

    def flush(self, now: float | None = None) -> bool:
        """Write what was last observed if it was not written yet."""
        if self.dirty_since is None or self.seen is None:
            return False
        plan, values, macros, preset = self.seen
        params, moved_macros = moved_values(plan, values, macros)
        start = time.perf_counter()
        try:
            self.store.save(Saved(str(preset), params, moved_macros))
        except StateError as exc:
            if not self.failed:  # one line, not one every 2 s
                log.error("state not saved: %s", exc)
            self.failed = True
        else:
            if self.failed:
                log.info("state saved again (%s)", self.store.state_path)
            self.failed = False
            self.saves += 1
        self.last_cost_s = time.perf_counter() - start
        self.saved_at = time.monotonic() if now is None else now
        self.dirty_since = None
        return True


class CrashGuard:
    """Counts starts from a saved state that did not last ``healthy_s``; see the module doc."""

    def __init__(self, store: StateStore, limit: int = CRASH_LIMIT, healthy_s: float = HEALTHY_S):
        self.store = store
        self.path = store.dir / COUNTER_FILE
        self.limit = limit
        self.healthy_s = healthy_s
        self.armed = False  # a start from the state was counted and is not cleared yet

    def count(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def tripped(self) -> bool:
        """True when the last ``limit`` starts from the state all died quickly."""
        return self.count() >= self.limit

    def starting(self) -> None:
        """A start from the saved state: count it (cleared by ``healthy``)."""
        self.store.ensure_dir()
        write_json_atomic(self.path, self.count() + 1)
        self.armed = True

    def set_aside(self) -> Path:
        """The state that kept killing the instrument goes to state-crashed.json."""
        target = self.store.dir / CRASHED_FILE
        try:
            os.replace(self.store.state_path, target)
        except OSError:
            pass
        self.clear()
        return target

    def tick(self, running_s: float) -> None:
        if self.armed and running_s >= self.healthy_s:
            self.clear()

    def clear(self) -> None:
        self.armed = False
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
