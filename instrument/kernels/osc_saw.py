"""Saw and hard-synced saw kernels, band-limited by the minBLEP of ``instrument.kernels.minblep``
(its docstring: method, passes, measured alias levels and costs); voice lanes."""

import math

import numpy as np
from numba import njit

from instrument.kernels.coefficients import pitch_increments, steady_pitch
from instrument.kernels.minblep import (
    EVENT_SLOTS, MAX_INC, MIN_INC, STEP_DELAY, STEP_TABLE, clear_rows, flush_events,
    phase_pass, push_event, shift_carried, shift_corrections, wrapped_phase,
)
from instrument.kernels.noalias import WIDE_LANES, lane_loop
from instrument.kernels.steady import row_steady
from instrument.layout import ROW_SINK

# ---- saw and hard-synced saw ---------------------------------------------------------------
# State rows: phase of the last sample (unwrapped during pass A), the phase before the segment
# (pass B), increment per Hz at s0 and its slope, the sync input before the segment, the phase
# increment of a steady segment; then the correction buffer.
_S_LAST, _S_PREV, _S_INC, _S_DINC, _S_SYNC_PREV, _S_DT = range(6)  # _S_DT: a steady increment
SAW_EVENTS = 6  # EVENT_SLOTS x (position, height)
SAW_FIXED = SAW_EVENTS + 2 * EVENT_SLOTS


@lane_loop
def _sync_phase_pass(pitch, ratio, sync, out, st, s0, s1, nl):
    """Pass A of the synced saw: like ``phase_pass`` at ``ratio`` times the pitch, and a
    rising edge of ``sync`` (above 0 after at most 0) restarts the phase where it is d = 1 -
    min(sync, 1) samples after the restart, adding 1 to the wrap count."""
    last, inc, dinc, sprev = st[_S_LAST], st[_S_INC], st[_S_DINC], st[_S_SYNC_PREV]
    for i in range(s0, s1):
        for v in range(nl):  # the effective pitch first: fewer arrays in the next loop
            out[i, v] = pitch[i, v] * ratio[i, v]
    for i in range(s0, s1):
        k = i - s0
        before = sync[i - 1] if i > s0 else sprev
        for v in range(nl):
            dt = min(max(out[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            s = sync[i, v]
            u = last[v] + dt
            restart = np.floor(last[v]) + 1.0 + dt * (1.0 - min(s, 1.0))
            u = restart if (s > 0.0) & (before[v] <= 0.0) else u
            last[v] = u
            out[i, v] = u - np.floor(u)


@lane_loop
def _sync_pass_b(pitch, ratio, sync, out, st, s0, s1, nl):
    """Pass B of the synced saw: residuals of the wraps (a step of -2, d = t / dt samples
    before the sample) and of the restarts (a step of -2 q from the phase q a restart
    interrupted), per voice, scanning the segment (a restart can come anywhere)."""
    last, prev, inc, dinc = st[_S_LAST], st[_S_PREV], st[_S_INC], st[_S_DINC]
    sprev = st[_S_SYNC_PREV]
    ev = SAW_EVENTS
    for v in range(nl):
        if last[v] >= 1.0:
            tp = prev[v]
            sp = sprev[v]
            ne = 0
            for i in range(s0, s1):
                t = out[i, v]
                s = sync[i, v]
                if s > 0.0 and sp <= 0.0:
                    if ne > EVENT_SLOTS - 2:
                        flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    k = i - s0
                    dt = min(max(pitch[i, v] * ratio[i, v] * (inc[v] + dinc[v] * k), MIN_INC),
                             MAX_INC)
                    d = 1.0 - min(s, 1.0)
                    q = tp + dt * (1.0 - d)
                    if q >= 1.0:  # wrapped on its own before the restart
                        ne = push_event(st, ev, ne, v, k, 1.0 - (1.0 - tp) / dt, -2.0)
                        q -= 1.0
                    ne = push_event(st, ev, ne, v, k, d, -2.0 * q)
                elif t < tp:
                    if ne > EVENT_SLOTS - 1:
                        flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                        ne = 0
                    d = t / (t + 1.0 - tp)
                    ne = push_event(st, ev, ne, v, i - s0, d, -2.0)
                tp = t
                sp = s
            flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
        last[v] = wrapped_phase(last[v])
        prev[v] = last[v]
        sprev[v] = sync[s1 - 1, v]


@lane_loop
def _steady_increments(pitch, io_pitch, ctx, st, s0, nl):
    """Whether every lane's phase increment holds through the segment (``steady_pitch``); if
    so, the increments go to row ``_S_DT``."""
    if not steady_pitch(io_pitch, ctx, st, _S_INC, nl):
        return False
    for v in range(nl):
        st[_S_DT, v] = min(max(pitch[s0, v] * st[_S_INC, v], MIN_INC), MAX_INC)
    return True


@njit(cache=True, inline="always")
def _steady_phase(start, dt, k):
    """The unwrapped phase k samples into a steady segment (k = 1 on its first sample):
    start + k x increment, no sum carried from sample to sample (so no chain through memory),
    and the one expression the steady path computes it by, so its wraps and its ramp agree."""
    return start + dt * k


@lane_loop
def _steady_wraps(sync_out, write_sync, st, s0, s1, nl):
    """Pass B at steady increments, without a phase row: wrap j of a voice is at the first
    sample whose phase (``_steady_phase``) reaches j, found from (j - start) / increment and
    checked against the phase expression itself, so it is the sample the bisection of
    ``_wrap_residuals`` finds on a written phase row; d = (phase - j) / (its step) samples
    before it, a step of -2. A non-finite phase places none."""
    start, dt = st[_S_LAST], st[_S_DT]
    ev = SAW_EVENTS
    n = s1 - s0
    for v in range(nl):
        p0 = start[v]
        inc = dt[v]
        end = _steady_phase(p0, inc, float(n))
        if end >= 1.0 and end < 1e15:
            ne = 0
            for j in range(1, int(end) + 1):
                goal = float(j)
                k = min(max(int(math.ceil((goal - p0) / inc)), 1), n)
                while k > 1 and _steady_phase(p0, inc, float(k - 1)) >= goal:
                    k -= 1
                while k < n and _steady_phase(p0, inc, float(k)) < goal:
                    k += 1
                u = _steady_phase(p0, inc, float(k))
                before = _steady_phase(p0, inc, float(k - 1)) if k > 1 else p0
                d = (u - goal) / (u - before)
                if ne > EVENT_SLOTS - 1:
                    flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                    ne = 0
                ne = push_event(st, ev, ne, v, k - 1, d, -2.0)
                if write_sync:
                    sync_out[s0 + k - 1, v] = 1.0 - d
            flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)


@lane_loop
def _steady_saw(level, level_steady, out, start, prev, dt, corr, s0, s1, nl):
    """Passes A and C at steady increments in one loop: level x (naive ramp of
    ``_steady_phase`` lowered by the kernel's delay + corrections), with no phase row written
    and read back; a steady ``level`` (a literal at each call) read as one value per lane.
    Then the phase moves on, wrapped. The state rows come as separate arrays (``start``,
    ``prev``, ``dt`` and the correction buffer ``corr``) so that LLVM need not check at every
    sample whether the correction row it clears overlaps the rows it reads (``lane_loop``).
    (The saw alone at 16 voices, steady, with the analytic wraps: 1.67 -> 1.30 us per block;
    the old pass C alone had cost 1.8 us.)"""
    for i in range(s0, s1):
        k = i - s0 + 1.0
        c = corr[i - s0]
        lv = level[s0] if level_steady else level[i]
        for v in range(nl):
            u = _steady_phase(start[v], dt[v], k)
            out[i, v] = lv[v] * (2.0 * (u - np.floor(u)) - 1.0 - 2.0 * STEP_DELAY * dt[v]
                                 + c[v])
            c[v] = 0.0  # read: cleared here, where its line is in cache
    n = float(s1 - s0)
    for v in range(nl):
        start[v] = wrapped_phase(_steady_phase(start[v], dt[v], n))
        prev[v] = start[v]
    shift_carried(corr, 0, s1 - s0, nl)


@lane_loop
def _wrap_residuals(out, sync_out, write_sync, st, s0, s1, nl):
    """Pass B of the free-running saw, on pass A's unwrapped phase: wrap j of a voice is at
    the first sample whose phase reaches j (bisection: 6 probes in a 64-sample segment,
    where a scan read every sample up to the last wrap), d = (phase - j) / (its step)
    samples before it; its residual is a step of -2. A non-finite phase places none (pass C
    gives the guard its non-finite output)."""
    last, prev = st[_S_LAST], st[_S_PREV]
    ev = SAW_EVENTS
    for v in range(nl):
        end = last[v]
        if end >= 1.0 and end < 1e15:
            ne = 0
            lo = s0
            for j in range(1, int(end) + 1):
                goal = float(j)
                a = lo
                b = s1 - 1  # out[s1 - 1, v] is ``end`` >= goal
                while a < b:
                    m = (a + b) >> 1
                    if out[m, v] >= goal:
                        b = m
                    else:
                        a = m + 1
                before = out[a - 1, v] if a > s0 else prev[v]
                d = (out[a, v] - goal) / (out[a, v] - before)
                if ne > EVENT_SLOTS - 1:
                    flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
                    ne = 0
                ne = push_event(st, ev, ne, v, a - s0, d, -2.0)
                if write_sync:
                    sync_out[a, v] = 1.0 - d
                lo = a + 1
            flush_events(st, ev, ne, SAW_FIXED, v, STEP_TABLE)
        last[v] = wrapped_phase(end)
        prev[v] = last[v]


@lane_loop
def _saw_pass_c(pitch, level, out, st, s0, s1, nl):
    """Pass C: level * (naive ramp lowered by the kernel's delay + corrections), the ramp
    from pass A's unwrapped phase. ``pitch`` times the increment rows is the phase
    increment."""
    inc, dinc = st[_S_INC], st[_S_DINC]
    for i in range(s0, s1):
        k = i - s0
        corr = st[SAW_FIXED + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            u = out[i, v]
            out[i, v] = level[i, v] * (2.0 * (u - np.floor(u)) - 1.0 - 2.0 * STEP_DELAY * dt
                                       + corr[v])
    shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@lane_loop
def saw_minblep_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Rising sawtooth from -level to +level, band-limited by the minBLEP above; its peaks
    reach about 1.4 x ``level`` below 1 kHz (the minimum-phase step overshoots by 20 % of the
    jump of 2). Second output ``sync``: 1 - d on a sample whose phase wrapped d samples
    (0 <= d < 1) before it, else 0 (to hard-sync ``sync_saw``)."""
    if io[1] == io[2]:  # both outputs unread (the sink row): nothing to do
        return
    pitch = bufs[io[0]]
    out = bufs[io[1]]
    sync_out = bufs[io[2]]
    write_sync = io[2] != ROW_SINK
    pitch_increments(P, pr, st, _S_INC, ctx, s0, s1, nl, 1.0)
    if write_sync:
        clear_rows(sync_out, s0, s1, nl)
    if _steady_increments(pitch, io[0], ctx, st, s0, nl):
        if write_sync:  # literal flags: numba prunes the dead branch (a variable cost 50 ns)
            _steady_wraps(sync_out, True, st, s0, s1, nl)
        else:
            _steady_wraps(sync_out, False, st, s0, s1, nl)
        level = P[pr[2]]
        start, prev, dt, corr = st[_S_LAST], st[_S_PREV], st[_S_DT], st[SAW_FIXED:]
        if row_steady(ctx, pr[2]):
            if nl == WIDE_LANES:
                _steady_saw(level, True, out, start, prev, dt, corr, s0, s1, WIDE_LANES)
            else:
                _steady_saw(level, True, out, start, prev, dt, corr, s0, s1, nl)
        else:
            _steady_saw(level, False, out, start, prev, dt, corr, s0, s1, nl)
        return
    phase_pass(pitch, out, st[_S_LAST], st[_S_INC], st[_S_DINC], s0, s1, nl, False)
    if write_sync:
        _wrap_residuals(out, sync_out, True, st, s0, s1, nl)
    else:
        _wrap_residuals(out, sync_out, False, st, s0, s1, nl)
    _saw_pass_c(pitch, P[pr[2]], out, st, s0, s1, nl)


@lane_loop
def _scaled_pitch_pass_c(pitch, ratio, level, out, st, s0, s1, nl):
    """Pass C of the synced saw (``_saw_pass_c`` at ``ratio`` times the pitch)."""
    inc, dinc = st[_S_INC], st[_S_DINC]
    for i in range(s0, s1):
        k = i - s0
        corr = st[SAW_FIXED + k]
        for v in range(nl):
            dt = min(max(pitch[i, v] * ratio[i, v] * (inc[v] + dinc[v] * k), MIN_INC), MAX_INC)
            out[i, v] = level[i, v] * (2.0 * out[i, v] - 1.0 - 2.0 * STEP_DELAY * dt + corr[v])
    shift_corrections(st, SAW_FIXED, s1 - s0, nl)


@lane_loop
def sync_saw_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Band-limited saw at ``ratio`` times the pitch whose phase restarts on each rising edge
    of ``sync`` (hard sync); a ``sync`` value s in (0, 1] places the restart 1 - s samples
    before the sample (the sync output of ``saw`` and ``pulse``), so the restart is a
    band-limited step at its exact position, like every wrap."""
    pitch = bufs[io[0]]
    sync = bufs[io[1]]
    out = bufs[io[2]]
    ratio = P[pr[3]]
    pitch_increments(P, pr, st, _S_INC, ctx, s0, s1, nl, 1.0)
    _sync_phase_pass(pitch, ratio, sync, out, st, s0, s1, nl)
    _sync_pass_b(pitch, ratio, sync, out, st, s0, s1, nl)
    _scaled_pitch_pass_c(pitch, ratio, P[pr[2]], out, st, s0, s1, nl)
