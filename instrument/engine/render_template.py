# Source template of the fused block renderer. ``engine.fused`` appends this text to a generated
# module that defines ``run_ops`` (the dispatch over the registered module kernels), so that
# one native call renders a whole block: events, voices, every node of the voice and global
# graphs. Numba compiles the result once and caches it on disk. Imported on its own (tests,
# tools), this module runs the built-in ops only (``builtin_ops.run_builtin_ops``). The op timer
# build (``OP_TIMERS``, ``benchmarks/op_time.py``) sums each stage's time with ``_clock``/``_lap``.
import numpy as np
from numba import njit

from instrument.engine.clock import monotonic_ns
from instrument.engine.block_state import f64_1d, f64_2d, f64_3d, i64_1d, i64_2d
from instrument.kernels.approx import semitone_ratio
from instrument.layout import (
    BS_CFG, BS_ENG, BS_FA, BS_GBUFS, BS_GCTX, BS_GINIT, BS_GP, BS_GSTATE, BS_HELD, BS_IO, BS_MIX,
    BS_OPS, BS_PMETA, BS_PN, BS_PR, BS_PSTATE, BS_PTARGET, BS_VBUFS, BS_VCTX, BS_VINIT, BS_VOICES,
    BS_VP, BS_VSTATE, CFG_MONO_VOICE, CFG_N_OPS, CFG_N_PARAMS, CFG_N_VOICE_OPS, CTX_GATE_ROW,
    CTX_LAST_PEAK, CTX_PEAK, CTX_PITCH_NOW, CTX_PITCH_ROW, CTX_PITCH_STEADY,
    CTX_RESET, CTX_SONG_BEATS, CTX_TEMPO_BPM, CTX_TRANSPORT, E_ACTIVE_VOICES, E_BEND,
    E_BEND_COEFF, E_BEND_TARGET, E_GLIDE_COEFF, E_SONG_BEATS, E_TEMPO_BPM, E_TRANSPORT, ROW_BUS_L,
    ROW_BUS_R, ROW_GATE, ROW_OUT_L, ROW_OUT_R, ROW_PITCH, ROW_TRIGGER, V_BEND, V_BEND_TARGET,
    T_BLOCK, T_OUTPUT, T_PARAMS, T_SUM_VOICES, T_VOICE_ROWS, V_KEY_DOWN, V_PITCH,
    V_PITCH_TARGET, V_SUSTAINED, V_TRIGGER,
)
from instrument.engine.lanes import padded_lanes
from instrument.engine.output_stage import finish_block
from instrument.engine.voicing import apply_event, fill_params, free_silent_voices
from instrument.runtime.ring import drain_ring
from instrument.runtime.shared import S_FIRST_AUDIO_T, S_XRUNS
from instrument.runtime.status import record_block

try:  # the generated module defines run_ops and OP_TIMERS before this text
    run_ops  # noqa: B018
except NameError:  # imported on its own
    from instrument.engine.builtin_ops import run_builtin_ops as run_ops

    OP_TIMERS = False


@njit(cache=True, inline="always")
def _clock():
    """Now in ns in the op timer build (``engine.fused.generate_source``), else a constant 0:
    numba folds ``OP_TIMERS`` and the renderer the instrument plays with reads no clock."""
    if OP_TIMERS:
        return monotonic_ns()
    return 0


@njit(cache=True, inline="always")
def _lap(eng, slot, t0):
    """In the op timer build: add the ns since ``t0`` to ``eng[slot]``, return now."""
    if OP_TIMERS:
        now = monotonic_ns()
        eng[slot] += now - t0
        return now
    return 0


@njit(cache=True, error_model="numpy")
def _voice_rows(vbufs, voices, vctx, bend0, bend1, glide_c, bend_c, s0, s1, nl):
    """Per-lane gate, trigger and pitch (Hz: glide as a one-pole in semitones, plus the global
    bend, plus the voice's own MPE bend, smoothed by ``bend_c`` over the segment like the
    global one; exactly 0.0 without MPE). Lanes whose pitch holds through the segment are
    flagged in ``CTX_PITCH_STEADY`` (their row holds ``CTX_PITCH_NOW``).

    A row is written only where it changes, since held notes leave it as it was: a lane's gate
    and steady pitch from s0 to the block's end when the value is not the one its row holds
    (``CTX_GATE_ROW``, ``CTX_PITCH_ROW``), a moving pitch sample by sample, and the trigger
    row stays all zeros but for the sample a note starts on, which ``_render_segment`` clears
    after the segment. Writing all three rows every segment cost 0.4-0.7 us per block at 16
    voices, more than any op but the saws and the filter."""
    gate = vbufs[ROW_GATE]
    trig = vbufs[ROW_TRIGGER]
    pitch = vbufs[ROW_PITCH]
    block = gate.shape[0]
    n = s1 - s0
    dbend = (bend1 - bend0) / n
    for v in range(nl):
        voice = voices[v]
        held = voice[V_KEY_DOWN] != 0.0 or voice[V_SUSTAINED] != 0.0
        g = 1.0 if held else 0.0
        if vctx[CTX_GATE_ROW, v] != g:
            _fill_lane(gate, v, g, s0, block, vctx, CTX_GATE_ROW)
        if voice[V_TRIGGER] != 0.0:
            trig[s0, v] = 1.0
            voice[V_TRIGGER] = 0.0
        p = voice[V_PITCH]
        vctx[CTX_PITCH_NOW, v] = 440.0 * semitone_ratio(p + bend0 + voice[V_BEND] - 69.0)
    for v in range(nl):
        voice = voices[v]
        p = voice[V_PITCH]
        target = voice[V_PITCH_TARGET]
        vb0 = voice[V_BEND]
        vb_target = voice[V_BEND_TARGET]
        vb1 = vb_target + (vb0 - vb_target) * bend_c
        if abs(vb1 - vb_target) < 1e-6:
            vb1 = vb_target
        voice[V_BEND] = vb1
        if p == target and bend0 == bend1 and vb0 == vb1:
            vctx[CTX_PITCH_STEADY, v] = 1.0
            if vctx[CTX_PITCH_ROW, v] != vctx[CTX_PITCH_NOW, v]:
                _fill_lane(pitch, v, vctx[CTX_PITCH_NOW, v], s0, block, vctx, CTX_PITCH_ROW)
            continue
        vctx[CTX_PITCH_STEADY, v] = 0.0
        vctx[CTX_PITCH_ROW, v] = -1.0
        dvb = (vb1 - vb0) / n
        for i in range(s0, s1):
            p = target + (p - target) * glide_c
            k = i - s0 + 1
            pitch[i, v] = 440.0 * semitone_ratio(p + bend0 + dbend * k + (vb0 + dvb * k) - 69.0)
        if abs(p - target) < 1e-4:
            p = target
        voice[V_PITCH] = p


@njit(cache=True, inline="always")
def _fill_lane(row, v, value, s0, block, vctx, held_slot):
    """Lane ``v`` of ``row`` holds ``value`` from s0 to the block's end; the lane's slot
    ``held_slot`` records it when that is the whole block (else -1.0: the next segment
    rewrites it; the samples before s0 belong to segments that have run)."""
    for i in range(s0, block):
        row[i, v] = value
    vctx[held_slot, v] = value if s0 == 0 else -1.0


@njit(cache=True, error_model="numpy")
def _sum_voices(vbufs, gbufs, vctx, mono, s0, s1, nl):
    """Voice outputs summed onto the global graph's bus; each voice's peak recorded. Mono
    voices (``CFG_MONO_VOICE``): their left row summed into both sides."""
    out_l = vbufs[ROW_OUT_L]
    out_r = vbufs[ROW_OUT_R]
    bus_l = gbufs[ROW_BUS_L]
    bus_r = gbufs[ROW_BUS_R]
    if nl == 1:  # one voice: a copy and a peak, sample after sample (no loop across lanes)
        peak = vctx[CTX_PEAK, 0]
        for i in range(s0, s1):
            bus_l[i, 0] = 0.0 + out_l[i, 0]  # 0.0 + x: the sum's own result, -0.0 too
            peak = max(peak, abs(out_l[i, 0]))
        if mono:
            for i in range(s0, s1):
                bus_r[i, 0] = bus_l[i, 0]
        else:
            for i in range(s0, s1):
                bus_r[i, 0] = 0.0 + out_r[i, 0]
                peak = max(peak, abs(out_r[i, 0]))
        vctx[CTX_PEAK, 0] = peak
        return
    peak = vctx[CTX_PEAK]
    i = s0
    while i < s1:  # 4 samples at a time where 4 are left
        if i + 4 <= s1:
            _sum_lanes4(out_l, bus_l, peak, i, nl)
            if not mono:
                _sum_lanes4(out_r, bus_r, peak, i, nl)
            i += 4
            continue
        acc = 0.0
        for v in range(nl):
            acc += out_l[i, v]
            peak[v] = max(peak[v], abs(out_l[i, v]))
        bus_l[i, 0] = acc
        if not mono:
            acc = 0.0
            for v in range(nl):
                acc += out_r[i, v]
                peak[v] = max(peak[v], abs(out_r[i, v]))
            bus_r[i, 0] = acc
        i += 1
    if mono:
        for i in range(s0, s1):
            bus_r[i, 0] = bus_l[i, 0]


@njit(cache=True, inline="always")
def _sum_lanes4(row, bus, peak, i, nl):
    """bus[i..i+3] = the sum of each of the four samples' lanes, lane 0 first, and the lanes'
    peaks raised by them: four chains of additions side by side instead of one after another
    (a sum across lanes cannot run as SIMD without changing its order, and with it every
    sample's bits). 16 voices: 372 -> 309 ns per block, 8: 221 -> 158 (alone)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for v in range(nl):
        x0 = row[i, v]
        x1 = row[i + 1, v]
        x2 = row[i + 2, v]
        x3 = row[i + 3, v]
        a0 += x0
        a1 += x1
        a2 += x2
        a3 += x3
        peak[v] = max(peak[v], max(max(abs(x0), abs(x1)), max(abs(x2), abs(x3))))
    bus[i, 0] = a0
    bus[i + 1, 0] = a1
    bus[i + 2, 0] = a2
    bus[i + 3, 0] = a3


@njit(cache=True, inline="always")
def _tempo_context(eng, ctx, nl):
    """Tempo and transport (set by TEMPO and TRANSPORT events) into the lanes' context."""
    for v in range(nl):
        ctx[CTX_TEMPO_BPM, v] = eng[E_TEMPO_BPM]
        ctx[CTX_TRANSPORT, v] = eng[E_TRANSPORT]
        ctx[CTX_SONG_BEATS, v] = eng[E_SONG_BEATS]


# The 0 passed as first op and first sample and the global graph's one lane: typed int64, never
# Literal[int](0) or Literal[int](1). A literal made Numba compile _render_segment twice and
# run_ops (with every module kernel it calls) once more per mix of literal and int64 (seen in
# the cache files: a third of the test suite's time went to it; the global graph's literal 1
# lane alone cost 55 of the 150 s a cold ``instrument cache --warm`` took).
ZERO = np.int64(0)
ONE = np.int64(1)


@njit(cache=True, inline="always")
def kernel_lanes(nl, lanes):
    """How many lanes the voice kernels run for ``nl`` active voices: ``lanes.padded_lanes``,
    at most ``lanes`` (the voice arrays' lanes: ``instance.allocated_lanes``). LLVM runs a
    lane loop in SIMD steps and the lanes past the last whole step one at a time; the idle
    lanes beside the active ones are fresh silent voices (``lanes.free_lane``), steady and
    cheap, which nothing sums. Before: poly16's block at 13/14/15 held notes cost
    14.0/14.3/15.6 us, at 16 notes 12.5 (AMD EPYC, AVX-512)."""
    return min(padded_lanes(nl), lanes)


@njit(cache=True, error_model="numpy")
def _render_segment(cfg, ops, io, pr, fa, pmeta, pstate, ptarget, vP, gP, PN, vbufs, gbufs,
                    voices, vctx, vstate, gctx, gstate, eng, s0, s1, block_start):
    t = _clock()
    fill_params(pmeta, pstate, ptarget, vP, gP, PN, vctx, gctx, cfg[CFG_N_PARAMS], s0, s1,
                block_start)
    _lap(eng, T_PARAMS, t)
    n = s1 - s0
    bend0 = eng[E_BEND]
    bend_target = eng[E_BEND_TARGET]
    bend_c = eng[E_BEND_COEFF] ** n
    bend1 = bend_target + (bend0 - bend_target) * bend_c
    if abs(bend1 - bend_target) < 1e-6:
        bend1 = bend_target
    eng[E_BEND] = bend1
    nl = int(eng[E_ACTIVE_VOICES])
    nk = kernel_lanes(nl, vbufs.shape[2])
    _tempo_context(eng, vctx, nk)
    _tempo_context(eng, gctx, ONE)
    if nl > 0:
        t = _clock()
        _voice_rows(vbufs, voices, vctx, bend0, bend1, eng[E_GLIDE_COEFF], bend_c, s0, s1, nk)
        _lap(eng, T_VOICE_ROWS, t)
        run_ops(ZERO, cfg[CFG_N_VOICE_OPS], ops, io, pr, fa, pmeta, vP, PN, vbufs,
                vstate, vctx, s0, s1, nk, eng)
        trig = vbufs[ROW_TRIGGER]
        for v in range(nk):
            vctx[CTX_RESET, v] = 0.0
            trig[s0, v] = 0.0  # the trigger row is all zeros between segments
    t = _clock()
    _sum_voices(vbufs, gbufs, vctx, cfg[CFG_MONO_VOICE] != 0, s0, s1, nl)
    _lap(eng, T_SUM_VOICES, t)
    run_ops(cfg[CFG_N_VOICE_OPS], cfg[CFG_N_OPS], ops, io, pr, fa, pmeta, gP, PN, gbufs, gstate,
            gctx, s0, s1, ONE, eng)


@njit(cache=True, inline="always")
def _offset(value, block):
    """An event's sample offset, clamped into the block; NaN counts as 0."""
    if not (value >= 0.0):
        return 0
    if value > block - 1.0:
        return block - 1
    return int(value)


@njit(cache=True, inline="always")
def _channel(value):
    """An event's MIDI channel 0..15; anything else (NaN too) counts as 0."""
    if value >= 0.0 and value <= 15.0:
        return int(value)
    return 0


@njit(cache=True, inline="always")
def _in_block(frame, base, block, last):
    """Whether an event at ``frame`` (counted from the first block of the call) plays in the
    block that starts at ``base``: the frames of that block, and everything left over in the
    call's last block (late or out-of-range offsets are clamped there; NaN counts as 0)."""
    return last or not (frame - base >= block)


@njit(cache=True, error_model="numpy")
def render_block(state, events, n_events, lim, out):
    """Render one block into the state's ``mix`` (2, block_size): events applied at their
    sample offsets (the block is split there), every voice and the global graph run, silent
    voices freed. ``state`` is the instance's block state (``engine.block_state``).

    With ``out`` (frames, channels) non-empty, also run the output stage into it (no
    crossfade) and return its non-finite mask; this saves a second native call per block.
    ``out`` may hold several blocks (offline rendering: one native call for many blocks);
    event offsets then count from its first frame, and the blocks are rendered one after
    another exactly as separate calls would. A block that turns out non-finite ends the call:
    the return value is then its mask (bits 0-1) plus 4 x the block's index in ``out``, so the
    caller recovers and goes on from the next block (0 when every block was fine; for one
    block, the mask alone).
    """
    cfg = i64_1d(state, BS_CFG)
    ops = i64_2d(state, BS_OPS)
    io = i64_1d(state, BS_IO)
    pr = i64_1d(state, BS_PR)
    fa = f64_1d(state, BS_FA)
    pmeta = f64_2d(state, BS_PMETA)
    vinit = f64_1d(state, BS_VINIT)
    ginit = f64_1d(state, BS_GINIT)
    pstate = f64_2d(state, BS_PSTATE)
    ptarget = f64_1d(state, BS_PTARGET)
    vP = f64_3d(state, BS_VP)
    gP = f64_3d(state, BS_GP)
    PN = f64_2d(state, BS_PN)
    vbufs = f64_3d(state, BS_VBUFS)
    gbufs = f64_3d(state, BS_GBUFS)
    voices = f64_2d(state, BS_VOICES)
    vctx = f64_2d(state, BS_VCTX)
    vstate = f64_2d(state, BS_VSTATE)
    gctx = f64_2d(state, BS_GCTX)
    gstate = f64_2d(state, BS_GSTATE)
    eng = f64_1d(state, BS_ENG)
    held = f64_1d(state, BS_HELD)
    mix = f64_2d(state, BS_MIX)
    block = gbufs.shape[1]
    n_blocks = max(1, out.shape[0] // block)
    e = 0
    for b in range(n_blocks):
        t_block = _clock()
        base = b * block
        last = b == n_blocks - 1
        for v in range(int(eng[E_ACTIVE_VOICES])):
            vctx[CTX_LAST_PEAK, v] = vctx[CTX_PEAK, v]
            vctx[CTX_PEAK, v] = 0.0
        s0 = ZERO
        while s0 < block:
            while (e < n_events and _in_block(events[e, 0], base, block, last)
                   and _offset(events[e, 0] - base, block) <= s0):
                apply_event(int(events[e, 1]), events[e, 3], events[e, 4], cfg, voices, vctx,
                            vstate, vinit, gstate, ginit, eng, held, ptarget,
                            _channel(events[e, 2]))
                e += 1
            s1 = block
            if e < n_events and _in_block(events[e, 0], base, block, last):
                s1 = _offset(events[e, 0] - base, block)
            _render_segment(cfg, ops, io, pr, fa, pmeta, pstate, ptarget, vP, gP, PN, vbufs,
                            gbufs, voices, vctx, vstate, gctx, gstate, eng, s0, s1, s0 == 0)
            s0 = s1
        free_silent_voices(voices, vctx, vstate, vinit, eng)
        for i in range(block):
            mix[0, i] = gbufs[ROW_OUT_L, i, 0]
            mix[1, i] = gbufs[ROW_OUT_R, i, 0]
        if out.shape[0] == 0:
            _lap(eng, T_BLOCK, t_block)
            return 0
        t = _clock()
        bad = finish_block(mix, mix, ZERO, ZERO, lim, out[base:base + block])
        _lap(eng, T_OUTPUT, t)
        _lap(eng, T_BLOCK, t_block)
        if bad != 0:
            return bad + 4 * b
    return 0


@njit(cache=True, error_model="numpy")
def live_block(state, ring, events, clock, status, lim, out, xrun_flags, sample_rate,
               deadline_ns, n_events):
    """The audio callback's one native call while no plan swap is under way (``n_events``
    LIVE, -1): count an xrun (PortAudio's ``xrun_flags`` non-zero), stamp the block
    (CLOCK_MONOTONIC seconds in ``clock[0]``; the first one also in the status block), move
    the ring's events in at their offsets, render through the output stage into ``out`` and
    record the callback's duration and the gap since the previous one. Returns
    ``render_block``'s non-finite mask: the caller recovers in Python when it is not 0.

    With ``n_events`` >= 0 it is ``render_block(state, events, n_events, lim, out)`` and
    nothing else: the callback's Python path (a crossfade, a restrike) renders through this
    same entry point, so the audio process never loads ``render_block`` on its own, which
    would be a second copy of the renderer's machine code (60 MB resident)."""
    if n_events >= 0:
        return render_block(state, events, n_events, lim, out)
    t0_ns = monotonic_ns()
    if xrun_flags != 0:
        status[S_XRUNS] += 1.0
    now = t0_ns * 1e-9
    if clock[1] == 0.0:
        clock[0] = now
        clock[1] = 1.0
        status[S_FIRST_AUDIO_T] = now
    n = drain_ring(ring, events, clock[0], now, sample_rate, out.shape[0])
    gap_s = now - clock[0]
    clock[0] = now
    bad = render_block(state, events, n, lim, out)
    record_block(status, f64_1d(state, BS_ENG), lim, monotonic_ns() - t0_ns, deadline_ns, gap_s)
    return bad
