"""``instrument run --watch``, for development: notice when the instrument's own Python code is
saved (a kernel, a module, the engine), check the new code off the audio path, then restart.

Why a restart and not a reload in place: numba's on-disk cache does not follow calls. The
fused renderer is compiled with every kernel inlined; a process that already imported the old
kernels would compile the new renderer (``engine.fused`` names it by a hash of the sources on
disk) with the old kernels and store that machine code under the new name, for every later
start to load. So new code is only ever compiled by a fresh process:

1. ``CodeWatch`` stats the package's ``.py`` files every ``POLL_S``; a file whose mtime or size
   moved is hashed, and only a new content counts (``touch`` restarts nothing).
2. ``CodeReload`` then starts ``python -m instrument.runtime.code_check PRESET``, a fresh
   process that imports the new code, compiles the playing preset and runs every native
   function the audio callback reaches once, which fills numba's cache. The old code keeps
   playing meanwhile (a kernel edit recompiles the renderer: tens of seconds on a Pi).
3. If the check fails (a syntax error, a numba typing error, a module that no longer
   validates), one line says what and where, and the old code keeps playing until a good save.
   If it passes, the host saves the player's state (preset, moved values, macros), stops, and
   ``exec``s itself with ``--restore``: the same process id (systemd keeps following it), new
   code everywhere, the state back, about a second of silence with a warm cache.

This is for development: held notes are released by the restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 1.0
SETTLE_S = 0.2  # a file younger than this may still be being written: look again later
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _sources(root: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for path in root.rglob("*.py"):
        try:
            st = path.stat()
        except OSError:
            continue
        found[path] = (st.st_mtime_ns, st.st_size)
    return found


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class CodeWatch:
    """The package's Python sources, polled: ``poll`` returns the files whose content changed
    since the last call that reported them (new and deleted files count)."""

    def __init__(self, root: Path = PACKAGE_ROOT, poll_s: float = POLL_S):
        self.root = Path(root)
        self.poll_s = poll_s
        self.stats = _sources(self.root)
        self.digests = {path: _digest(path) for path in self.stats}
        self.next_poll = 0.0

    def poll(self, now: float | None = None) -> list[Path]:
        now = time.monotonic() if now is None else now
        if now < self.next_poll:
            return []
        self.next_poll = now + self.poll_s
        stats = _sources(self.root)
        if stats == self.stats:
            return []
        fresh = time.time_ns() - SETTLE_S * 1e9
        if any(stat[0] > fresh for stat in stats.values()):
            return []  # being saved: look again at the next poll
        changed = []
        for path in sorted(set(stats) | set(self.stats)):
            if stats.get(path) == self.stats.get(path):
                continue
            digest = _digest(path) if path in stats else None
            if digest != self.digests.get(path):
                changed.append(path)
            if digest is None:
                self.digests.pop(path, None)
            else:
                self.digests[path] = digest
        self.stats = stats
        return changed


class CodeReload:
    """Turns code changes into a checked restart (see the module's docstring). ``poll`` returns
    True once new code has passed its check: the host should then save, stop and re-exec."""

    def __init__(self, watch: CodeWatch, sample_rate: int, block: int):
        self.watch = watch
        self.sample_rate = sample_rate
        self.block = block
        self.check: subprocess.Popen | None = None
        self.check_output = None
        self.pending: list[Path] = []  # changed since the last check that passed

    def poll(self, preset: Path, now: float | None = None) -> bool:
        changed = self.watch.poll(now)
        if changed:
            self.pending = sorted(set(self.pending) | set(changed))  # all unchecked changes
            names = ", ".join(self._short(p) for p in changed[:3])
            more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            log.info("code changed (%s%s): checking it while the old code plays", names, more)
            self._start_check(preset)
            return False
        if self.check is None or self.check.poll() is None:
            return False
        ok = self.check.returncode == 0
        line = self._check_line()
        self.check = None
        if ok:
            log.info("new code checked: restarting with the saved state")
            self.pending = []
            return True
        log.error("code change not applied: %s (the old code keeps playing; fix it and save "
                  "again)", line or f"the check exited with {self.check_returncode}")
        return False

    def _short(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.watch.root.parent))
        except ValueError:
            return str(path)

    def _start_check(self, preset: Path) -> None:
        self.stop()
        self.check_output = tempfile.TemporaryFile()
        self.check = subprocess.Popen(
            [sys.executable, "-m", "instrument.runtime.code_check", str(preset),
             *(str(p) for p in self.pending if p.suffix == ".py"),
             "--rate", str(self.sample_rate), "--block", str(self.block)],
            stdin=subprocess.DEVNULL, stdout=self.check_output, stderr=subprocess.STDOUT,
            cwd=os.getcwd())
        self.check_returncode = None

    def _check_line(self) -> str:
        self.check_returncode = self.check.returncode
        out = self.check_output
        self.check_output = None
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        out.close()
        problems = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error: ")]
        return problems[-1] if problems else (lines[-1] if lines else "")

    def stop(self) -> None:
        """Stop a check still running (a newer save, or the instrument stopping)."""
        if self.check is not None and self.check.poll() is None:
            self.check.kill()
            self.check.wait()
        self.check = None
        if self.check_output is not None:
            self.check_output.close()
            self.check_output = None


def reexec_args(argv: list[str]) -> list[str]:
    """The command line that starts this instrument again from its saved state."""
    args = [sys.executable, "-m", "instrument.cli.main", *argv]
    if "--restore" not in argv:
        args.append("--restore")
    return args


def reexec(argv: list[str]) -> None:
    """Replace this process with a fresh instrument (new code) started from the saved state."""
    args = reexec_args(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)
