"""How the cost of a block scales with graph size and with polyphony.

Prints one table (see benchmarks/README.md for what the columns mean):

- poly16 as shipped (16 voices held), the reference for ``instrument bench``;
- voice graphs of 5, 10, 20 and 50 nodes at 16 voices: saw -> adsr-driven vca -> a chain of
  svf_lowpass / gain / vca nodes -> output (generated here, not shipped presets);
- poly16's graph with polyphony 1, 2, 4, 8, 16, 32 and 64, that many notes held.

Each row is ``instrument.bench.bench_plan``: chords of ``voices`` notes struck every second and
held 0.9 s (voices attack, release and get stolen), block times measured around
``Engine.process_block``.

    .venv/bin/python benchmarks/scaling.py              # 60 s of audio per row
    .venv/bin/python benchmarks/scaling.py --seconds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

import numba
import numpy as np

REPO = Path(__file__).resolve().parents[1]
POLY16 = REPO / "presets" / "poly16.toml"
GRAPH_SIZES = (5, 10, 20, 50)
VOICE_COUNTS = (1, 2, 4, 8, 16, 32, 64)
CHAIN = ("svf_lowpass", "gain", "vca")  # repeated after the first vca


def chain_preset(n_nodes: int, polyphony: int = 16) -> str:
    """A voice graph of exactly ``n_nodes`` nodes (n >= 5): saw, adsr, vca (cv from the adsr),
    ``n - 4`` nodes cycling svf_lowpass/gain/vca, output; all in one series chain."""
    if n_nodes < 5:
        raise ValueError("a chain graph needs at least 5 nodes")
    middle = ["amp"] + [f"n{k}" for k in range(n_nodes - 4)]
    types = {"amp": "vca"}
    types.update({f"n{k}": CHAIN[k % len(CHAIN)] for k in range(n_nodes - 4)})
    series = ["osc"] + middle + ["out"]
    connect = [f'  "{a}.out -> {b}.in",' for a, b in zip(series, series[1:])]
    connect.append('  "env.out -> amp.cv",')
    lines = [
        "format = 1",
        f'name = "chain{n_nodes}"',
        "[voice]",
        f"polyphony = {polyphony}",
        "connect = [", *connect, "]",
        '[voice.nodes.osc]\ntype = "saw"\nlevel = 0.3',
        '[voice.nodes.env]\ntype = "adsr"\nrelease_ms = 200',
        '[voice.nodes.out]\ntype = "output"',
    ]
    for node in middle:
        lines.append(f'[voice.nodes.{node}]\ntype = "{types[node]}"')
        if types[node] == "svf_lowpass":
            lines.append("cutoff_hz = 8000")
    return "\n".join(lines) + "\n"


def poly16_with(polyphony: int) -> str:
    text = POLY16.read_text()
    changed, count = re.subn(r"(?m)^polyphony = \d+$", f"polyphony = {polyphony}", text)
    if count != 1:
        raise SystemExit(f"cannot find 'polyphony = N' in {POLY16}")
    return changed


def compile_text(text: str, name: str, rate: int, block: int):
    from instrument.graph.compile import compile_preset
    from instrument.modules.registry import default_registry
    from instrument.presets.load import parse_preset

    return compile_preset(parse_preset(text, name), default_registry(), rate, block)


def voice_nodes(text: str) -> int:
    return len(re.findall(r"(?m)^\[voice\.nodes\.", text))


def measure(label: str, text: str, voices: int, seconds: float, rate: int, block: int) -> dict:
    from instrument.bench import bench_plan

    result = bench_plan(compile_text(text, label, rate, block), seconds, voices)
    ns = result.block_ns
    nodes = voice_nodes(text)
    p50 = float(np.percentile(ns, 50))
    return {
        "case": label,
        "nodes": nodes,
        "voices": voices,
        "rtf": result.realtime_factor,
        "p50_us": p50 / 1e3,
        "p99_us": float(np.percentile(ns, 99)) / 1e3,
        "max_us": float(ns.max()) / 1e3,
        "p50_pct": p50 / result.deadline_ns * 100.0,
        "calls": result.python_calls_per_block,
        "ns_per_nvs": p50 / (nodes * voices * block),
    }


COLUMNS = [
    ("case", "case", "{:<12}"),
    ("nodes", "nodes", "{:>5}"),
    ("voices", "voices", "{:>6}"),
    ("rtf", "RT factor", "{:>9.1f}"),
    ("p50_us", "p50 us", "{:>8.1f}"),
    ("p99_us", "p99 us", "{:>8.1f}"),
    ("max_us", "max us", "{:>8.1f}"),
    ("p50_pct", "p50 %dl", "{:>7.2f}"),
    ("calls", "py calls", "{:>8.1f}"),
    ("ns_per_nvs", "ns/node-voice-sample", "{:>20.3f}"),
]


def format_table(rows: list[dict]) -> str:
    head = " ".join(f"{title:>{len(fmt.format(rows[0][key]))}}" if key != "case"
                    else f"{title:<12}" for key, title, fmt in COLUMNS)
    out = [head, "-" * len(head)]
    for row in rows:
        out.append(" ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS))
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="audio rendered per row, seconds (60)")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate in Hz (48000)")
    parser.add_argument("--block", type=int, default=64, help="block size in frames (64)")
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be at least 1 (chords are struck once a second)")

    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}")
    print(f"# {args.seconds:g} s per row at {args.rate} Hz, block {args.block} "
          f"(deadline {args.block / args.rate * 1e6:.0f} us)", flush=True)
    rows = [measure("poly16", POLY16.read_text(), 16, args.seconds, args.rate, args.block)]
    for n in GRAPH_SIZES:
        rows.append(measure(f"chain{n}", chain_preset(n), 16, args.seconds, args.rate,
                            args.block))
    for v in VOICE_COUNTS:
        rows.append(measure(f"poly16@{v}", poly16_with(v), v, args.seconds, args.rate,
                            args.block))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
