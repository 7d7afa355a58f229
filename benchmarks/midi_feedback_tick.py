"""What one turn of the MIDI feedback thread costs the host (it runs every 10 ms).

    .venv/bin/python benchmarks/midi_feedback_tick.py [--controls 16] [--ticks 20000]

poly16, a mapping of N feedback controls (macros 1-8, then parameters), one output (a fake
port that counts messages): a quiet tick (nothing changed) and a busy one (every control's
value changes each tick, sends limited to 30 per control per second). Prints microseconds per
tick and the share of one core at the thread's 100 ticks per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from instrument.control.mapping import parse_mapping  # noqa: E402
from instrument.control.midi_feedback import TICK_S, MidiFeedback, _Target  # noqa: E402
from instrument.presets import compile_file  # noqa: E402


class _Out:
    sent = 0

    def send_message(self, message):
        self.sent += 1


class _Inputs:
    rtmidi = api = jack_lsp = None
    client_name = "instrument"
    virtual_name = "instrument:in"
    ports: dict = {}
    connections: dict = {}


class _State:
    def __init__(self, plan):
        self.plan = plan
        self.values = [slot.initial_norm for slot in plan.params]

    def plan_and_values(self):
        return self.plan, list(self.values)

    def macro_positions(self):
        return [m.initial_norm for m in self.plan.macros]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--controls", type=int, default=16)
    ap.add_argument("--ticks", type=int, default=20000)
    args = ap.parse_args()
    plan = compile_file(REPO / "presets" / "poly16.toml", 48000, 64)
    targets = [f"macro#{i + 1}" for i in range(len(plan.macros))]
    targets += [slot.path for slot in plan.params if not slot.spec.is_discrete]
    body = "".join(f'[[cc]]\ncc = {i}\ntarget = "{t}"\n'
                   for i, t in enumerate(targets[:args.controls]))
    mapping = parse_mapping("format = 1\nfeedback = true\n" + body)
    state, out = _State(plan), _Out()
    fb = MidiFeedback(state, _Inputs(), lambda name: mapping)
    fb.targets["ctl"] = _Target("ctl", out, mapping, 0.0)
    params = [slot.index for slot in plan.params][:args.controls]
    for busy in (False, True):
        now = 0.0
        fb.tick(now)
        out.sent = 0
        t0 = time.perf_counter()
        for n in range(args.ticks):
            now += TICK_S
            if busy:
                for i in params:
                    state.values[i] = (n % 127) / 127
            fb.tick(now)
        per_tick_us = (time.perf_counter() - t0) / args.ticks * 1e6
        print(f"{'busy' if busy else 'quiet'}: {len(mapping.controls)} controls, "
              f"{per_tick_us:.1f} us per tick, {per_tick_us / (TICK_S * 1e6) * 100:.2f}% of a "
              f"core at {1 / TICK_S:.0f} ticks/s, {out.sent / (args.ticks * TICK_S):.0f} "
              f"messages/s sent")


if __name__ == "__main__":
    main()
