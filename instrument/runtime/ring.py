"""The event ring: host threads push timestamped events; the audio callback drains them.

Single consumer (the callback, lock-free, in numba). Producers in the host serialize on a lock,
so the ring sees one producer. Each slot carries a sequence number written last: the consumer
takes a slot only when its sequence matches, so it never reads a half-written event.

Timing: an event stamped at host time t is played at offset (t - previous callback time) * rate
in the next block: a constant delay of one block instead of a jitter of one block.
"""

from __future__ import annotations

import threading
import time

from numba import njit

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


@njit(cache=True)
def drain_ring(ring, events, prev_time, now, sample_rate, block):
    """Move queued events into ``events`` (rows: offset, kind, channel, a, b), offsets from
    their timestamps, non-decreasing. Returns how many; the rest wait for the next block."""
    w = int(ring[0])
    r = int(ring[1])
    n = 0
    last = 0.0
    limit = events.shape[0]
    while r < w and n < limit:
        base = RING_HEADER + (r % RING_SLOTS) * SLOT_WIDTH
        if ring[base] != r + 1:
            break  # not written completely yet
        t = ring[base + 1]
        offset = (t - prev_time) * sample_rate
        if not (offset >= 0.0):
            offset = 0.0
        if offset > block - 1.0:
            offset = block - 1.0
        offset = float(int(offset))
        if offset < last:
            offset = last
        last = offset
        events[n, 0] = offset
        events[n, 1] = ring[base + 2]
        events[n, 2] = ring[base + 3]
        events[n, 3] = ring[base + 4]
        events[n, 4] = ring[base + 5]
        n += 1
        r += 1
    ring[1] = r
    return n
