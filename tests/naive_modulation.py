"""Slow, obvious references for the modulation kernels (instrument/kernels/modulation.py) and
the AR and curved ADSR envelopes (instrument/kernels/envelopes.py): one voice, one sample at a
time, plain Python and math (math.sin, math.exp), no approximations. Tests run both and
compare."""

import math

IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = 0, 1, 2, 3, 4
LAND_TOL = 1e-10


def xorshift32(x):
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


def lfo(n, sample_rate, shape, rate_hz, depth=1.0, mode=0, phase_deg=0.0, unipolar=0,
        trig=None, seed=1):
    """LFO as written in its docstring: phase t in turns, shape at t, then the phase advances.
    ``rate_hz``, ``depth`` and ``phase_deg`` are numbers or per-sample sequences."""
    def at(x, i):
        return x[i] if hasattr(x, "__len__") else x

    phase = 0.0
    rng = seed
    held = 0.0
    prev_t = None
    out = []
    for i in range(n):
        draw = prev_t is None
        if mode == 1 and trig is not None and trig[i] > 0.5:
            phase = 0.0
            draw = True
        t = (phase + at(phase_deg, i) / 360.0) % 1.0
        if shape == 0:
            y = math.sin(2 * math.pi * t)
        elif shape == 1:  # 0 at t=0, +1 at 1/4, 0 at 1/2, -1 at 3/4
            y = 4 * t if t < 0.25 else (2 - 4 * t if t < 0.75 else 4 * t - 4)
        elif shape == 2:  # 0 at t=0 rising to +1 at 1/2, then from -1
            y = 2 * t if t < 0.5 else 2 * t - 2
        elif shape == 3:
            y = 1.0 if t < 0.5 else -1.0
        else:
            if draw or (prev_t is not None and t < prev_t - 0.5):
                rng = xorshift32(rng)
                held = rng / 2 ** 31 - 1.0
            y = held
        prev_t = t
        out.append(at(depth, i) * ((y + 1) / 2 if unipolar else y))
        phase += at(rate_hz, i) / sample_rate
        if phase >= 1.0:
            phase -= 1.0
    return out


def envelope(gate, trig, sample_rate, attack_ms, decay_ms, sustain, release_ms, k_att, k_dec,
             k_rel, hard=False):
    """Stage machine; each stage is an exponential aimed eps = 1/(e^k - 1) of its nominal travel
    past its goal (a straight line for k = 0). Attack nominal 0 -> 1, decay 1 -> sustain,
    release from the level where it starts to 0. A trigger or a rising gate starts the attack;
    else a low gate releases an attack, decay or sustain (so a trigger with the gate already
    low, a zero-length note, plays one sample of attack and then releases)."""
    def plan(ms, k):
        n = ms * 0.001 * sample_rate
        if n < 1:
            return None, None  # lands at once
        if k == 0:
            return 1.0 / n, None  # linear: step per unit of travel
        return math.exp(-k / n), 1.0 / (math.exp(k) - 1.0)

    def step(y, goal, travel, ms, k):
        c, eps = plan(ms, k)
        if c is None:
            return goal
        if eps is None:
            return y + travel * c
        aim = goal + eps * travel
        return aim + (y - aim) * c

    stage, level, prev, rel_start = IDLE, 0.0, 0.0, 0.0
    out = []
    for g, t in zip(gate, trig):
        if t > 0.5 or (g > 0.5 and prev <= 0.5):
            stage = ATTACK
            if hard:
                level = 0.0
        elif g <= 0.5 and stage in (ATTACK, DECAY, SUSTAIN):
            stage = RELEASE
            rel_start = level
        prev = g
        if stage == ATTACK:
            level = min(step(level, 1.0, 1.0, attack_ms, k_att), 1.0)
            if level >= 1.0 - LAND_TOL:
                level, stage = 1.0, DECAY
        elif stage == DECAY:
            level = step(level, sustain, sustain - 1.0, decay_ms, k_dec)
            if level <= sustain + LAND_TOL:
                level, stage = sustain, SUSTAIN
        elif stage == SUSTAIN:
            level = sustain
        elif stage == RELEASE:
            level = step(level, 0.0, -rel_start, release_ms, k_rel)
            if level <= LAND_TOL:
                level, stage = 0.0, IDLE
        out.append(level)
    return out


def slew(x, sample_rate, time_ms, exponential):
    y = x[0]
    n = time_ms * 0.001 * sample_rate
    out = []
    for xi in x:
        if n <= 0:
            y = xi
        elif exponential:
            y += (xi - y) * (1.0 - math.exp(-1.0 / n))
        else:
            y += min(max(xi - y, -1.0 / n), 1.0 / n)
        out.append(y)
    return out


def pan(x, pan_pos):
    """Equal-power pan: (left, right) lists."""
    left, right = [], []
    for xi, p in zip(x, pan_pos):
        theta = (min(max(p, -1.0), 1.0) + 1.0) * math.pi / 4
        left.append(xi * math.cos(theta))
        right.append(xi * math.sin(theta))
    return left, right


def width(left, right, w):
    out_l, out_r = [], []
    for a, b, wi in zip(left, right, w):
        mid, side = (a + b) / 2, (a - b) / 2 * wi
        out_l.append(mid + side)
        out_r.append(mid - side)
    return out_l, out_r
