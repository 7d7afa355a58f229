"""What filter and effect kernels cost alone, and what their release tails cost against sound
(the denormal flush of ``kernels.denormals`` is what keeps the two alike).

    .venv/bin/python benchmarks/kernel_cost.py [--rounds 15]

Prints per filter and setting the ns per voice per 64-sample block at 16 voices, and per effect
the us per block (one lane, the global graph's): best of ``--rounds`` runs of 4000 blocks on a
noise block (filter voices at middle C). Then per tail case the median cost per block while
sounding and the cheapest and dearest 250-block window of the ring-down (best of 9 runs). The
behaviour (tails end in exact zeros, never subnormal) is tested in tests/kernels/test_filters.py
and tests/kernels/test_effects.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from instrument.modules.delay import Chorus, Delay
from instrument.modules.drive_eq import Drive, Eq
from instrument.modules.kernel_args import kernel_args
from instrument.modules.ladder import Ladder
from instrument.modules.onepole import OnePole
from instrument.modules.reverb import Reverb
from instrument.modules.svf import Svf, SvfLowpass

SR = 48000.0
BLOCK = 64
LANES = 16
C4_HZ = 261.6255653005986

COST_CASES = [
    (SvfLowpass, dict(cutoff_hz=1000.0, resonance=0.5)),
    (Svf, dict(mode=0, cutoff_hz=1000.0, resonance=0.5)),
    (Svf, dict(mode=1, cutoff_hz=1000.0, resonance=0.5)),
    (Svf, dict(mode=0, cutoff_hz=1000.0, resonance=0.5, key_track=0.5)),
    (Ladder, dict(cutoff_hz=1000.0, resonance=0.5, drive_db=6.0)),
    (Ladder, dict(cutoff_hz=1000.0, resonance=0.5, drive_db=6.0, key_track=0.5)),
    (OnePole, dict(mode=0, cutoff_hz=1000.0)),
    (OnePole, dict(mode=0, cutoff_hz=1000.0, key_track=0.5)),
]
EFFECTS = (Delay, Chorus, Reverb, Drive, Eq)
# (class, parameters, seconds of tail): filters at 16 voices, effects on one lane, in settings
# whose tails would turn subnormal without the flush (see the tests named above).
TAIL_CASES = [
    (Svf, dict(mode=0, cutoff_hz=2000.0, resonance=1.0), 6.5),
    (Svf, dict(mode=2, cutoff_hz=2000.0, resonance=1.0), 6.5),
    (Ladder, dict(cutoff_hz=2000.0, resonance=0.8), 4.0),
    (OnePole, dict(mode=0, cutoff_hz=20.0), 6.5),
    (Delay, dict(time_ms=1.0, feedback=0.95, mix=0.5), 20.0),
    (Reverb, dict(decay_s=0.5, damping_hz=20000.0, size=0.0, mix=0.5), 70.0),
    (Eq, dict(low_hz=20.0, low_db=24.0, mid_hz=100.0, mid_db=24.0, mid_q=10.0), 20.0),
]


def is_effect(cls) -> bool:
    return cls in EFFECTS


def fresh(cls, params, lanes=LANES):
    """The kernel's arguments for ``lanes`` voices with ``params`` (others at their default),
    io rows after the reserved ones: a filter's input, pitch and output; an effect's two
    inputs and two outputs."""
    return kernel_args(cls, 4 if is_effect(cls) else 3, lanes, params, SR, BLOCK)


def loop_driver(kernel):
    @njit
    def drive(bufs, io, P, pr, st, ctx, n_blocks, nl):
        for _ in range(n_blocks):
            kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, nl)
    return drive


def stream_driver(kernel, n_in, out_row):
    @njit
    def drive(bufs, io, P, pr, st, ctx, xin, nl, out):
        for b in range(xin.shape[0]):
            for k in range(n_in):
                for i in range(BLOCK):
                    for v in range(nl):
                        bufs[io[k], i, v] = xin[b, i, v]
            kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, nl)
            for i in range(BLOCK):
                for v in range(nl):
                    out[b, i, v] = bufs[io[out_row], i, v]
    return drive


def lanes_of(cls) -> int:
    return 1 if is_effect(cls) else LANES


def cost_ns_per_lane(cls, params, rounds: int, n_blocks: int = 4000) -> float:
    lanes = lanes_of(cls)
    args = fresh(cls, params, lanes)
    bufs, io = args[0], args[1]
    noise = np.random.default_rng(6).standard_normal((BLOCK, lanes))
    bufs[io[0]] = 0.3 * noise
    bufs[io[1]] = 0.3 * noise[::-1] if is_effect(cls) else C4_HZ
    drive = loop_driver(cls.kernel)
    drive(*args, 10, lanes)
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        drive(*args, n_blocks, lanes)
        best = min(best, time.perf_counter() - t0)
    return best / n_blocks / lanes * 1e9


def tail_costs_us(cls, params, tail_s: float, repeats: int = 9, window: int = 250):
    """(median us per block while sounding, cheapest and dearest tail window)."""
    lanes = lanes_of(cls)
    rng = np.random.default_rng(4)
    sound_blocks = 750
    tail_blocks = int(tail_s * SR / BLOCK) // window * window
    xin = np.zeros((sound_blocks + tail_blocks, BLOCK, lanes))
    xin[:sound_blocks] = 0.3 * rng.standard_normal((sound_blocks, BLOCK, lanes))
    out = np.zeros_like(xin)
    n_in = 2 if is_effect(cls) else 1
    drive = stream_driver(cls.kernel, n_in, n_in if is_effect(cls) else 2)
    drive(*fresh(cls, params, lanes), xin[:2], lanes, out[:2])  # compile
    n_win = xin.shape[0] // window
    best = np.full(n_win, np.inf)
    for _ in range(repeats):
        args = fresh(cls, params, lanes)
        for w in range(n_win):
            part = slice(w * window, (w + 1) * window)
            t0 = time.perf_counter()
            drive(*args, xin[part], lanes, out[part])
            best[w] = min(best[w], time.perf_counter() - t0)
    per_block = best / window * 1e6
    sounding = float(np.median(per_block[:sound_blocks // window]))
    tail = per_block[sound_blocks // window:]
    return sounding, float(tail.min()), float(tail.max())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    print(f"filter kernels alone, {LANES} voices, ns per voice per {BLOCK}-sample block")
    for cls, params in COST_CASES:
        print(f"  {cls.type_name:12s} {params}: {cost_ns_per_lane(cls, params, args.rounds):6.0f}")
    print(f"effect kernels alone, one lane, us per {BLOCK}-sample block")
    for cls in EFFECTS:
        print(f"  {cls.type_name:12s}: {cost_ns_per_lane(cls, {}, args.rounds) / 1000:6.2f}")
    print("release tails: us per block, sounding against the ring-down's windows")
    for cls, params, tail_s in TAIL_CASES:
        sounding, lo, hi = tail_costs_us(cls, params, tail_s)
        print(f"  {cls.type_name:12s} {params}: sounding {sounding:.2f}, tail {lo:.2f}..{hi:.2f} "
              f"({lo / sounding:.2f}-{hi / sounding:.2f}x)")


if __name__ == "__main__":
    main()
