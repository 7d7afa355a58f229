"""Envelope kernels. Contract: ``instrument.modules.layout``.

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


@njit(cache=True, inline="always")
def _exp_coeff(time_ms, sample_rate):
    samples = time_ms * 0.001 * sample_rate
    if samples < 1.0:
        return 0.0
    return math.exp(-_LOG_SHAPE / samples)


@njit(cache=True, error_model="numpy")
def adsr_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """ADSR: a gate rising edge or a trigger starts the attack, a falling edge the release.

    State: stage, level, previous gate, release aim (goal minus overshoot).
    """
    gate = bufs[io[0]]
    trig = bufs[io[1]]
    out = bufs[io[2]]
    sr = ctx[CTX_SAMPLE_RATE]
    attack_ms = P[pr[0], s0]
    sustain = P[pr[2]]
    att_samples = attack_ms * 0.001 * sr
    att_inc = 1.0 / att_samples if att_samples >= 1.0 else 2.0
    dec_c = _exp_coeff(P[pr[1], s0], sr)
    rel_c = _exp_coeff(P[pr[3], s0], sr)
    stage, level, prev_gate, rel_aim = st[0], st[1], st[2], st[3]
    for i in range(s0, s1):
        g = gate[i]
        if trig[i] > 0.5 or (g > 0.5 and prev_gate <= 0.5):
            stage = ATTACK
        elif g <= 0.5 and prev_gate > 0.5 and stage != IDLE:
            stage = RELEASE
            rel_aim = -OVERSHOOT * level
        prev_gate = g
        if stage == ATTACK:
            level += att_inc
            if level >= 1.0:
                level = 1.0
                stage = DECAY
        elif stage == DECAY:
            s = sustain[i]
            level = (s - OVERSHOOT * (1.0 - s)) + (level - (s - OVERSHOOT * (1.0 - s))) * dec_c
            if level <= s:
                level = s
                stage = SUSTAIN
        elif stage == SUSTAIN:
            level = sustain[i]
        elif stage == RELEASE:
            level = rel_aim + (level - rel_aim) * rel_c
            if level <= 0.0:
                level = 0.0
                stage = IDLE
        out[i] = level
    st[0], st[1], st[2], st[3] = stage, level, prev_gate, rel_aim
