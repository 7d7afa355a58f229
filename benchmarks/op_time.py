"""What each op and each stage of a preset's block costs, timed in place.

The op timer build of the renderer (``engine.fused.build_renderer(..., timed=True)``) reads the
clock around every op and every stage of a block and sums the nanoseconds into the instance's
``eng`` (``layout.T_*``). Unlike the knock-out measurement (``op_cost.py``), which drowns in
noise on a shared machine, every op is timed in the same run of the same blocks, and the parts
add up to the block. The price is a clock read per op (about 25 ns here, printed as
``clock read``), which is why the instrument itself plays with the untimed build; both builds'
block times are printed, interleaved over the rounds. The timed build compiles on first use
(about 30 s) into its own cache, and must play the untimed build's samples bit for bit on the
workload (checked before anything is timed).

    .venv/bin/python benchmarks/op_time.py [PRESET ...] [--score 20] [--rounds 3]
    .venv/bin/python benchmarks/op_time.py presets/poly16.toml --notes 16 --blocks 5000

With ``--score S`` (the default, 20) the blocks are the first S seconds of
``scsynth_compare``'s score (the workload the scsynth ratio measures); with ``--notes N``, N
notes held for ``--blocks`` blocks. Figures are ns per block, from the round whose timed
block was fastest.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

import numpy as np
from numba import njit

from instrument.engine.clock import monotonic_ns
from instrument.engine.events import EVENT_WIDTH
from instrument.engine.fused import build_renderer
from instrument.layout import T_BLOCK, T_OPS, T_OUTPUT, T_PARAMS, T_SUM_VOICES, T_VOICE_ROWS
from instrument.modules.registry import default_registry
from instrument.presets import compile_file
from instrument.settings import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from op_cost import block_us, engine_with_notes, score_blocks  # noqa: E402

STAGES = ((T_PARAMS, "parameters"), (T_VOICE_ROWS, "voice rows"),
          (T_SUM_VOICES, "voice sum"), (T_OUTPUT, "output stage"))
OP_LINE = re.compile(r"^\s+(\d+) (.*)$")


@njit(cache=True)
def _clock_read_ns(n):
    """The mean cost of one clock read, from ``n`` back-to-back reads."""
    t0 = monotonic_ns()
    t = t0
    for _ in range(n):
        t = monotonic_ns()
    return (t - t0) / n


def op_labels(plan) -> dict[int, str]:
    """Op index -> what the plan's listing says of it: a module's kind and node name, a
    built-in op's whole line."""
    labels = {}
    for line in plan.text.splitlines():
        m = OP_LINE.match(line)
        if m:
            words = m.group(2).split()
            labels[int(m.group(1))] = " ".join(words[:2] if "in(" in line else words)[:60]
    return labels


def timed_plan(plan):
    """The same plan, bound to the op timer build of the renderer."""
    registry = default_registry()
    timed = build_renderer(list(registry.modules.values()), timed=True)
    if timed.codes != registry.renderer().codes:
        raise SystemExit("the timed build assigns other op codes than the plan's renderer")
    return dataclasses.replace(plan, renderer_key=timed.key)


def played(plan, notes: int, blocks: int, score) -> np.ndarray:
    """The output of ``blocks`` blocks with ``notes`` held, or of every block of ``score``."""
    engine = engine_with_notes(plan, notes)
    out = np.zeros((engine.block_size, 2), dtype=np.float32)
    none = np.zeros((1, EVENT_WIDTH))
    heard = []
    for ev, count in score or [(none, 0)] * blocks:
        engine.process_block(ev, count, out)
        heard.append(out.copy())
    return np.concatenate(heard)


def measure(plan, args) -> tuple[list[float], list[float], np.ndarray]:
    """Block µs of the untimed and the timed build per round, and the timed sums (ns per
    block) of the fastest timed round."""
    score = score_blocks(args.score, plan.sample_rate, plan.block_size) if not args.notes \
        else None
    notes = args.notes or 0
    blocks = len(score) if score else args.blocks
    timed = timed_plan(plan)
    if not np.array_equal(played(plan, notes, min(blocks, 2000), score),
                          played(timed, notes, min(blocks, 2000), score)):
        raise SystemExit(f"{plan.name}: the timed build plays other samples than the untimed "
                         "one, so its figures would not describe the instrument")
    untimed_us, timed_us, best = [], [], None
    for _ in range(args.rounds):
        plain = engine_with_notes(plan, notes)
        block_us(plain, 50, score[:50] if score else None)  # settle, load from the cache
        plain = engine_with_notes(plan, notes)
        untimed_us.append(block_us(plain, args.blocks, score))
        engine = engine_with_notes(timed, notes)
        eng = engine.current.eng
        eng[T_PARAMS:] = 0.0
        us = block_us(engine, args.blocks, score)
        timed_us.append(us)
        if best is None or us < best[0]:
            best = (us, eng[T_PARAMS:].copy() / blocks)
    return untimed_us, timed_us, best[1]


def report(plan, untimed_us, timed_us, sums) -> None:
    labels = op_labels(plan)
    n_ops = plan.ops.shape[0]
    print(f"{plan.name}: block {min(untimed_us):.2f} us untimed, {min(timed_us):.2f} us timed "
          f"(min of {len(timed_us)} rounds each, interleaved); ns per block:")
    at = lambda slot: sums[slot - T_PARAMS]  # noqa: E731
    for slot, name in STAGES:
        print(f"  {at(slot):7.0f}  {name}")
    for k in range(n_ops):
        print(f"  {at(T_OPS + k):7.0f}  op {k:2d} {labels.get(k, '')}")
    parts = sum(at(slot) for slot, _ in STAGES) + sum(at(T_OPS + k) for k in range(n_ops))
    print(f"  {at(T_BLOCK) - parts:7.0f}  rest (events, segments, voice freeing, the timers)")
    print(f"  {at(T_BLOCK):7.0f}  block, as timed")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", default=[str(ROOT / "presets" / "poly16.toml")])
    p.add_argument("--score", type=float, default=20.0,
                   help="seconds of scsynth_compare's score (the default workload)")
    p.add_argument("--notes", type=int, default=0, help="hold N notes instead of the score")
    p.add_argument("--blocks", type=int, default=5000, help="blocks per round with --notes")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    _clock_read_ns(10)
    print(f"clock read: {min(_clock_read_ns(100000) for _ in range(5)):.0f} ns")
    for preset in args.presets:
        plan = compile_file(preset, DEFAULTS.sample_rate_hz, DEFAULTS.block_frames)
        report(plan, *measure(plan, args))


if __name__ == "__main__":
    main()
