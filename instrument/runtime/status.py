"""Status: the audio process counts, the host reports. ``record_block`` runs in the callback."""

from __future__ import annotations

from numba import njit

from instrument.layout import E_ACTIVE_VOICES, E_BAD_EVENTS
from instrument.engine.output_stage import LIM_ENGAGED, LIM_PEAK_L, LIM_PEAK_R
from instrument.runtime.shared import (
    HIST_BINS, S_BAD_EVENTS, S_CALLBACKS, S_CB_MAX_NS, S_CB_RECENT_GAP_S, S_CB_RECENT_MAX_NS,
    S_HIST, S_LATE, S_LIMITER, S_PEAK_L,
    S_PEAK_R, S_VOICES, STATUS_WIDTH,
)


@njit(cache=True)
def record_block(status, eng, lim, duration_ns, deadline_ns, gap_s):
    """Count one callback: duration histogram (2.5% of the deadline per bin), late blocks,
    worst duration, meters (peak hold until the host reads and clears them), voices, and the
    longest time between two callback starts (``gap_s``; one period when all is well). The
    duration is measured once the callback runs, so a callback kept waiting for the GIL shows
    only in the gap."""
    status[S_CALLBACKS] += 1.0
    frac = duration_ns / deadline_ns
    b = int(frac * 40.0)
    if b >= HIST_BINS:
        b = HIST_BINS - 1
    status[S_HIST + b] += 1.0
    if frac > 1.0:
        status[S_LATE] += 1.0
    if duration_ns > status[S_CB_MAX_NS]:
        status[S_CB_MAX_NS] = duration_ns
    if duration_ns > status[S_CB_RECENT_MAX_NS]:
        status[S_CB_RECENT_MAX_NS] = duration_ns
    if gap_s > status[S_CB_RECENT_GAP_S]:
        status[S_CB_RECENT_GAP_S] = gap_s
    status[S_PEAK_L] = max(status[S_PEAK_L], lim[LIM_PEAK_L])
    status[S_PEAK_R] = max(status[S_PEAK_R], lim[LIM_PEAK_R])
    status[S_VOICES] = eng[E_ACTIVE_VOICES]
    status[S_BAD_EVENTS] = eng[E_BAD_EVENTS]
    status[S_LIMITER] = lim[LIM_ENGAGED]


def percentiles(status, qs=(50.0, 99.0, 99.9)) -> dict:
    """Callback-duration percentiles in % of the deadline, from the histogram (bin upper edges)."""
    hist = status[S_HIST:S_HIST + HIST_BINS]
    total = float(hist.sum())
    result = {}
    for q in qs:
        if total == 0:
            result[q] = 0.0
            continue
        need = total * q / 100.0
        acc = 0.0
        for i, count in enumerate(hist):
            acc += count
            if acc >= need:
                result[q] = (i + 1) * 2.5
                break
    return result


assert STATUS_WIDTH > S_HIST
