"""``instrument run --watch``: notice when the playing preset's file is saved.

The host's main loop calls ``PresetWatch.poll`` with the current preset's path; every
``POLL_S`` it stats the file, and when its mtime or size moved it reads and hashes it: only a
new content counts (an editor that saves unchanged text, or ``touch``, reloads nothing). The
host then compiles the file (never the audio process) and swaps the plan in with the usual
crossfade, keeping what the player moved.

Polling, not inotify: no new dependency (inotify needs a package or ctypes), it works the same
on every filesystem (NFS, sshfs, FUSE and 9p mounts send no inotify events for changes made on
the other side), and editors that save by writing a new file and renaming it over the old one
(vim, many IDEs) replace the inode an inotify watch is attached to. Four stats a second cost
nothing next to the audio.

A file caught in the middle of a save (mtime younger than ``SETTLE_S``) is looked at again at
the next poll, so a slow editor's half-written file is not compiled.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

POLL_S = 0.25
SETTLE_S = 0.05


def _stat(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


class PresetWatch:
    def __init__(self, poll_s: float = POLL_S):
        self.poll_s = poll_s
        self.path: Path | None = None
        self.stat = None
        self.digest: str | None = None
        self.next_poll = 0.0

    def follow(self, path: Path) -> None:
        """Watch ``path`` from its current content on (a preset was just loaded)."""
        self.path = Path(path)
        self.stat = _stat(self.path)
        self.digest = _digest(self.path)

    def poll(self, path: Path, now: float | None = None) -> bool:
        """True when ``path``'s content changed since the last call that saw it (a different
        path is followed from its current content, no change reported)."""
        now = time.monotonic() if now is None else now
        if now < self.next_poll:
            return False
        self.next_poll = now + self.poll_s
        if self.path is None or Path(path) != self.path:
            self.follow(path)
            return False
        stat = _stat(self.path)
        if stat is None or stat == self.stat:
            return False  # gone for a moment (a rename-save), or unchanged
        if time.time_ns() - stat[0] < SETTLE_S * 1e9:
            return False  # being written: look again at the next poll
        digest = _digest(self.path)
        if digest is None:
            return False
        self.stat = stat
        if digest == self.digest:
            return False
        self.digest = digest
        return True
