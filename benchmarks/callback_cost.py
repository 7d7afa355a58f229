"""What the audio callback costs per block, as the audio process runs it (ring, clock, render,
status): the one-native-call path (``live_block``) against the Python path it takes during
plan swaps, interleaved over rounds on a scratch shared-memory block, a preset (poly16 unless
named) with 0, 1 and 16 notes held (or ``--notes``). Prints per path the median and mean
microseconds per callback and the calls the callback makes per block.

    .venv/bin/python benchmarks/callback_cost.py [PRESET] [--notes 0,1,16] [--blocks 20000]
                                                 [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from instrument.bench import calls_made_by
from instrument.engine.events import NOTE_ON
from instrument.presets import compile_file
from instrument.runtime.audio_main import NO_FLAGS, AudioProcess
from instrument.runtime.ring_writer import RingWriter
from instrument.runtime.shared import SharedState

ROOT = Path(__file__).resolve().parents[1]
SR, BLOCK = 48000, 64


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("preset", nargs="?", default=str(ROOT / "presets" / "poly16.toml"))
    p.add_argument("--notes", default="0,1,16", help="note counts, comma-separated")
    p.add_argument("--blocks", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    plan = compile_file(args.preset, SR, BLOCK)
    shared = SharedState(f"instrument-bench-{os.getpid()}", create=True)
    try:
        for slot in plan.params:
            shared.tables[0][slot.index] = slot.initial_norm
        proc = AudioProcess(SimpleNamespace(shm=shared.name, rate=SR, block=BLOCK, device=None,
                                            latency="low", null_fallback=True, record=None))
        proc.load(0, plan, first=True)
        proc.warm_up()
        ring = RingWriter(shared.ring, shared.status)
        out = np.zeros((BLOCK, 2), dtype=np.float32)
        paths = {"one native call": lambda o: proc.callback(o, BLOCK, None, NO_FLAGS),
                 "python path": lambda o: proc._callback_in_python(o, NO_FLAGS)}
        for notes in (int(n) for n in args.notes.split(",")):
            proc.engine.current.reset()
            for k in range(notes):
                ring.push(NOTE_ON, 0, 40 + 2 * k, 0.8)
            proc.callback(out, BLOCK, None, NO_FLAGS)
            results = {name: [] for name in paths}
            for _ in range(args.rounds):
                for name, fn in paths.items():
                    times = np.zeros(args.blocks, dtype=np.int64)
                    clock = time.perf_counter_ns
                    for b in range(args.blocks):
                        t0 = clock()
                        fn(out)
                        times[b] = clock() - t0
                    results[name].append(times)
            for name, fn in paths.items():
                calls = calls_made_by(lambda: fn(out)) - 2  # less the path's lambda, the callback
                all_times = np.concatenate(results[name]) / 1000
                print(f"{notes:2d} notes, {name:15s}: median {np.median(all_times):5.2f} us, "
                      f"mean {all_times.mean():5.2f} us, calls per block {calls:.0f}")
        proc.shared.close()
    finally:
        shared.close()


if __name__ == "__main__":
    main()
