"""What the control side costs per message, on the host's thread: a MIDI CC through the
controller mapping (``CcRouter.handle``) and an OSC datagram through our decoder, against
python-osc's, and the refusal of an oversize datagram.

    .venv/bin/python benchmarks/control_cost.py [--rounds 5]

Best of ``--rounds`` runs of 20 000 messages each. The behaviour is tested in
tests/control/test_mapping.py and tests/control/test_osc_hardening.py.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from instrument.control.cc_router import CcRouter
from instrument.control.mapping import parse_mapping
from instrument.control.osc_datagram import MalformedDatagram, decode_datagram
from instrument.presets import compile_file
from instrument.settings import DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 20_000


def best_us(fn, rounds: int, n: int = MESSAGES) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def router_us(rounds: int) -> float:
    """40 CCs on one parameter and CC74 on a macro of poly16; CC74 moved."""
    plan = compile_file(ROOT / "presets" / "poly16.toml", DEFAULTS.sample_rate_hz,
                        DEFAULTS.block_frames)
    text = "format = 1\n" + "".join(
        f'\n[[cc]]\ncc = {cc}\ntarget = "filt.resonance"\ntakeover = "jump"\n'
        for cc in range(40)) + '\n[[cc]]\ncc = 74\ntarget = "macro:cutoff"\n'
    table = [slot.initial_norm for slot in plan.params]
    router = CcRouter(parse_mapping(text, "bench.toml"), plan.params, plan.macros,
                      table.__getitem__)

    def run(n):
        for i in range(n):
            router.handle(0, 74, i & 127)
    return best_us(run, rounds)


def osc_message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    print(f"CcRouter.handle (41 controls): {router_us(args.rounds):.2f} us per message")
    dgram = osc_message("/param/filt/cutoff_hz", 0.5)

    def ours(n):
        for _ in range(n):
            decode_datagram(dgram)

    def theirs(n):
        for _ in range(n):
            OscPacket(dgram).messages
    print(f"one-float OSC message: ours {best_us(ours, args.rounds):.2f} us, "
          f"python-osc {best_us(theirs, args.rounds):.2f} us")
    huge = osc_message("/x", "s" * 60_000)

    def refuse(n):
        for _ in range(n):
            try:
                decode_datagram(huge)
            except MalformedDatagram:
                pass
    print(f"60 KB datagram refused in {best_us(refuse, args.rounds, 2000):.2f} us")


if __name__ == "__main__":
    main()
