"""Envelope kernels, voice lanes. Contract: ``instrument.layout``.

ADSR stages have exact durations: attack is a linear ramp from the current level to 1 in
``attack_ms``; decay and release are exponential curves aimed past their goal (by OVERSHOOT of
the travel) so that they land on it exactly after ``decay_ms`` / ``release_ms`` and stop there,
with no tail and no step. Times are read at the start of each segment.

Gate rule (this ADSR and the AR/ADSR envelopes of ``kernels.modulation``):

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
"""

import math

from numba import njit

from instrument.layout import CTX_SAMPLE_RATE, ROW_GATE, ROW_TRIGGER

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
def _edges(g, prev_gate, trig, stage, level, rel_aim):
    """(stage, release aim) after this sample's gate and trigger, by the gate rule of the
    module docstring: a trigger or a rising gate starts the attack, else a low gate releases
    an envelope in attack, decay or sustain. As 0/1 arithmetic, without branches."""
    g_high = (g > 0.5) * 1.0
    was_high = (prev_gate > 0.5) * 1.0
    t_high = (trig > 0.5) * 1.0
    rise = g_high * (1.0 - was_high)
    on = t_high + rise - t_high * rise
    off = (1.0 - on) * (1.0 - g_high) * ((stage >= ATTACK) * (stage <= SUSTAIN) * 1.0)
    stage = on * ATTACK + off * RELEASE + (1.0 - on) * (1.0 - off) * stage
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


@njit(cache=True, error_model="numpy")
def adsr_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """ADSR: a gate rising edge or a trigger starts the attack, a low gate releases it (the
    gate rule in the module docstring, zero-length notes included).

    Branch-free per sample so LLVM vectorizes it across voices. With the gate and trigger
    inputs unpatched, the engine changes them only at a segment's first sample, so edges are
    handled there (and after a zero-length note for the second sample) and the loop only
    advances the stages: 50 ns per voice per 64 samples
    (the branchy one-voice-at-a-time version, kept as reference in tests/naive.py, took
    110-140 ns). State rows: stage, level, previous gate, release aim, and the segment's
    attack step and decay/release coefficients.
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
