"""Envelope kernels, voice lanes. Contract: ``instrument.layout``.

ADSR stages have exact durations: attack is a linear ramp from the current level to 1 in
``attack_ms``; decay and release are exponential curves aimed past their goal (by OVERSHOOT of
the travel) so that they land on it exactly after ``decay_ms`` / ``release_ms`` and stop there,
with no tail and no step. Times are read at the start of each segment.

Gate rule (every envelope here: ``adsr``, ``ar`` and ``adsr_curve``):

- a trigger sample or a rising gate starts the attack;
- a low gate releases an envelope that is in attack, decay or sustain. The release follows
  the gate's level, not only its falling edge, so nothing can leave an envelope sustaining
  with its gate low;
- a trigger on a sample whose gate is already low is a zero-length note: note-on and note-off
  at the same sample, or in the same segment (the engine applies every event at a segment's
  start before rendering it, so the gate row never shows such a note high). It plays as a
  one-sample note: the trigger's sample is attack, the next one starts the release from there.
  With an instant attack (under one sample) that is a pluck as long as the release, with a
  slower one next to silence; either way it lands on 0 after ``release_ms`` and the engine
  frees the voice.

Why this: it is the limit of ever shorter notes, so no note length and no attack time has a
cliff where notes vanish or ring; a drum track of zero-length notes still sounds on a
percussive preset; and the note-off is never lost. Before, the release needed a falling edge,
which such a note never has: the trigger started the attack with the gate already low and the
note rang until /panic (CC123 and further note-offs only lower a gate that was already low).
Releasing on the level is also the defence in depth for all notes off: it lowers every lane's
gate, so every envelope still in attack, decay or sustain releases at the next segment,
whatever the allocator believed about its key.

With the gate and trigger inputs unpatched, the engine changes them only at a segment's first
sample: the kernels handle the edges there (and, when a lane has a zero-length note, once more
for the second sample, where its low gate releases it), then only advance the stages.

Envelope math (``ar`` and ``adsr_curve``). A stage of ``N = time_ms * sr / 1000`` samples with
curvature ``k >= 0`` follows, in normalised time ``x = n / N``, the exponential segment

    y(x) = y0 + (g - y0) * (1 - exp(-k x)) / (1 - exp(-k))        (k = 0: the straight line)

which is an RC curve aimed ``eps = 1 / (exp(k) - 1)`` of its travel past the goal ``g``. Per
sample that is ``y <- y + A * (g - y) + B * T`` with ``A = 1 - exp(-k / N)``,
``B = A * eps = -expm1(-k / N) / expm1(k)`` and ``T`` the nominal travel of the stage; both are
finite for every ``k`` and tend to the linear step (``A = 0``, ``B = 1 / N``) as ``k -> 0``, so
one branch-free formula covers linear and exponential. The recursion only looks at the current
level, so a time changed in the middle of a stage bends the rest of it without ever stalling.
A stage ends on the sample that reaches its goal (within ``LAND_TOL``): after exactly
``ceil(N)`` samples when undisturbed.
``adsr_curve`` maps ``curve`` in [0, 1] to ``k = curve * K_MAX`` (``K_MAX = ln 1e4``: at curve 1
each stage spans 80 dB of an exponential). Attack and decay are rate-based (their nominal travel
is 0 -> 1 and 1 -> sustain, so an attack started from a higher level ends sooner, along the
same curve); release always lasts ``release_ms`` from wherever it starts.
"""

import math

from numba import njit

from instrument.kernels.noalias import lane_loop
from instrument.kernels.steady import row_steady
from instrument.layout import CTX_SAMPLE_RATE, MOD_STEP, ROW_GATE, ROW_ONE, ROW_TRIGGER

IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = 0.0, 1.0, 2.0, 3.0, 4.0
OVERSHOOT = 0.001  # aim 0.1% of the travel past the goal: a mostly exponential shape
_LOG_SHAPE = math.log((1.0 + OVERSHOOT) / OVERSHOOT)
# State rows: stage, level, previous gate, release aim, attack step, decay and release
# coefficients; then the steady path's per-lane step (aim, factor, increment, floor, ceiling);
# then 1.0 when the output is read only at the modulation points (``adsr_read_at_points``);
# then the decay and release times the coefficients were computed from (0 ms gives 0, so a
# zeroed state is consistent).
(_A_STAGE, _A_LEVEL, _A_PREV_GATE, _A_REL_AIM, _A_ATT_INC, _A_DEC_C, _A_REL_C,
 _A_AIM, _A_MUL, _A_INC, _A_LO, _A_HI, _A_POINTS, _A_DEC_MS, _A_REL_MS) = range(15)
ADSR_STATE = 15


def adsr_read_at_points(state) -> None:
    """Mark a fresh ADSR state (one lane's column) as read only at the modulation points."""
    state[_A_POINTS] = 1.0


@njit(cache=True, inline="always")
def _exp_coeff(time_ms, sample_rate):
    samples = time_ms * 0.001 * sample_rate
    if samples < 1.0:
        return 0.0
    return math.exp(-_LOG_SHAPE / samples)


@njit(cache=True, inline="always")
def gate_rule(g, prev_gate, trig, stage):
    """(on, off, stage) after this sample's gate and trigger, by the gate rule of the module
    docstring, for every envelope here: ``on`` (1.0) when a trigger or a rising gate starts the
    attack, ``off`` when a low gate releases an envelope in attack, decay or sustain; the new
    stage. As 0/1 arithmetic, without branches."""
    g_high = (g > 0.5) * 1.0
    was_high = (prev_gate > 0.5) * 1.0
    t_high = (trig > 0.5) * 1.0
    rise = g_high * (1.0 - was_high)
    on = t_high + rise - t_high * rise
    off = (1.0 - on) * (1.0 - g_high) * ((stage >= ATTACK) * (stage <= SUSTAIN) * 1.0)
    stage = on * ATTACK + off * RELEASE + (1.0 - on) * (1.0 - off) * stage
    return on, off, stage


@njit(cache=True, inline="always")
def _edges(g, prev_gate, trig, stage, level, rel_aim):
    """(stage, release aim) after this sample's gate and trigger (``gate_rule``)."""
    on, off, stage = gate_rule(g, prev_gate, trig, stage)
    rel_aim = off * (-OVERSHOOT * level) + (1.0 - off) * rel_aim
    return stage, rel_aim


@njit(cache=True, inline="always")
def _advance(stage, level, s, rel_aim, att_inc, dec_c, rel_c):
    """(stage, level) one sample on: every stage's next level is computed and the current
    stage's kept (0/1 masks), so loops across voices vectorize."""
    att = min(level + att_inc, 1.0)
    dec_aim = s - OVERSHOOT * (1.0 - s)
    dec = max(dec_aim + (level - dec_aim) * dec_c, s)
    rel = max(rel_aim + (level - rel_aim) * rel_c, 0.0)
    m_att = (stage == ATTACK) * 1.0
    m_dec = (stage == DECAY) * 1.0
    m_sus = (stage == SUSTAIN) * 1.0
    m_rel = (stage == RELEASE) * 1.0
    level = m_att * att + m_dec * dec + m_sus * s + m_rel * rel
    # ATTACK -> DECAY at the top, DECAY -> SUSTAIN on reaching sustain, RELEASE -> IDLE at 0
    stage += (m_att * ((att >= 1.0) * 1.0) + m_dec * ((dec <= s) * 1.0)
              - RELEASE * m_rel * ((rel <= 0.0) * 1.0))
    return stage, level


@njit(cache=True, inline="always")
def _row_holds(row, s0, s1, nl):
    """Whether every lane of ``row`` (samples x lanes) holds its value over [s0, s1)."""
    first = row[s0]
    for i in range(s0 + 1, s1):
        moved = 0
        for v in range(nl):  # a count across lanes (vectorized), then one test per sample
            moved += row[i, v] != first[v]
        if moved > 0:
            return False
    return True


@njit(cache=True, error_model="numpy")
def _steady_segment(sustain, sustain_steady, st, s0, s1, nl):
    """Whether no lane changes stage by itself between samples s0 and s1 except by landing
    (decay on sustain, release on 0), with sustain constant through the segment (flagged
    steady, ``kernels.steady``, or else scanned); if so,
    each lane's step is one formula, x <- min(max(aim + (x - aim) * mul + inc, lo), hi),
    whose constants go to the state rows ``_A_AIM``..``_A_HI``. It gives ``_advance``'s
    numbers exactly: in attack (aim 0, mul 1, ceiling 1) x + inc; in decay and release the
    same recursion and floor; in sustain (mul 0) the sustain level; idle 0."""
    n = s1 - s0
    if not (sustain_steady or _row_holds(sustain, s0, s1, nl)):
        return False
    for v in range(nl):
        if st[_A_STAGE, v] == ATTACK and not st[_A_LEVEL, v] + (n + 1) * st[_A_ATT_INC, v] < 1.0:
            return False  # reaches the top (and turns to decay) in this segment
    inf = math.inf
    for v in range(nl):
        stage = st[_A_STAGE, v]
        s = sustain[s0, v]
        aim, mul, inc, lo, hi = 0.0, 0.0, 0.0, -inf, inf
        if stage == ATTACK:
            mul, inc, hi = 1.0, st[_A_ATT_INC, v], 1.0
        elif stage == DECAY:
            aim, mul, lo = s - OVERSHOOT * (1.0 - s), st[_A_DEC_C, v], s
        elif stage == SUSTAIN:
            aim = s
        elif stage == RELEASE:
            aim, mul, lo = st[_A_REL_AIM, v], st[_A_REL_C, v], 0.0
        st[_A_AIM, v] = aim
        st[_A_MUL, v] = mul
        st[_A_INC, v] = inc
        st[_A_LO, v] = lo
        st[_A_HI, v] = hi
    return True


@njit(cache=True, inline="always")
def _land(out, st, lo, s1, nl):
    """After a steady segment: the level is the last sample's; decay lanes that landed on
    sustain sustain, release lanes at 0 idle."""
    level = st[_A_LEVEL]
    for v in range(nl):
        x = out[s1 - 1, v]
        level[v] = x
        stage = st[_A_STAGE, v]
        if stage == DECAY and x <= lo[v]:
            stage = SUSTAIN
        elif stage == RELEASE and x <= 0.0:
            stage = IDLE
        st[_A_STAGE, v] = stage


@lane_loop
def _run_steady(out, st, s0, s1, nl, first=_A_AIM):
    """The steady segment (``_steady_segment``) across lanes: the distance y from the aim
    follows y <- y * mul + inc and the output is aim + y clamped (a clamped decay or release
    stays on its floor either way, so the clamp need not be in the recursion: a shorter
    chain from sample to sample); then decay lanes that landed on sustain sustain and
    release lanes at 0 idle. The step's rows start at ``first`` (the ADSR's ``_A_AIM``, the
    curved envelopes' ``E_AIM``); stage and level are rows 0 and 1 of both."""
    aim, mul, inc, lo, hi, level = _step_rows(st, first, nl)
    if _all_flat(level, mul, inc, nl):
        # Every lane sustaining or idle: y is 0.0 from the first sample on, so every sample
        # is the same number. 16 sustaining voices, kernel alone: adsr 1.10 -> 0.48-0.60 us
        # per block, adsr_curve 1.45 -> 0.62.
        for v in range(nl):
            level[v] = min(max(aim[v] + 0.0, lo[v]), hi[v])
        for i in range(s0, s1):
            for v in range(nl):
                out[i, v] = level[v]
    elif nl == 1:  # one voice: sample after sample, the distance in a register
        y, m, c, a, floor, ceiling = level[0], mul[0], inc[0], aim[0], lo[0], hi[0]
        for i in range(s0, s1):
            y = y * m + c
            out[i, 0] = min(max(a + y, floor), ceiling)
    else:
        for i in range(s0, s1):
            for v in range(nl):
                y = level[v] * mul[v] + inc[v]
                level[v] = y
                out[i, v] = min(max(aim[v] + y, lo[v]), hi[v])
    _land(out, st, lo, s1, nl)


@njit(cache=True, inline="always")
def _step_rows(st, first, nl):
    """The steady step's rows from ``first`` (aim, mul, inc, floor, ceiling) and the level row,
    turned into the level's distance from the aim: the one number the steps carry along."""
    aim, mul, inc, lo, hi = st[first], st[first + 1], st[first + 2], st[first + 3], st[first + 4]
    level = st[_A_LEVEL]
    for v in range(nl):
        level[v] -= aim[v]
    return aim, mul, inc, lo, hi, level


@njit(cache=True, inline="always")
def _steps(y, mul, inc, n):
    """The distance y after n steps y <- y * mul + inc, in closed form: y * mul ** n + inc * n
    when mul is 1 (an attack), else y * mul ** n + inc * (1 - mul ** n) / (1 - mul); the
    recursion's value up to rounding."""
    mn = _pow_int(mul, n)
    return y * mn + inc * (n if mul == 1.0 else (1.0 - mn) / (1.0 - mul))


@njit(cache=True, inline="always")
def _all_flat(y, mul, inc, nl):
    """Whether every lane's step y <- y * mul + inc gives 0.0 from its first sample on: mul
    and inc 0 (sustain, idle) and y finite."""
    flat = 0
    for v in range(nl):
        flat += (mul[v] == 0.0) & (inc[v] == 0.0) & (abs(y[v]) < math.inf)
    return flat == nl


@njit(cache=True, inline="always")
def _pow_int(m, n):
    """m ** n for a whole n in [0, 128), by its bits, without a loop or a libm call (it runs
    inside loops across lanes, which LLVM then still vectorizes)."""
    r = m if n & 1 else 1.0
    b = m * m
    if n & 2:
        r *= b
    b *= b
    if n & 4:
        r *= b
    b *= b
    if n & 8:
        r *= b
    b *= b
    if n & 16:
        r *= b
    b *= b
    if n & 32:
        r *= b
    if n & 64:
        r *= b * b
    return r


@njit(cache=True, error_model="numpy")
def _run_steady_points(out, st, s0, start, s1, nl, first=_A_AIM):
    """``_run_steady`` writing only the modulation points in [start, s1) (``layout.MOD_STEP``:
    s0 + k * MOD_STEP and s1 - 1), all a non-linear modulation reads: from one point to the
    next, n samples on, the distance from the aim in closed form (``_steps``). The other
    samples of ``out`` are left as they were. poly16's filter envelope at 16 lanes: see
    ``adsr_kernel``."""
    aim, mul, inc, lo, hi, level = _step_rows(st, first, nl)
    last = s1 - 1
    prev = start - 1
    p = min(s0 + (start - s0 + MOD_STEP - 1) // MOD_STEP * MOD_STEP, last)
    while True:
        n = p - prev
        for v in range(nl):
            y = _steps(level[v], mul[v], inc[v], n)
            level[v] = y
            out[p, v] = min(max(aim[v] + y, lo[v]), hi[v])
        if p >= last:
            break
        prev = p
        p = min(p + MOD_STEP, last)
    _land(out, st, lo, s1, nl)


@lane_loop
def adsr_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """ADSR: a gate rising edge or a trigger starts the attack, a low gate releases it (the
    gate rule in the module docstring, zero-length notes included).

    Branch-free per sample so LLVM vectorizes it across voices. With the gate and trigger
    inputs unpatched, the engine changes them only at a segment's first sample, so edges are
    handled there (and after a zero-length note for the second sample) and the loop only
    advances the stages; when no lane turns from attack to decay in the segment and sustain
    holds (nearly always), that is one multiply-add per sample and lane (``_run_steady``):
    the kernel alone, sustaining, 1.5 -> 1.1 us per block at 16 lanes, 0.85 -> 0.40 at one
    (the branchy one-voice-at-a-time version is kept as reference in tests/naive.py). An
    envelope read only at the modulation points (a filter envelope: ``layout``, part 1) jumps
    from point to point there (``_run_steady_points``). The decay and release coefficients
    (libm exp) are computed only when their time changes. Kernel alone at 16 lanes,
    sustaining, in one native loop: 0.90 us per block -> 0.73 with the coefficients kept,
    0.37 at the points (AMD EPYC, Zen 4). State rows: ``_A_*``.
    """
    gate = bufs[io[0]]
    trig = bufs[io[1]]
    out = bufs[io[2]]
    sustain = P[pr[2]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    for v in range(nl):
        att_samples = P[pr[0], s0, v] * 0.001 * sr
        st[4, v] = 1.0 / att_samples if att_samples >= 1.0 else 2.0
    for v in range(nl):  # exp is a libm call: only for a time that changed
        decay_ms = P[pr[1], s0, v]
        if decay_ms != st[_A_DEC_MS, v]:
            st[_A_DEC_C, v] = _exp_coeff(decay_ms, sr)
            st[_A_DEC_MS, v] = decay_ms
        release_ms = P[pr[3], s0, v]
        if release_ms != st[_A_REL_MS, v]:
            st[_A_REL_C, v] = _exp_coeff(release_ms, sr)
            st[_A_REL_MS, v] = release_ms
    if io[0] == ROW_GATE and io[1] == ROW_TRIGGER:
        zero_length = 0
        for v in range(nl):
            zero_length += (trig[s0, v] > 0.5) * (gate[s0, v] <= 0.5)
            st[0, v], st[3, v] = _edges(gate[s0, v], st[2, v], trig[s0, v], st[0, v], st[1, v],
                                        st[3, v])
            st[2, v] = gate[s0, v]
        start = s0
        if zero_length > 0:
            # A zero-length note: its first sample is attack, then the edges once more for
            # the second sample, where the low gate releases it. (In a one-sample segment that
            # comes before the next segment's own edges, to the same effect.)
            for v in range(nl):
                st[0, v], st[1, v] = _advance(st[0, v], st[1, v], sustain[s0, v], st[3, v],
                                              st[4, v], st[5, v], st[6, v])
                out[s0, v] = st[1, v]
                st[0, v], st[3, v] = _edges(gate[s0, v], st[2, v], 0.0, st[0, v], st[1, v],
                                            st[3, v])
            start = s0 + 1
        if start < s1 and _steady_segment(sustain, row_steady(ctx, pr[2]), st, start, s1, nl):
            if st[_A_POINTS, 0] != 0.0:
                _run_steady_points(out, st, s0, start, s1, nl)
            else:
                _run_steady(out, st, start, s1, nl)
            return
        for i in range(start, s1):
            for v in range(nl):
                st[0, v], st[1, v] = _advance(st[0, v], st[1, v], sustain[i, v], st[3, v],
                                              st[4, v], st[5, v], st[6, v])
                out[i, v] = st[1, v]
        return
    for i in range(s0, s1):
        for v in range(nl):
            stage, rel_aim = _edges(gate[i, v], st[2, v], trig[i, v], st[0, v], st[1, v],
                                    st[3, v])
            st[2, v] = gate[i, v]
            st[3, v] = rel_aim
            st[0, v], st[1, v] = _advance(stage, st[1, v], sustain[i, v], rel_aim, st[4, v],
                                          st[5, v], st[6, v])
            out[i, v] = st[1, v]


# ---- AR and curved ADSR (ar, adsr_curve) --------------------------------------------------------

K_MAX = math.log(1.0e4)  # adsr_curve at curve 1: each stage spans 80 dB of an exponential
AR_OVERSHOOT = 0.001  # ar's release aims 0.1% of its travel past zero, like adsr's
AR_RELEASE_K = math.log((1.0 + AR_OVERSHOOT) / AR_OVERSHOOT)
LAND_TOL = 1e-10  # a stage has landed when this close to its goal
(E_STAGE, E_LEVEL, E_PREV_GATE, E_REL_START, E_A_ATT, E_B_ATT, E_A_DEC, E_B_DEC, E_A_REL,
 E_B_REL, E_KEY_ATT, E_KEY_DEC, E_KEY_REL, E_KEY_CURVE, E_AIM) = range(15)
# stage, level, previous gate, release start level, per-stage (A, B), cache keys; then the
# steady path's per-lane step from E_AIM (aim, factor, increment, floor, ceiling: _run_steady);
# then E_POINTS (``env_read_at_points``)
E_POINTS = E_AIM + 5  # 1.0 when the output is read only at the modulation points
ENV_STATE = E_POINTS + 1
_STEADY_MARGIN = 1e-9  # a steady segment ends this far from a landing at least


NO_KEY = -1.0  # a cache key no parameter takes (times and curve are >= 0); finite, so a scan
#                for blown-up (non-finite) state never mistakes it for one


def env_read_at_points(state) -> None:
    """Mark a fresh curved-envelope state (one lane's column) as read only at the points."""
    state[E_POINTS] = 1.0


def env_reset(state):
    """Fresh envelope state: idle at 0, coefficients not yet computed."""
    state[:] = 0.0
    state[E_KEY_ATT:E_KEY_CURVE + 1] = NO_KEY


@njit(cache=True)
def stage_coeffs(time_ms, k, sample_rate):
    """(A, B) of a stage lasting ``time_ms`` with curvature ``k`` (module docstring)."""
    n = time_ms * 0.001 * sample_rate
    if not n >= 1.0:  # shorter than a sample (or NaN): land on the goal at once
        return 1.0, 0.0
    if k < 1e-9:
        return 0.0, 1.0 / n
    a = -math.expm1(-k / n)
    return a, a / math.expm1(k)


@njit(cache=True, inline="always")
def _env_edges(g, prev_gate, trig, stage, level, rel_start, hard):
    """(stage, level, release start) after this sample's gate and trigger: a trigger or a
    rising gate starts the attack (from 0 when ``hard``), else a low gate releases an envelope
    in attack, decay or sustain (``gate_rule``; the module docstring says why, zero-length
    notes included)."""
    on, off, stage = gate_rule(g, prev_gate, trig, stage)
    level = level * (1.0 - on * hard)
    rel_start = off * level + (1.0 - off) * rel_start
    return stage, level, rel_start


@njit(cache=True, inline="always")
def _env_advance(stage, level, s, rel_start, aa, ba, ad, bd, ar, br):
    """(stage, level) one sample on; every stage's next level is computed and the current
    one kept with 0/1 masks, so loops across voices vectorize."""
    att = min(level + aa * (1.0 - level) + ba, 1.0)
    att_done = (att >= 1.0 - LAND_TOL) * 1.0
    att += att_done * (1.0 - att)
    dec = level + ad * (s - level) + bd * (s - 1.0)
    dec_done = (dec <= s + LAND_TOL) * 1.0
    dec += dec_done * (s - dec)
    rel = level - ar * level - br * rel_start
    rel_done = (rel <= LAND_TOL) * 1.0
    rel *= 1.0 - rel_done
    m_att = (stage == ATTACK) * 1.0
    m_dec = (stage == DECAY) * 1.0
    m_sus = (stage == SUSTAIN) * 1.0
    m_rel = (stage == RELEASE) * 1.0
    level = m_att * att + m_dec * dec + m_sus * s + m_rel * rel
    stage += m_att * att_done + m_dec * dec_done - RELEASE * m_rel * rel_done
    return stage, level


@njit(cache=True, error_model="numpy")
def _env_steady_segment(sustain, sustain_steady, st, s0, s1, nl):
    """Whether no lane lands on a goal (or changes stage) between samples s0 and s1, with
    sustain constant through the segment; if so, each lane's stage is one recursion on its
    distance y from the goal, y <- y * (1 - A) + c (``_env_advance``'s formula rearranged,
    equal up to rounding), whose constants go to the rows from E_AIM for ``_run_steady``. A
    stage approaches its goal monotonically, so the level after the segment, in closed form,
    says whether it lands there: it must stay _STEADY_MARGIN short of the landing."""
    n = s1 - s0
    if not (sustain_steady or _row_holds(sustain, s0, s1, nl)):
        return False
    inf = math.inf
    for v in range(nl):
        stage = st[E_STAGE, v]
        s = sustain[s0, v]
        aim, mul, inc = 0.0, 0.0, 0.0
        if stage == ATTACK:
            aim, mul, inc = 1.0, 1.0 - st[E_A_ATT, v], st[E_B_ATT, v]
        elif stage == DECAY:
            aim, mul, inc = s, 1.0 - st[E_A_DEC, v], st[E_B_DEC, v] * (s - 1.0)
        elif stage == SUSTAIN:
            aim = s
        elif stage == RELEASE:
            mul, inc = 1.0 - st[E_A_REL, v], -st[E_B_REL, v] * st[E_REL_START, v]
        x = aim + _steps(st[E_LEVEL, v] - aim, mul, inc, n)
        if stage == ATTACK and not x < 1.0 - LAND_TOL - _STEADY_MARGIN:
            return False
        if stage == DECAY and not x > s + LAND_TOL + _STEADY_MARGIN:
            return False
        if stage == RELEASE and not x > LAND_TOL + _STEADY_MARGIN:
            return False
        st[E_AIM, v] = aim
        st[E_AIM + 1, v] = mul
        st[E_AIM + 2, v] = inc
        st[E_AIM + 3, v] = -inf
        st[E_AIM + 4, v] = inf
    return True


@njit(cache=True, error_model="numpy")
def _env_run(bufs, io, sustain, sustain_steady, st, hard, s0, s1, nl):
    """Gate/trigger edges and stage advance over [s0, s1) for every lane (coefficients in st).

    With gate and trigger unpatched, the engine changes them only at a segment's first sample,
    so edges are handled there (and, when a lane has a zero-length note, once more for the
    second sample, where its low gate releases it) and the loop only advances the stages."""
    gate = bufs[io[0]]
    trig = bufs[io[1]]
    out = bufs[io[2]]
    if io[0] == ROW_GATE and io[1] == ROW_TRIGGER:
        zero_length = 0
        for v in range(nl):
            zero_length += (trig[s0, v] > 0.5) * (gate[s0, v] <= 0.5)
            st[E_STAGE, v], st[E_LEVEL, v], st[E_REL_START, v] = _env_edges(
                gate[s0, v], st[E_PREV_GATE, v], trig[s0, v], st[E_STAGE, v], st[E_LEVEL, v],
                st[E_REL_START, v], hard)
            st[E_PREV_GATE, v] = gate[s0, v]
        start = s0
        if zero_length > 0:  # its first sample, then the edges for the second
            for v in range(nl):
                st[E_STAGE, v], st[E_LEVEL, v] = _env_advance(
                    st[E_STAGE, v], st[E_LEVEL, v], sustain[s0, v], st[E_REL_START, v],
                    st[E_A_ATT, v], st[E_B_ATT, v], st[E_A_DEC, v], st[E_B_DEC, v],
                    st[E_A_REL, v], st[E_B_REL, v])
                out[s0, v] = st[E_LEVEL, v]
                st[E_STAGE, v], st[E_LEVEL, v], st[E_REL_START, v] = _env_edges(
                    gate[s0, v], st[E_PREV_GATE, v], 0.0, st[E_STAGE, v], st[E_LEVEL, v],
                    st[E_REL_START, v], hard)
            start = s0 + 1
        if start < s1 and _env_steady_segment(sustain, sustain_steady, st, start, s1, nl):
            if st[E_POINTS, 0] != 0.0:
                _run_steady_points(out, st, s0, start, s1, nl, E_AIM)
            else:
                _run_steady(out, st, start, s1, nl, E_AIM)
            return
        for i in range(start, s1):
            for v in range(nl):
                st[E_STAGE, v], st[E_LEVEL, v] = _env_advance(
                    st[E_STAGE, v], st[E_LEVEL, v], sustain[i, v], st[E_REL_START, v],
                    st[E_A_ATT, v], st[E_B_ATT, v], st[E_A_DEC, v], st[E_B_DEC, v],
                    st[E_A_REL, v], st[E_B_REL, v])
                out[i, v] = st[E_LEVEL, v]
        return
    for i in range(s0, s1):
        for v in range(nl):
            stage, level, rel_start = _env_edges(gate[i, v], st[E_PREV_GATE, v], trig[i, v],
                                                 st[E_STAGE, v], st[E_LEVEL, v],
                                                 st[E_REL_START, v], hard)
            st[E_PREV_GATE, v] = gate[i, v]
            st[E_REL_START, v] = rel_start
            st[E_STAGE, v], st[E_LEVEL, v] = _env_advance(
                stage, level, sustain[i, v], rel_start, st[E_A_ATT, v], st[E_B_ATT, v],
                st[E_A_DEC, v], st[E_B_DEC, v], st[E_A_REL, v], st[E_B_REL, v])
            out[i, v] = st[E_LEVEL, v]


@lane_loop
def adsr_curve_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """ADSR with a shared stage ``curve`` (0 linear .. 1: 80 dB exponential; module docstring)
    and a ``retrigger`` choice: 0 from the current level, 1 from zero. Every stage lands on its
    goal after ceil(time * sr) samples (tests: exact to the sample at 44.1/48/96 kHz).

    Times and curve are read at each segment start; (A, B) are recomputed only when they
    changed (expm1 is a libm call: 6 per lane would cost more than the whole sample loop).
    Params: attack_ms, decay_ms, sustain, release_ms, curve, retrigger.
    """
    sr = ctx[CTX_SAMPLE_RATE, 0]
    for v in range(nl):
        ta, td, tr = P[pr[0], s0, v], P[pr[1], s0, v], P[pr[3], s0, v]
        c = P[pr[4], s0, v]
        if c != st[E_KEY_CURVE, v]:
            st[E_KEY_ATT, v] = st[E_KEY_DEC, v] = st[E_KEY_REL, v] = NO_KEY
            st[E_KEY_CURVE, v] = c
        k = min(max(c, 0.0), 1.0) * K_MAX
        if ta != st[E_KEY_ATT, v]:
            st[E_A_ATT, v], st[E_B_ATT, v] = stage_coeffs(ta, k, sr)
            st[E_KEY_ATT, v] = ta
        if td != st[E_KEY_DEC, v]:
            st[E_A_DEC, v], st[E_B_DEC, v] = stage_coeffs(td, k, sr)
            st[E_KEY_DEC, v] = td
        if tr != st[E_KEY_REL, v]:
            st[E_A_REL, v], st[E_B_REL, v] = stage_coeffs(tr, k, sr)
            st[E_KEY_REL, v] = tr
    hard = 1.0 if P[pr[5], s0, 0] >= 0.5 else 0.0
    _env_run(bufs, io, P[pr[2]], row_steady(ctx, pr[2]), st, hard, s0, s1, nl)


@lane_loop
def ar_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Attack-release: a linear attack to 1 (rate-based, 0 -> 1 in ``attack_ms``), held while
    the gate is high, then a release aimed 0.1% of its travel past zero that lands on 0 after
    exactly ``release_ms`` (ceil(time * sr) samples) from wherever it starts.
    Params: attack_ms, release_ms."""
    sr = ctx[CTX_SAMPLE_RATE, 0]
    for v in range(nl):
        ta, tr = P[pr[0], s0, v], P[pr[1], s0, v]
        if ta != st[E_KEY_ATT, v]:
            st[E_A_ATT, v], st[E_B_ATT, v] = stage_coeffs(ta, 0.0, sr)
            st[E_KEY_ATT, v] = ta
        if tr != st[E_KEY_REL, v]:
            st[E_A_REL, v], st[E_B_REL, v] = stage_coeffs(tr, AR_RELEASE_K, sr)
            st[E_KEY_REL, v] = tr
        st[E_A_DEC, v] = 1.0  # sustain is 1: the decay stage lands at once
        st[E_B_DEC, v] = 0.0
    _env_run(bufs, io, bufs[ROW_ONE], True, st, 0.0, s0, s1, nl)
