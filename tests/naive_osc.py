"""Slow, obvious references for the oscillator-shape and noise kernels: one voice, one sample
at a time, plain Python and math. The band-limited ones keep a list of every discontinuity
found so far (its sample, how far before that sample it happened, its height) and add each
one's residual, read from the kernel module's tables (the tables are data: what they are is
tested on their own in test_oscillators.py), for the N_TAPS samples after it."""

import math

from instrument.kernels import noise as nz
from instrument.kernels import minblep as k, osc_pulse as kp

MIN_INC, MAX_INC = k.MIN_INC, k.MAX_INC


def residual(table, tau):
    """The tabulated residual at ``tau`` samples after a discontinuity, linearly
    interpolated between the table's phases; 0 from N_TAPS on."""
    if tau >= k.N_TAPS:
        return 0.0
    j = int(tau)
    x = (tau - j) * k.OVERSAMPLE
    m = min(int(x), k.OVERSAMPLE - 1)
    f = x - m
    a = table[m][j]
    return a + f * (table[m + 1][j] - a)


class Corrections:
    """The discontinuities seen so far and the sum of their residuals at a sample."""

    def __init__(self):
        self.events = []  # (sample, d, height, table)

    def add(self, n, d, height, table=k.STEP_TABLE):
        self.events.append((n, d, height, table))

    def at(self, n):
        total = 0.0
        for n_e, d, height, table in self.events:
            if 0 <= n - n_e < k.N_TAPS:
                total += height * residual(table, n - n_e + d)
        return total


def _inc(f, sample_rate, ratio=1.0):
    return min(max(f * ratio / sample_rate, MIN_INC), MAX_INC)


def saw(freq_hz, sample_rate, level=1.0, ratio=1.0, sync=None, phase=0.0, gain=None):
    """Band-limited rising saw; with ``sync``, a rising edge restarts the phase 1 - s samples
    before the sample. ``gain`` (a list) scales each sample and its residuals (unison)."""
    corr = Corrections()
    out = []
    sync_prev = 0.0
    for n, f in enumerate(freq_hz):
        dt = _inc(f, sample_rate, ratio)
        g = 1.0 if gain is None else gain[n]
        s = 0.0 if sync is None else sync[n]
        t = phase + dt
        if s > 0.0 and sync_prev <= 0.0:
            d = 1.0 - min(s, 1.0)
            q = phase + dt * (1.0 - d)  # where the restart interrupts the cycle
            if q >= 1.0:
                corr.add(n, 1.0 - (1.0 - phase) / dt, -2.0 * g)
                q -= 1.0
            corr.add(n, d, -2.0 * q * g)
            t = dt * d
        elif t >= 1.0:
            t -= 1.0
            corr.add(n, t / dt, -2.0 * g)
        sync_prev = s
        phase = t
        out.append(level * (g * (2.0 * t - 1.0 - 2.0 * k.STEP_DELAY * dt) + corr.at(n)))
    return out


def saw_sync_output(freq_hz, sample_rate):
    """The ``sync`` output of saw: 1 - d on a sample whose phase wrapped d samples
    before it."""
    phase = 0.0
    out = []
    for f in freq_hz:
        dt = _inc(f, sample_rate)
        t = phase + dt
        if t >= 1.0:
            t -= 1.0
            out.append(1.0 - t / dt)
        else:
            out.append(0.0)
        phase = t
    return out


def _clamp_width(w):
    return min(max(w, kp.MIN_WIDTH), kp.MAX_WIDTH)


def _crossing(a0, a1):
    """Where in [0, 1] a line from a0 to a1 crosses zero."""
    return min(max(-a0 / (a1 - a0), 0.0), 1.0) if a1 != a0 else 1.0


def pulse(freq_hz, width, sample_rate, level=1.0):
    """Band-limited pulse: +1 while the phase is below the width, else -1, minus the mean
    2 w - 1. Within a sample the phase and the width move linearly; every crossing of the
    two, and every wrap, is a step at its position. Also returns the sync output."""
    corr = Corrections()
    out, sync = [], []
    phase = 0.0
    w_prev = _clamp_width(width[0])
    for n, (f, w_raw) in enumerate(zip(freq_hz, width)):
        dt = _inc(f, sample_rate)
        w = _clamp_width(w_raw)
        t = phase + dt
        high_before = phase < w_prev
        s = 0.0
        if t >= 1.0:
            t -= 1.0
            xw = (1.0 - phase) / (t + 1.0 - phase)
            if high_before:  # the phase passed the width before wrapping
                x = min(_crossing(phase - w_prev, t + 1.0 - w), xw)
                corr.add(n, 1.0 - x, -2.0)
            corr.add(n, 1.0 - xw, 2.0)
            s = xw
            if not t < w:  # and again after
                x = max(_crossing(phase - 1.0 - w_prev, t - w), xw)
                corr.add(n, 1.0 - x, -2.0)
        elif high_before != (t < w):
            x = _crossing(phase - w_prev, t - w)
            corr.add(n, 1.0 - x, 2.0 if t < w else -2.0)
        high = 1.0 if t < w else 0.0
        out.append(level * (2.0 * high - 2.0 * w + corr.at(n)))
        sync.append(s)
        phase = t
        w_prev = w
    return out, sync


def triangle(freq_hz, sample_rate, level=1.0):
    """Band-limited sine-phase triangle: each corner (phase 1/4 + m/2) is a slope change of
    -/+ 8 dt per sample, corrected with the ramp residual; the naive line is lowered by the
    kernel's delay times its slope."""
    corr = Corrections()
    out = []
    phase = 0.0
    for n, f in enumerate(freq_hz):
        dt = _inc(f, sample_rate)
        end = phase + dt  # unwrapped
        m = math.floor(2.0 * phase - 0.5) + 1
        while 0.25 + 0.5 * m <= end:
            x = (0.25 + 0.5 * m - phase) / dt
            corr.add(n, 1.0 - x, -8.0 * dt if m % 2 == 0 else 8.0 * dt, k.RAMP_TABLE)
            m += 1
        t = end - 1.0 if end >= 1.0 else end
        u = (t + 0.25) % 1.0
        tri = 1.0 - 4.0 * abs(u - 0.5)
        slope = 4.0 * dt if u < 0.5 else -4.0 * dt
        out.append(level * (tri - slope * k.STEP_DELAY + corr.at(n)))
        phase = t
    return out


def sub(freq_hz, sample_rate, octave=0, shape=0, level=1.0):
    """One or two octaves down: the pulse at width 0.5, or a sine."""
    div = 2.0 if octave == 0 else 4.0
    freqs = [f / div for f in freq_hz]
    if shape == 0:
        return pulse(freqs, [0.5] * len(freqs), sample_rate, level)[0]
    out = []
    phase = 0.0
    for f in freqs:
        phase = (phase + _inc(f, sample_rate)) % 1.0
        out.append(level * math.sin(2.0 * math.pi * phase))
    return out


def unison(freq_hz, sample_rate, voices, spread_cents, stereo, level=1.0):
    """The stack as separate saws: detuned evenly over +-spread, panned evenly over
    +-stereo with the equal-power law, each times 1/sqrt(voices); returns (left, right)."""
    left = [0.0] * len(freq_hz)
    right = [0.0] * len(freq_hz)
    for u in range(voices):
        off = (u - 0.5 * (voices - 1)) / (0.5 * (voices - 1)) if voices > 1 else 0.0
        ratio = 2.0 ** (off * spread_cents / 1200.0)
        pan = stereo * off
        angle = 0.25 * math.pi * (1.0 + pan)
        g = math.sqrt(2.0 / voices)
        phase = (u * 0.6180339887498949) % 1.0
        for side, gain in ((left, g * math.cos(angle)), (right, g * math.sin(angle))):
            y = saw(freq_hz, sample_rate, level, ratio=ratio, phase=phase,
                    gain=[gain] * len(freq_hz))
            for n, value in enumerate(y):
                side[n] += value
    return left, right


def fm2(freq_hz, sample_rate, ratio, index, feedback, level=1.0):
    """sin(2 pi c + index * m), m = sin(2 pi c' + feedback * mean of the last two m);
    ``index`` a number or one per sample."""
    car = mod = m1 = m2 = 0.0
    out = []
    indexes = index if hasattr(index, "__len__") else [index] * len(freq_hz)
    for f, beta in zip(freq_hz, indexes):
        dt = _inc(f, sample_rate)
        m = math.sin(2.0 * math.pi * mod + feedback * 0.5 * (m1 + m2))
        out.append(level * math.sin(2.0 * math.pi * car + beta * m))
        m2, m1 = m1, m
        car = (car + dt) % 1.0
        mod = (mod + dt * ratio) % 1.0
    return out


def noise_white(n, lane=0, note=0.0, seed=0, level=1.0):
    """L'Ecuyer's combined generator in integers, seeded as the kernel seeds a lane."""
    m1, m2 = 2147483563, 2147483399
    base = 1 + lane * 7919 + int(note) * 104729 + seed * 1299709
    x1 = 1 + base % (m1 - 1)
    x2 = 1 + (base * 7 + 3) % (m2 - 1)
    for _ in range(16):
        x1 = 40014 * x1 % m1
        x2 = 40692 * x2 % m2
    out = []
    for _ in range(n):
        x1 = 40014 * x1 % m1
        x2 = 40692 * x2 % m2
        z = x1 - x2
        if z < 1:
            z += m1 - 1
        out.append(level * (2.0 * z / m1 - 1.0))
    return out


def pink_filter(x, sample_rate):
    """The pink filter as a cascade of first-order sections (the kernel runs its partial
    fractions in parallel), with the kernel's power normalization."""
    poles, zeros = nz.pink_design(sample_rate)
    scale = nz.pink_coefficients(sample_rate)[2] / math.prod(q / p for p, q in zip(poles, zeros))
    y = [scale * v for v in x]
    for p, q in zip(poles, zeros):
        prev_in = prev_out = 0.0
        section = []
        for v in y:
            prev_out = v - q * prev_in + p * prev_out
            prev_in = v
            section.append(prev_out)
        y = section
    return y
