"""What each op of a preset's voice graph costs per block: knock-out measurement.

For each voice op in turn, the block is timed with every op and with that op skipped (its
code set to one no op matches, so the renderer passes it by), interleaved over rounds; the
op's cost is the median difference. ``N`` notes are held (struck once, then sustained), so
what is measured is the steady per-block work of ``N`` voices.

    .venv/bin/python benchmarks/op_cost.py [PRESET] [--notes 16] [--rounds 7] [--blocks 3000]
    .venv/bin/python benchmarks/op_cost.py --score 20     # scsynth_compare's score instead

With ``--score S`` each measurement plays the first S seconds of ``scsynth_compare``'s seeded
16-slot score (notes starting, decaying and releasing, about 15 sounding) instead of held
notes: the workload the scsynth ratio measures.

Caveats: skipping an op changes what the ops after it receive (a frozen input row, a louder
or quieter output), and data-dependent work downstream (the limiter, say) then costs
differently, so a knock-out can come out negative; on a shared machine single differences are
noisy, hence the medians. The op costs need not add up to the block.
Measured 2026-12-07 (AMD EPYC, 2 cores), poly16 at 16 notes, 10.6 us per block: each saw
1.86-1.92 us, the filter envelope 0.51 and the amp envelope 0.86, the modulation of the cutoff
0.69, svf_lowpass 0.90, vca 0.76, no output op (earlier that day 12.4 and 17.5 us). A saw's
cost grows with its pitch (each wrap adds a minBLEP residual).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.layout import CFG_N_VOICE_OPS, FIRST_MODULE_CODE, OP_CODE
from instrument.modules.registry import default_registry
from instrument.presets import compile_file
from instrument.settings import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = -1  # an op code nothing dispatches on


def block_us(engine: Engine, blocks: int, score=None) -> float:
    """Mean time per block of ``blocks`` blocks with no events, or of every block of
    ``score`` (a list of per-block event arrays) when given."""
    out = np.zeros((engine.block_size, 2), dtype=np.float32)
    none = np.zeros((1, EVENT_WIDTH))
    t0 = time.perf_counter()
    if score is None:
        for _ in range(blocks):
            engine.process_block(none, 0, out)
    else:
        blocks = len(score)
        for ev, count in score:
            engine.process_block(ev, count, out)
    return (time.perf_counter() - t0) / blocks * 1e6


def score_blocks(seconds: float, sample_rate: int, block: int):
    """``scsynth_compare``'s score as (events, count) per block, release tails and all (an
    empty block gets one unused row, as ``block_us`` passes with no events)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scsynth_compare import load_patch, make_notes

    release_s = load_patch().aenv[3] / 1000.0
    notes = make_notes(seconds, release_s)
    n_blocks = int((seconds + release_s + 0.1) * sample_rate) // block
    per_block: list[list[list[float]]] = [[] for _ in range(n_blocks)]
    for n in notes:
        for ms, kind, value in ((n.off_ms, NOTE_OFF, 0.0), (n.on_ms, NOTE_ON, n.velocity / 127)):
            frame = int(ms * sample_rate // 1000)
            per_block[frame // block].append([frame % block, kind, 0, n.key, value])
    return [(np.array(sorted(evs) + [[0.0] * EVENT_WIDTH], dtype=np.float64), len(evs))
            for evs in per_block]


def engine_with_notes(plan, notes: int) -> Engine:
    engine = Engine(plan.sample_rate, plan.block_size)
    engine.load(plan)
    ev = np.array([[0, NOTE_ON, 0, 40 + 3 * k, 0.8] for k in range(notes)],
                  dtype=np.float64).reshape(-1, EVENT_WIDTH)
    engine.process_block(ev, len(ev), np.zeros((plan.block_size, 2), dtype=np.float32))
    return engine


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("preset", nargs="?", default=str(ROOT / "presets" / "poly16.toml"))
    p.add_argument("--notes", type=int, default=16)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--blocks", type=int, default=3000)
    p.add_argument("--score", type=float, default=0.0,
                   help="seconds of scsynth_compare's score instead of held notes")
    args = p.parse_args()
    plan = compile_file(args.preset, DEFAULTS.sample_rate_hz, DEFAULTS.block_frames)
    score = (score_blocks(args.score, plan.sample_rate, plan.block_size) if args.score
             else None)
    plan.ops.flags.writeable = True  # the engine's block state points at this very array
    n_voice_ops = int(plan.cfg[CFG_N_VOICE_OPS])
    codes = plan.ops[:, OP_CODE].copy()
    by_code = {code: name for name, code in default_registry().renderer().codes.items()}
    by_code.update({0: "(modulation)", 1: "(sum)"})
    engine = engine_with_notes(plan, 0 if score else args.notes)
    block_us(engine, 200, score)  # settle
    full, without = [], {k: [] for k in range(n_voice_ops)}
    for _ in range(args.rounds):
        for k in range(n_voice_ops):
            full.append(block_us(engine, args.blocks, score))
            plan.ops[k, OP_CODE] = SKIPPED
            without[k].append(block_us(engine, args.blocks, score))
            plan.ops[k, OP_CODE] = codes[k]
    base = statistics.median(full)
    load = (f"{args.score:g} s of scsynth_compare's score" if score
            else f"{args.notes} notes held")
    print(f"{plan.name}: {load}, {base:.2f} us per block (median of "
          f"{len(full)}); cost of each voice op, median of {args.rounds} knock-outs:")
    for k in range(n_voice_ops):
        name = by_code.get(int(codes[k]), f"code {codes[k]}")
        kind = "module" if codes[k] >= FIRST_MODULE_CODE else "built-in"
        print(f"  op {k}: {name:14s} ({kind:8s}) {base - statistics.median(without[k]):6.2f} us")


if __name__ == "__main__":
    main()
