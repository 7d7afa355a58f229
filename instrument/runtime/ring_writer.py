"""The host's side of the event ring (``runtime.ring`` has the layout's story and the audio
side, ``drain_ring``). No numba here: the host imports this before it starts the audio process,
and numba's import (0.2 s) would delay that start.
"""

from __future__ import annotations

import threading
import time

from instrument.runtime.shared import RING_HEADER, RING_SLOTS, SLOT_WIDTH, S_RING_DROPPED


class RingWriter:
    """The host's side of the ring."""

    def __init__(self, ring, status):
        self.ring = ring
        self.status = status
        self.lock = threading.Lock()

    def push(self, kind: int, channel: int, a: float, b: float, t: float | None = None) -> bool:
        """Queue one event; False (and counted) when the ring is full."""
        t = time.monotonic() if t is None else t
        ring = self.ring
        with self.lock:
            w = int(ring[0])
            r = int(ring[1])
            if w - r >= RING_SLOTS:
                self.status[S_RING_DROPPED] += 1
                return False
            base = RING_HEADER + (w % RING_SLOTS) * SLOT_WIDTH
            ring[base + 1] = t
            ring[base + 2] = kind
            ring[base + 3] = channel
            ring[base + 4] = a
            ring[base + 5] = b
            ring[base] = w + 1  # sequence last: the slot is complete
            ring[0] = w + 1
        return True
