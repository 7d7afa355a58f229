"""The event ring: host threads push timestamped events; the audio callback drains them.

Single consumer (the callback, lock-free, in numba: ``drain_ring`` here). Producers in the host
serialize on a lock, so the ring sees one producer (``ring_writer.RingWriter``). Each slot
carries a sequence number written last: the consumer takes a slot only when its sequence
matches, so it never reads a half-written event.

Timing: an event stamped at host time t is played at offset (t - previous callback time) * rate
in the next block: a constant delay of one block instead of a jitter of one block.
"""

from __future__ import annotations

from numba import njit

from instrument.runtime.shared import RING_HEADER, RING_SLOTS, SLOT_WIDTH


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
