"""Native voice allocation, controller handling and parameter smoothing.

These njit functions run inside the one native call per block (``render_block``); they work on
the plan's arrays in place and allocate nothing. Layout of the arrays: ``instrument.layout``.
"""

import math

from numba import njit

from instrument.engine.lanes import free_lane, fresh_lane, set_column
from instrument.layout import (
    CFG_MODE, CFG_N_PARAMS, CFG_N_VOICES, CFG_STEAL, CTX_LAST_PEAK, CTX_MOD_WHEEL, CTX_NOTE,
    CTX_PEAK, CTX_PRESSURE, CTX_STEADY, CTX_VELOCITY, E_ACTIVE_VOICES, E_AGE, E_BAD_EVENTS,
    E_BEND_RANGE_ST, E_BEND_TARGET, E_GLIDE_COEFF, E_HELD_STAMP, E_LAST_PITCH, E_MOD_WHEEL,
    E_NOTES_STOLEN, E_PRESSURE, E_SONG_BEATS, E_SUSTAIN, E_TEMPO_BPM, E_TRANSPORT, MODE_LEGATO,
    MODE_POLY, PM_COEFF, PM_CURVE, PM_HI, PM_KIND, PM_LO, PM_RAMP_SAMPLES, PM_ROW, PM_SCOPE,
    PM_SKEW, PM_SMOOTH_MODE, PS_CURRENT, PS_FILLED, PS_REMAINING, PS_STEP, PS_TARGET, SCOPE_VOICE,
    SILENCE_PEAK, STEAL_QUIETEST, STEAL_SAME_NOTE, V_ACTIVE, V_AGE, V_CHANNEL, V_KEY_DOWN, V_NOTE,
    V_PITCH, V_PITCH_TARGET, V_QUIET_BLOCKS, V_SUSTAINED, V_TRIGGER,
)
from instrument.engine.events import (
    ALL_NOTES_OFF, ALL_SOUND_OFF, CC, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF, CC_MOD_WHEEL,
    BEND_RANGE, CC_SUSTAIN, CHANNEL_PRESSURE, MPE_ZONE, NOTE_OFF, NOTE_ON, PARAM, PITCH_BEND,
    POLY_PRESSURE, TEMPO, TRANSPORT,
)
from instrument.engine.expression import (
    BAD, HANDLED, member_event, mpe_on, note_started, set_zone, shared_expression,
)
from instrument.params.curves import norm_to_value

SMOOTH_NONE, SMOOTH_ONE_POLE, SMOOTH_LINEAR = 0, 1, 2
KIND_CONTINUOUS = 0


@njit(cache=True, error_model="numpy")
def _start_voice(v, note, velocity, glide, cfg, voices, vctx, vstate, vinit, eng):
    """(Re)start voice ``v`` on ``note``. A voice that was silent gets fresh state."""
    fresh = voices[v, V_ACTIVE] == 0.0
    if fresh:
        fresh_lane(vctx, vstate, vinit, v)
        start_pitch = eng[E_LAST_PITCH] if (glide and eng[E_LAST_PITCH] >= 0.0) else note
        voices[v, V_PITCH] = start_pitch
    elif not glide:
        voices[v, V_PITCH] = note
    voices[v, V_ACTIVE] = 1.0
    voices[v, V_NOTE] = note
    voices[v, V_PITCH_TARGET] = note
    voices[v, V_KEY_DOWN] = 1.0
    voices[v, V_SUSTAINED] = 0.0
    voices[v, V_TRIGGER] = 1.0
    voices[v, V_QUIET_BLOCKS] = 0.0
    eng[E_AGE] += 1.0
    voices[v, V_AGE] = eng[E_AGE]
    vctx[CTX_NOTE, v] = note
    vctx[CTX_VELOCITY, v] = velocity
    vctx[CTX_MOD_WHEEL, v] = eng[E_MOD_WHEEL]
    vctx[CTX_PRESSURE, v] = eng[E_PRESSURE]
    eng[E_LAST_PITCH] = note


@njit(cache=True, error_model="numpy")
def _pick_voice(note, ch, cfg, voices, vctx, eng):
    """Lane for a new poly note: same note if asked (and same channel with MPE on), else the
    next free lane, else steal."""
    n = int(eng[E_ACTIVE_VOICES])
    if cfg[CFG_STEAL] == STEAL_SAME_NOTE:
        for v in range(n):
            if voices[v, V_NOTE] == note and (not mpe_on(eng) or voices[v, V_CHANNEL] == ch):
                return v
    if n < cfg[CFG_N_VOICES]:
        eng[E_ACTIVE_VOICES] = n + 1
        return n
    # Steal: prefer voices already released, then by policy (oldest start or lowest level).
    best = -1
    best_key = 1e300
    for pass_released in range(2):
        for v in range(n):
            released = voices[v, V_KEY_DOWN] == 0.0 and voices[v, V_SUSTAINED] == 0.0
            if pass_released == 0 and not released:
                continue
            if cfg[CFG_STEAL] == STEAL_QUIETEST:
                key = max(vctx[CTX_PEAK, v], vctx[CTX_LAST_PEAK, v])
            else:
                key = voices[v, V_AGE]
            if key < best_key:
                best_key = key
                best = v
        if best >= 0:
            break
    eng[E_NOTES_STOLEN] += 1.0
    return best


@njit(cache=True, error_model="numpy")
def _release_voice(v, voices, eng):
    if eng[E_SUSTAIN] >= 0.5:
        voices[v, V_SUSTAINED] = 1.0
    voices[v, V_KEY_DOWN] = 0.0


@njit(cache=True, error_model="numpy")
def note_on(note, velocity, cfg, voices, vctx, vstate, vinit, eng, held, ch=0):
    eng[E_HELD_STAMP] += 1.0
    held[note] = eng[E_HELD_STAMP]
    glide = eng[E_GLIDE_COEFF] > 0.0  # 0 means glide off: the pitch jumps
    if cfg[CFG_MODE] == MODE_POLY:
        v = _pick_voice(note, ch, cfg, voices, vctx, eng)
        _start_voice(v, note, velocity, glide, cfg, voices, vctx, vstate, vinit, eng)
        note_started(v, ch, voices, vctx, eng)
        return
    # Mono and legato play voice 0. Legato does not retrigger while another key is held.
    legato = cfg[CFG_MODE] == MODE_LEGATO and voices[0, V_ACTIVE] != 0.0 and voices[0, V_KEY_DOWN] != 0.0
    if legato:
        voices[0, V_NOTE] = note
        voices[0, V_PITCH_TARGET] = note
        vctx[CTX_NOTE, 0] = note
        eng[E_LAST_PITCH] = note
    else:
        eng[E_ACTIVE_VOICES] = 1
        _start_voice(0, note, velocity, glide, cfg, voices, vctx, vstate, vinit, eng)
    note_started(0, ch, voices, vctx, eng)


@njit(cache=True, error_model="numpy")
def note_off(note, cfg, voices, eng, vctx, held, ch=0):
    held[note] = 0.0
    if cfg[CFG_MODE] == MODE_POLY:
        any_channel = not mpe_on(eng)  # with MPE, a key is its channel and note
        for v in range(int(eng[E_ACTIVE_VOICES])):
            if voices[v, V_KEY_DOWN] != 0.0 and voices[v, V_NOTE] == note and \
                    (any_channel or voices[v, V_CHANNEL] == ch):
                _release_voice(v, voices, eng)
        return
    if voices[0, V_NOTE] != note or voices[0, V_KEY_DOWN] == 0.0:
        return
    # Last-note priority: fall back to the most recently pressed key still held.
    back = -1
    stamp = 0.0
    for k in range(128):
        if held[k] > stamp:
            stamp = held[k]
            back = k
    if back < 0:
        _release_voice(0, voices, eng)
        return
    voices[0, V_NOTE] = back
    voices[0, V_PITCH_TARGET] = back
    vctx[CTX_NOTE, 0] = back
    eng[E_LAST_PITCH] = back
    if cfg[CFG_MODE] != MODE_LEGATO:
        voices[0, V_TRIGGER] = 1.0


@njit(cache=True, error_model="numpy")
def release_all(cfg, voices, eng, held, hard, vstate, vinit):
    """All notes off (``hard`` False: release, pedal ignored) or all sound off (silence now).

    All notes off lowers the gate of every lane, whatever the allocator believed about its key,
    and the envelopes release on a low gate, not only on a falling edge (the gate rule in
    ``kernels.envelopes``): so a voice whose key is already up while its envelope is still in
    attack, decay or sustain (what a zero-length note used to leave) is released too, and
    ``free_silent_voices`` frees it once the release has ended."""
    held[:] = 0.0
    for v in range(cfg[CFG_N_VOICES]):
        voices[v, V_KEY_DOWN] = 0.0
        voices[v, V_SUSTAINED] = 0.0
        if hard:
            voices[v, V_ACTIVE] = 0.0
    if hard:
        for v in range(vstate.shape[1]):  # every lane, the idle ones the renderer ran too
            set_column(vstate, v, vinit)
        eng[E_ACTIVE_VOICES] = 0


@njit(cache=True, error_model="numpy")
def set_sustain(value, cfg, voices, eng):
    eng[E_SUSTAIN] = value
    if value < 0.5:
        for v in range(cfg[CFG_N_VOICES]):
            voices[v, V_SUSTAINED] = 0.0


@njit(cache=True, error_model="numpy")
def apply_event(kind, a, b, cfg, voices, vctx, vstate, vinit, gstate, ginit, eng, held, ptarget,
                ch=0):
    """Apply one event (``engine.events``) of MIDI channel ``ch`` (0..15; it matters only with
    an MPE zone on, ``engine.expression``); malformed ones are counted in E_BAD_EVENTS."""
    if not (math.isfinite(a) and math.isfinite(b)):
        eng[E_BAD_EVENTS] += 1.0
        return
    done = member_event(kind, ch, a, b, voices, vctx, eng)
    if done == HANDLED:
        return
    if done == BAD:
        eng[E_BAD_EVENTS] += 1.0
        return
    if kind == NOTE_ON or kind == NOTE_OFF:
        if a < 0.0 or a > 127.0:
            eng[E_BAD_EVENTS] += 1.0
            return
        note = int(a)
        if kind == NOTE_ON and b > 0.0:
            note_on(note, min(b, 1.0), cfg, voices, vctx, vstate, vinit, eng, held, ch)
        else:
            note_off(note, cfg, voices, eng, vctx, held, ch)
    elif kind == PARAM:
        idx = int(a)
        if idx < 0 or idx >= cfg[CFG_N_PARAMS]:
            eng[E_BAD_EVENTS] += 1.0
            return
        ptarget[idx] = min(max(b, 0.0), 1.0)
    elif kind == PITCH_BEND:
        eng[E_BEND_TARGET] = min(max(a, -1.0), 1.0) * eng[E_BEND_RANGE_ST]
    elif kind == CC:
        cc = int(a)
        if cc == CC_SUSTAIN:
            set_sustain(b, cfg, voices, eng)
        elif cc == CC_MOD_WHEEL:
            eng[E_MOD_WHEEL] = b
            vctx[CTX_MOD_WHEEL, :] = b
        elif shared_expression(kind, a, b, cfg[CFG_N_VOICES], voices, vctx, eng):
            pass  # CC74: timbre
        elif cc == CC_ALL_NOTES_OFF:
            release_all(cfg, voices, eng, held, False, vstate, vinit)
        elif cc == CC_ALL_SOUND_OFF:
            release_all(cfg, voices, eng, held, True, vstate, vinit)
            set_column(gstate, 0, ginit)
    elif kind == ALL_NOTES_OFF:
        release_all(cfg, voices, eng, held, False, vstate, vinit)
    elif kind == ALL_SOUND_OFF:
        release_all(cfg, voices, eng, held, True, vstate, vinit)
        set_column(gstate, 0, ginit)
    elif kind == CHANNEL_PRESSURE:  # every voice but those following an MPE member channel
        eng[E_PRESSURE] = a
        shared_expression(kind, a, b, cfg[CFG_N_VOICES], voices, vctx, eng)
    elif kind == POLY_PRESSURE:
        for v in range(int(eng[E_ACTIVE_VOICES])):
            if voices[v, V_NOTE] == a:
                vctx[CTX_PRESSURE, v] = b
    elif kind == BEND_RANGE:  # RPN 0: a held bend keeps its position in the new range
        if a < 0.0 or a > 48.0:
            eng[E_BAD_EVENTS] += 1.0
            return
        if eng[E_BEND_RANGE_ST] > 0.0:
            eng[E_BEND_TARGET] = eng[E_BEND_TARGET] / eng[E_BEND_RANGE_ST] * a
        eng[E_BEND_RANGE_ST] = a
    elif kind == MPE_ZONE:
        if not set_zone(ch, a, eng):
            eng[E_BAD_EVENTS] += 1.0
    elif kind == TEMPO:  # the kernels read it from their context (render_template)
        if not (a >= 20.0 and a <= 300.0):
            eng[E_BAD_EVENTS] += 1.0
            return
        eng[E_TEMPO_BPM] = a
    elif kind == TRANSPORT:
        eng[E_SONG_BEATS] = max(a, 0.0)
        eng[E_TRANSPORT] += 1.0
    # PROGRAM and unknown kinds are handled on the control side; the engine ignores them.


@njit(cache=True, error_model="numpy")
def fill_params(pmeta, pstate, ptarget, vP, gP, PN, vctx, gctx, n_params, s0, s1, block_start):
    """Advance every parameter's smoother over [s0, s1) into its value row (``vP`` for voice
    parameters, one value for every lane; ``gP`` for global ones) and PN (normalized), and
    flag each row steady or moving in its scope's context (``layout.CTX_STEADY``).

    Continuous parameters follow their target with a one-pole (99% at the declared time) or a
    linear ramp; discrete ones jump to their target only at a block start (``block_start``).
    A parameter at its target, its row filled (and so flagged steady), costs one test.
    """
    for p in range(n_params):
        t = ptarget[p]
        if t == pstate[p, PS_CURRENT] and t == pstate[p, PS_TARGET] and t == pstate[p, PS_FILLED]:
            continue  # settled, its row filled and flagged steady: nothing to do
        if pmeta[p, PM_SCOPE] == SCOPE_VOICE:
            _fill_param(pmeta, pstate, ptarget, vP, PN, vctx, p, s0, s1, block_start)
        else:
            _fill_param(pmeta, pstate, ptarget, gP, PN, gctx, p, s0, s1, block_start)


@njit(cache=True, error_model="numpy", inline="always")
def _fill_param(pmeta, pstate, ptarget, P, PN, ctx, p, s0, s1, block_start):
    """Smooth parameter ``p`` over [s0, s1) into row PM_ROW of its scope's array ``P``; its
    steady flag in ``ctx`` says whether the row holds one value through the segment."""
    row = int(pmeta[p, PM_ROW])
    target = ptarget[p]
    if not (target >= 0.0 and target <= 1.0):  # NaN or out of range from outside: ignore
        target = pstate[p, PS_TARGET]
    cur = pstate[p, PS_CURRENT]
    mode = int(pmeta[p, PM_SMOOTH_MODE])
    discrete = pmeta[p, PM_KIND] != KIND_CONTINUOUS
    if discrete or mode == SMOOTH_NONE:
        if block_start or not discrete:
            cur = target
        pstate[p, PS_CURRENT] = cur
        pstate[p, PS_TARGET] = target
        _fill_const(pmeta, pstate, P, row, PN, p, cur)
        ctx[CTX_STEADY + row, 0] = 1.0
        return
    if target != pstate[p, PS_TARGET]:
        pstate[p, PS_TARGET] = target
        if mode == SMOOTH_LINEAR:
            n = pmeta[p, PM_RAMP_SAMPLES]
            pstate[p, PS_STEP] = (target - cur) / n if n >= 1.0 else target - cur
            pstate[p, PS_REMAINING] = n if n >= 1.0 else 1.0
    if cur == target:
        _fill_const(pmeta, pstate, P, row, PN, p, cur)
        ctx[CTX_STEADY + row, 0] = 1.0
        return
    pstate[p, PS_FILLED] = -1.0
    ctx[CTX_STEADY + row, 0] = 0.0
    curve = int(pmeta[p, PM_CURVE])
    lo = pmeta[p, PM_LO]
    hi = pmeta[p, PM_HI]
    skew = pmeta[p, PM_SKEW]
    lanes = P.shape[2]
    if mode == SMOOTH_ONE_POLE:
        a = pmeta[p, PM_COEFF]
        for i in range(s0, s1):
            cur = target + (cur - target) * a
            PN[p, i] = cur
            value = norm_to_value(curve, lo, hi, skew, 0, cur)
            for v in range(lanes):
                P[row, i, v] = value
        if abs(cur - target) < 1e-9:
            cur = target
    else:
        step = pstate[p, PS_STEP]
        left = pstate[p, PS_REMAINING]
        for i in range(s0, s1):
            if left > 0.0:
                cur += step
                left -= 1.0
                if left <= 0.0:
                    cur = target
            PN[p, i] = cur
            value = norm_to_value(curve, lo, hi, skew, 0, cur)
            for v in range(lanes):
                P[row, i, v] = value
        pstate[p, PS_REMAINING] = left
    pstate[p, PS_CURRENT] = cur


@njit(cache=True, inline="always")
def _fill_const(pmeta, pstate, P, row, PN, p, cur):
    """Fill the whole row with a steady value, once: a settled parameter costs nothing per
    block. Rewriting samples before ``s0`` is harmless: their segments have already run."""
    if pstate[p, PS_FILLED] == cur:
        return
    value = norm_to_value(int(pmeta[p, PM_CURVE]), pmeta[p, PM_LO], pmeta[p, PM_HI],
                          pmeta[p, PM_SKEW], int(pmeta[p, PM_KIND]), cur)
    PN[p, :] = cur
    P[row, :, :] = value
    pstate[p, PS_FILLED] = cur


@njit(cache=True, error_model="numpy")
def free_silent_voices(voices, vctx, vstate, vinit, eng):
    """Free released voices whose output stayed below SILENCE_PEAK for two blocks, keeping the
    active voices packed in the low lanes (``lanes.free_lane``)."""
    n = int(eng[E_ACTIVE_VOICES])
    v = 0
    while v < n:
        released = voices[v, V_KEY_DOWN] == 0.0 and voices[v, V_SUSTAINED] == 0.0
        if released and vctx[CTX_PEAK, v] < SILENCE_PEAK:
            voices[v, V_QUIET_BLOCKS] += 1.0
        else:
            voices[v, V_QUIET_BLOCKS] = 0.0
        if voices[v, V_QUIET_BLOCKS] >= 2.0:
            n = free_lane(voices, vctx, vstate, vinit, v, n)
            continue  # look at the voice that moved in
        v += 1
    eng[E_ACTIVE_VOICES] = n
