"""Slow, obvious references for the numba kernels: one voice, one sample at a time, plain Python
and math, no approximations. Tests run both and compare."""

import math

OVERSHOOT = 0.001
IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = 0, 1, 2, 3, 4


def adsr(gate, trig, attack_ms, decay_ms, sustain, release_ms, sample_rate):
    """The ADSR as a stage machine: linear attack, decay and release aimed OVERSHOOT past their
    goal so they land on it after exactly their time. A trigger or a rising gate starts the
    attack; else a low gate releases an attack, decay or sustain (so a trigger with the gate
    already low, a zero-length note, plays one sample of attack and then releases)."""
    shape = math.log((1 + OVERSHOOT) / OVERSHOOT)

    def coeff(ms):
        n = ms * 0.001 * sample_rate
        return 0.0 if n < 1 else math.exp(-shape / n)

    att_n = attack_ms * 0.001 * sample_rate
    att_inc = 1.0 / att_n if att_n >= 1 else 2.0
    dec_c, rel_c = coeff(decay_ms), coeff(release_ms)
    stage, level, prev, rel_aim = IDLE, 0.0, 0.0, 0.0
    out = []
    for g, t in zip(gate, trig):
        if t > 0.5 or (g > 0.5 and prev <= 0.5):
            stage = ATTACK
        elif g <= 0.5 and stage in (ATTACK, DECAY, SUSTAIN):
            stage = RELEASE
            rel_aim = -OVERSHOOT * level
        prev = g
        if stage == ATTACK:
            level += att_inc
            if level >= 1.0:
                level, stage = 1.0, DECAY
        elif stage == DECAY:
            aim = sustain - OVERSHOOT * (1 - sustain)
            level = aim + (level - aim) * dec_c
            if level <= sustain:
                level, stage = sustain, SUSTAIN
        elif stage == SUSTAIN:
            level = sustain
        elif stage == RELEASE:
            level = rel_aim + (level - rel_aim) * rel_c
            if level <= 0.0:
                level, stage = 0.0, IDLE
        out.append(level)
    return out


def svf_lowpass(x, cutoff_hz, resonance, sample_rate):
    """TPT state-variable low-pass with exact coefficients recomputed every sample."""
    ic1 = ic2 = 0.0
    out = []
    for xi, fc, r in zip(x, cutoff_hz, resonance):
        fc = min(max(fc, 1.0), 0.49 * sample_rate)
        g = math.tan(math.pi * fc / sample_rate)
        k = 2.0 * 100.0 ** (-min(max(r, 0.0), 1.0))
        a1 = 1 / (1 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        v3 = xi - ic2
        v1 = a1 * ic1 + a2 * v3
        v2 = ic2 + a2 * ic1 + a3 * v3
        ic1, ic2 = 2 * v1 - ic1, 2 * v2 - ic2
        out.append(v2)
    return out


def saw(freq_hz, sample_rate, level=1.0):
    """PolyBLEP sawtooth from phase 0."""
    phase = 0.0
    out = []
    for f in freq_hz:
        dt = min(max(f / sample_rate, 1e-9), 0.5)
        y = 2 * phase - 1
        if phase < dt:
            t = phase / dt
            y -= t + t - t * t - 1
        elif phase > 1 - dt:
            t = (phase - 1) / dt
            y -= t * t + t + t + 1
        out.append(level * y)
        phase += dt
        if phase >= 1:
            phase -= 1
    return out
