"""What MPE costs per block: poly16 with 15 notes held, (a) without a zone, (b) as 15 MPE
notes on member channels whose bends all move every block (the worst an MPE controller can do:
each finger wobbling, one bend message per channel per 1.33 ms block), (c) as (b) but with
still bends. Prints the mean and 99th percentile of ``Engine.process_block`` in microseconds.

    .venv/bin/python benchmarks/mpe_cost.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import MPE_ZONE, NOTE_ON, PITCH_BEND
from instrument.presets import compile_file

ROOT = Path(__file__).resolve().parents[1]
SR, BLOCK, NOTES = 48000, 64, 15


def run(seconds: float, mpe: bool, wobble: bool) -> tuple[float, float]:
    plan = compile_file(ROOT / "presets" / "poly16.toml", SR, BLOCK)
    engine = Engine(SR, BLOCK)
    engine.load(plan)
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    start = [(0, MPE_ZONE, 0, 15, 0)] if mpe else []
    start += [(0, NOTE_ON, 1 + k if mpe else 0, 40 + 2 * k, 0.8) for k in range(NOTES)]
    events = np.array(start, dtype=np.float64)
    engine.process_block(events, len(events), out)
    bends = np.zeros((NOTES, 5))
    bends[:, 1] = PITCH_BEND
    bends[:, 2] = np.arange(1, NOTES + 1)
    n_blocks = int(seconds * SR / BLOCK)
    times = np.zeros(n_blocks)
    for b in range(n_blocks):
        n = 0
        if wobble:
            bends[:, 3] = 0.01 * np.sin(2 * math.pi * 5.0 * b * BLOCK / SR + np.arange(NOTES))
            n = NOTES
        t0 = time.perf_counter()
        engine.process_block(bends, n, out)
        times[b] = time.perf_counter() - t0
    return float(times.mean() * 1e6), float(np.percentile(times, 99) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    seconds = parser.parse_args().seconds
    run(1.0, True, True)  # compile and warm up
    deadline_us = BLOCK / SR * 1e6
    for label, mpe, wobble in (("no MPE, 15 notes", False, False),
                               ("MPE, 15 notes, bends still", True, False),
                               ("MPE, 15 notes, 15 bends every block", True, True)):
        mean, p99 = run(seconds, mpe, wobble)
        print(f"{label:38s} mean {mean:6.1f} us  p99 {p99:6.1f} us  "
              f"({100 * mean / deadline_us:.1f}% of the {deadline_us:.0f} us deadline)")


if __name__ == "__main__":
    main()
