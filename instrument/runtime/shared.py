"""Shared memory between the host and the audio process: parameter tables, the event ring and
the status block. The host creates it; the audio process attaches by name.

- Parameter tables: two float64 tables of MAX_PARAMS normalized targets. The plan playing reads
  one of them as its ``ptarget``; the host writes parameter changes straight into it (the
  latest value wins, so a flood of messages is coalesced per block by construction). A plan
  swap fills the other table first, then hands it over.
- Event ring: single-producer (the host, behind a lock) / single-consumer (the audio callback)
  ring of timestamped events; see ``ring.py``.
- Status block: counters and meters the audio process writes and the host reports; ``S_*``.
  ``S_PLAN_ACK`` is the sequence number of the last plan the audio process finished adopting
  (crossfade over, old instance released): the host sends the next plan only after it.
  ``S_CB_RECENT_MAX_NS`` is the worst callback since the host last read and cleared it (once a
  second, with the status file), beside ``S_CB_MAX_NS``, the worst since the start;
  ``S_CB_RECENT_GAP_S`` likewise the longest time between two callback starts.
"""

from __future__ import annotations

import os
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

MAX_PARAMS = 1024
RING_SLOTS = 1024
SLOT_WIDTH = 6  # sequence, time_s, kind, channel, a, b
RING_HEADER = 2  # write count, read count

HIST_BINS = 40  # callback duration histogram, 2.5% of the deadline per bin (last: >= 97.5%)
(S_STATE, S_CALLBACKS, S_XRUNS, S_LATE, S_CB_MAX_NS, S_PEAK_L, S_PEAK_R, S_VOICES,
 S_BAD_EVENTS, S_NONFINITE, S_RING_DROPPED, S_AUDIO_PID, S_FIRST_AUDIO_T, S_SAMPLE_RATE,
 S_BLOCK, S_TABLE, S_LIMITER, S_NULL_OUTPUT, S_MODULES_RESET, S_PLAN_ACK, S_CB_RECENT_MAX_NS,
 S_CB_RECENT_GAP_S, S_HIST) = range(23)
STATUS_WIDTH = S_HIST + HIST_BINS
STATE_STARTING, STATE_RUNNING, STATE_STOPPED = 0.0, 1.0, 2.0

_SIZES = {
    "params": 2 * MAX_PARAMS,
    "ring": RING_HEADER + RING_SLOTS * SLOT_WIDTH,
    "status": STATUS_WIDTH,
}


def shared_size(block: str) -> int:
    """Number of float64 values in the shared block ``block`` ("params", "ring", "status")."""
    return _SIZES[block]


_CREATED_HERE: set[str] = set()  # blocks this process created (and its tracker watches)


class SharedState:
    """Views on the shared blocks. ``create=True`` (host) makes them; else attach by ``name``."""

    def __init__(self, name: str | None = None, create: bool = False):
        self.name = name or f"instrument-{os.getpid()}"
        self._blocks = {}
        self.arrays = {}
        for key, size in _SIZES.items():
            shm_name = f"{self.name}-{key}"
            if create:
                try:  # a stale block from a crashed run with the same name
                    stale = shared_memory.SharedMemory(name=shm_name)
                    stale.close()
                    stale.unlink()
                except FileNotFoundError:
                    pass
                block = shared_memory.SharedMemory(name=shm_name, create=True, size=size * 8)
                _CREATED_HERE.add(shm_name)
            else:
                block = shared_memory.SharedMemory(name=shm_name)
                if shm_name not in _CREATED_HERE:
                    _untrack(block)
            self._blocks[key] = block
            arr = np.ndarray((size,), dtype=np.float64, buffer=block.buf)
            if create:
                arr[:] = 0.0
            self.arrays[key] = arr
        self.owner = create
        self.tables = self.arrays["params"].reshape(2, MAX_PARAMS)
        self.ring = self.arrays["ring"]
        self.status = self.arrays["status"]

    def close(self) -> None:
        self.arrays.clear()
        self.tables = self.ring = self.status = None
        for block in self._blocks.values():
            try:
                block.close()
                if self.owner:
                    block.unlink()
            except (FileNotFoundError, BufferError):
                pass
        self._blocks.clear()


def remove_stale_blocks() -> int:
    """Remove blocks left by hosts that were killed (their pid is gone); returns how many."""
    removed = 0
    for path in Path("/dev/shm").glob("instrument-*-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _untrack(block) -> None:
    """Python's resource tracker would unlink blocks a child merely attached to when it exits;
    the host owns them."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.unregister(block._name, "shared_memory")  # noqa: SLF001
    except Exception:  # noqa: BLE001 - best effort; older Pythons track differently
        pass
