"""``instrument bench``: real-time factor and per-block cost of a preset under dense playing.

The load: chords of ``voices`` notes (default: the preset's polyphony), each held 0.9 s and
re-struck every second, so voices attack, sustain, release and get stolen throughout. Block
times are measured around ``Engine.process_block`` (everything the audio callback would do).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.graph.plan import Plan

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
WARMUP_BLOCKS = 200


@dataclass
class BenchResult:
    name: str
    seconds: float
    sample_rate: int
    block_size: int
    voices: int
    block_ns: np.ndarray
    python_calls_per_block: float

    @property
    def deadline_ns(self) -> float:
        return self.block_size / self.sample_rate * 1e9

    @property
    def realtime_factor(self) -> float:
        return self.seconds * 1e9 / float(self.block_ns.sum())

    def percent(self, q: float) -> float:
        return float(np.percentile(self.block_ns, q)) / self.deadline_ns * 100.0

    def report(self) -> str:
        d_ms = self.deadline_ns / 1e6
        return "\n".join([
            f"bench {self.name}: {self.seconds:g} s at {self.sample_rate} Hz, block "
            f"{self.block_size} (deadline {d_ms:.3f} ms), {self.voices} voices held",
            f"real-time factor: {self.realtime_factor:.1f}x",
            "block time, % of deadline: "
            f"p50 {self.percent(50):.2f}%  p99 {self.percent(99):.2f}%  "
            f"p99.9 {self.percent(99.9):.2f}%  max {self.block_ns.max() / self.deadline_ns * 100:.2f}%",
            f"block time p50: {np.percentile(self.block_ns, 50) / 1000:.1f} us",
            f"python calls per block: {self.python_calls_per_block:.1f}",
        ])


def chord_events(seconds: float, sample_rate: int, voices: int, low_note: int = 36) -> np.ndarray:
    """Absolute-frame events: a ``voices``-note chord struck every second, held 0.9 s."""
    rows = []
    notes = [low_note + (i * 7) % 48 for i in range(voices)]
    for k in range(int(seconds)):
        on = k * sample_rate
        off = on + int(0.9 * sample_rate)
        shift = (k % 3) * 2
        for j, n in enumerate(notes):
            rows.append((on + j, NOTE_ON, 0, n + shift, 0.5 + 0.5 * ((j * 37) % 10) / 10))
        for n in notes:
            rows.append((off, NOTE_OFF, 0, n + shift, 0.0))
    arr = np.array(rows, dtype=np.float64).reshape(-1, EVENT_WIDTH)
    return arr[np.argsort(arr[:, 0], kind="stable")]


def _reload(engine: Engine, plan: Plan, scratch: np.ndarray, out: np.ndarray) -> None:
    """A fresh instance of ``plan``, rendered until its swap's crossfade is over (and its
    renderer bound, on its first block): what is measured next is the steady one-call path,
    not the crossfade's Python path or the one-time binding."""
    engine.load(plan)
    engine.process_block(scratch, 0, out)
    while engine.pending is not None or engine.old is not None:
        engine.process_block(scratch, 0, out)


def bench_plan(plan: Plan, seconds: float, voices: int) -> BenchResult:
    sr, block = int(plan.sample_rate), plan.block_size
    engine = Engine(sr, block, max_events=4096)
    engine.load(plan)
    events = chord_events(seconds, sr, voices)
    n_blocks = int(seconds * sr / block)
    starts = np.searchsorted(events[:, 0], np.arange(n_blocks + 1) * block)
    local = events.copy()
    out = np.zeros((block, 2), dtype=np.float32)
    scratch = np.zeros((0, EVENT_WIDTH))
    for _ in range(WARMUP_BLOCKS):  # compile and settle before measuring
        engine.process_block(scratch, 0, out)
    _reload(engine, plan, scratch, out)
    times = np.zeros(n_blocks, dtype=np.int64)
    clock = time.perf_counter_ns
    calls = _count_python_calls(engine, out)
    _reload(engine, plan, scratch, out)
    for b in range(n_blocks):
        lo, hi = starts[b], starts[b + 1]
        ev = local[lo:hi]
        ev[:, 0] = events[lo:hi, 0] - b * block
        t0 = clock()
        engine.process_block(ev, hi - lo, out)
        times[b] = clock() - t0
    return BenchResult(plan.name, n_blocks * block / sr, sr, block, voices, times, calls)


def calls_made_by(call, times: int = 50) -> float:
    """Python-level and C-level calls that ``call()`` makes, per call (``sys.setprofile``
    count; ``call`` itself is not counted)."""
    count = 0

    def profiler(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profiler)
    try:
        for _ in range(times):
            call()
    finally:
        sys.setprofile(None)
    return (count - 1) / times - 1  # less setprofile(None), counted once, and call itself


def _count_python_calls(engine: Engine, out: np.ndarray, blocks: int = 50) -> float:
    """Calls made per ``process_block``, counting the method itself."""
    ev = np.zeros((0, EVENT_WIDTH))
    return calls_made_by(lambda: engine.process_block(ev, 0, out), blocks)


def run_bench(preset, seconds: float, sample_rate: int, block_size: int,
              voices: int | None) -> BenchResult:
    from instrument.presets import compile_file

    path = Path(preset) if preset else PRESET_DIR / "poly16.toml"
    plan = compile_file(path, sample_rate, block_size)
    n_voices = voices or int(plan.cfg[3])
    return bench_plan(plan, seconds, n_voices)
