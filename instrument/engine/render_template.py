# Source template of the fused block renderer. NOT imported directly: ``engine.fused`` appends
# this text to a generated module that defines ``run_ops`` (the dispatch over the registered
# module kernels), so that one native call renders a whole block: events, voices, every node of
# the voice and global graphs. Numba compiles the result once and caches it on disk.
import math

from numba import njit

from instrument.engine.layout import (
    CFG_N_OPS, CFG_N_PARAMS, CFG_N_VOICE_OPS, CFG_N_VOICES, E_ACTIVE_VOICES, E_BEND,
    E_BEND_COEFF, E_BEND_TARGET, E_GLIDE_COEFF, SILENCE_PEAK, V_ACTIVE, V_KEY_DOWN, V_PITCH,
    V_PITCH_TARGET, V_QUIET_BLOCKS, V_SUSTAINED, V_TRIGGER,
)
from instrument.engine.voicing import apply_event, fill_params
from instrument.modules.layout import (
    CTX_PEAK, CTX_RESET, ROW_BUS_L, ROW_BUS_R, ROW_GATE, ROW_OUT_L, ROW_OUT_R, ROW_PITCH,
    ROW_TRIGGER,
)


@njit(cache=True, error_model="numpy")
def _pitch_row(bufs, voice, bend0, bend1, glide_c, s0, s1):
    """Voice pitch in Hz per sample: glide (one-pole in semitones) plus pitch bend."""
    p = voice[V_PITCH]
    target = voice[V_PITCH_TARGET]
    row = bufs[ROW_PITCH]
    if p == target and bend0 == bend1:
        hz = 440.0 * 2.0 ** ((p + bend0 - 69.0) / 12.0)
        for i in range(s0, s1):
            row[i] = hz
        return
    n = s1 - s0
    dbend = (bend1 - bend0) / n
    for i in range(s0, s1):
        p = target + (p - target) * glide_c
        row[i] = 440.0 * 2.0 ** ((p + bend0 + dbend * (i - s0 + 1) - 69.0) / 12.0)
    if abs(p - target) < 1e-4:
        p = target
    voice[V_PITCH] = p


@njit(cache=True, error_model="numpy")
def _render_segment(cfg, ops, io, pr, fa, pmeta, pstate, ptarget, P, PN, bufs, voices, vctx,
                    vstate, gctx, gstate, eng, s0, s1, block_start):
    fill_params(pmeta, pstate, ptarget, P, PN, cfg[CFG_N_PARAMS], s0, s1, block_start)
    for row in (ROW_BUS_L, ROW_BUS_R, ROW_OUT_L, ROW_OUT_R, ROW_TRIGGER):
        bufs[row, s0:s1] = 0.0
    n = s1 - s0
    bend0 = eng[E_BEND]
    bend_target = eng[E_BEND_TARGET]
    bend1 = bend_target + (bend0 - bend_target) * eng[E_BEND_COEFF] ** n
    if abs(bend1 - bend_target) < 1e-6:
        bend1 = bend_target
    eng[E_BEND] = bend1
    glide_c = eng[E_GLIDE_COEFF]
    n_voice_ops = cfg[CFG_N_VOICE_OPS]
    for v in range(cfg[CFG_N_VOICES]):
        voice = voices[v]
        if voice[V_ACTIVE] == 0.0:
            continue
        held = voice[V_KEY_DOWN] != 0.0 or voice[V_SUSTAINED] != 0.0
        bufs[ROW_GATE, s0:s1] = 1.0 if held else 0.0
        if voice[V_TRIGGER] != 0.0:
            bufs[ROW_TRIGGER, s0] = 1.0
            voice[V_TRIGGER] = 0.0
        _pitch_row(bufs, voice, bend0, bend1, glide_c, s0, s1)
        run_ops(0, n_voice_ops, ops, io, pr, fa, pmeta, P, PN, bufs, vstate[v], vctx[v], s0, s1)
        bufs[ROW_TRIGGER, s0] = 0.0
        vctx[v, CTX_RESET] = 0.0
    run_ops(n_voice_ops, cfg[CFG_N_OPS], ops, io, pr, fa, pmeta, P, PN, bufs, gstate, gctx, s0, s1)


@njit(cache=True, error_model="numpy")
def render_block(cfg, ops, io, pr, fa, pmeta, pstate, ptarget, P, PN, bufs, voices, vctx,
                 vstate, vinit, gctx, gstate, ginit, eng, held, events, n_events, mix):
    """Render one block into ``mix`` (2, block_size): events applied at their sample offsets
    (the block is split there), every voice and the global graph run, silent voices freed."""
    block = bufs.shape[1]
    n_voices = cfg[CFG_N_VOICES]
    for v in range(n_voices):
        vctx[v, CTX_PEAK] = 0.0
    s0 = 0
    e = 0
    while s0 < block:
        while e < n_events and min(max(events[e, 0], 0.0), block - 1.0) <= s0:
            apply_event(int(events[e, 1]), events[e, 3], events[e, 4], cfg, voices, vctx, vstate,
                        vinit, gstate, ginit, eng, held, ptarget)
            e += 1
        s1 = block
        if e < n_events:
            s1 = int(min(max(events[e, 0], 0.0), block - 1.0))
        _render_segment(cfg, ops, io, pr, fa, pmeta, pstate, ptarget, P, PN, bufs, voices, vctx,
                        vstate, gctx, gstate, eng, s0, s1, s0 == 0)
        s0 = s1
    active = 0
    for v in range(n_voices):
        voice = voices[v]
        if voice[V_ACTIVE] == 0.0:
            continue
        released = voice[V_KEY_DOWN] == 0.0 and voice[V_SUSTAINED] == 0.0
        if released and vctx[v, CTX_PEAK] < SILENCE_PEAK:
            voice[V_QUIET_BLOCKS] += 1.0
            if voice[V_QUIET_BLOCKS] >= 2.0:
                voice[V_ACTIVE] = 0.0
                continue
        else:
            voice[V_QUIET_BLOCKS] = 0.0
        active += 1
    eng[E_ACTIVE_VOICES] = active
    mix[0, :] = bufs[ROW_OUT_L]
    mix[1, :] = bufs[ROW_OUT_R]
