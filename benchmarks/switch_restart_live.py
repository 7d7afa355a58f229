"""Preset switches and audio-process restarts under a real JACK server (dummy driver, 48 kHz,
64 frames), the hardening issue's figures:

- callback worst time (% of the 1.33 ms deadline), late blocks and the longest time between
  two callback starts (1.33 ms when nothing waits; a callback kept waiting for the GIL shows
  here, not in its duration) during ``--switches``
  preset switches between shipped presets while a chord is held, against the same length of
  time holding the chord without switching (the machine's own noise), interleaved;
- time from SIGKILL of the audio process to audio running again, as the host measures it
  (median and spread of ``--kills``).

Run: ``.venv/bin/python benchmarks/switch_restart_live.py [--switches 20] [--kills 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from jack_server import start_jack_server  # noqa: E402

PRESETS = ["init", "lead", "brass", "poly16", "keys", "pad", "bass", "pluck", "drone"]


def status_file(port: int) -> dict:
    from instrument.runtime.host import runtime_dir

    try:
        return json.loads((runtime_dir() / f"status-{port}.json").read_text())
    except (OSError, ValueError):
        return {}


def worst_over(port: int, seconds: float, action=None, every_s: float = 0.25) -> tuple:
    """(worst callback % of the deadline, late blocks, longest gap between callback starts in
    ms) over ``seconds`` while ``action(i)`` runs every ``every_s``. The host publishes the
    worst callback and gap of each second."""
    before = status_file(port)
    worst = gap = 0.0
    seen_time = before.get("time", 0)
    end = time.monotonic() + seconds
    next_action = time.monotonic()
    i = 0
    while time.monotonic() < end + 1.2:  # one more status period covers the last action
        now = time.monotonic()
        if action is not None and now < end and now >= next_action:
            action(i)
            i += 1
            next_action += every_s
        data = status_file(port)
        if data.get("time", 0) != seen_time:
            seen_time = data["time"]
            worst = max(worst, data.get("callback_max_last_s_pct", 0.0))
            gap = max(gap, data.get("callback_gap_max_last_s_ms", 0.0))
        time.sleep(0.02)
    after = status_file(port)
    return worst, after.get("late_blocks", 0) - before.get("late_blocks", 0), gap


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--switches", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--realtime", type=int, default=0, metavar="PRIORITY",
                   help="jackd SCHED_FIFO priority, the instrument 10 below (0: neither)")
    args = p.parse_args()
    server = start_jack_server(name=f"bench-{os.getpid()}", realtime_priority=args.realtime)
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("JACK_")})
    from pythonosc.udp_client import SimpleUDPClient

    from live import JackMidiOut, LiveInstrument

    extra = ["--mapping", "none"]
    if args.realtime:
        extra += ["--rt-priority", str(args.realtime - 10)]
    inst = LiveInstrument(server.env, "presets/poly16.toml", *extra)
    try:
        inst.wait_ports()
        while not status_file(inst.osc_port).get("callbacks"):
            time.sleep(0.1)
        keys = JackMidiOut()
        osc = SimpleUDPClient("127.0.0.1", inst.osc_port)
        for note in (48, 55, 60, 64, 67):
            keys.send(0x90, note, 100)
        time.sleep(2.0)
        seconds = args.switches * 0.25

        def switch(i):
            osc.send_message("/preset/load", PRESETS[i % len(PRESETS)])

        for r in range(args.rounds):
            idle = worst_over(inst.osc_port, seconds)
            switching = worst_over(inst.osc_port, seconds, switch)
            print(f"round {r + 1}: {args.switches} switches: callback max {switching[0]:.0f}% of "
                  f"the deadline, {switching[1]} late blocks, longest gap between callbacks "
                  f"{switching[2]:.2f} ms | same time, no switch: max {idle[0]:.0f}%, {idle[1]} "
                  f"late blocks, gap {idle[2]:.2f} ms", flush=True)
        osc.send_message("/preset/load", "poly16")
        time.sleep(1.0)

        restarts = []
        for _ in range(args.kills):
            pid = status_file(inst.osc_port).get("audio_pid")
            n_lines = len(re.findall(r"audio running again", inst.output()))
            os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 20
            while time.monotonic() < end:
                found = re.findall(r"audio running again ([0-9.]+) s", inst.output())
                if len(found) > n_lines:
                    restarts.append(float(found[-1]))
                    break
                time.sleep(0.05)
            time.sleep(1.5)  # the next kill finds a settled process
        if restarts:
            restarts.sort()
            print(f"audio running again after SIGKILL: median {statistics.median(restarts):.2f} s,"
                  f" min {restarts[0]:.2f}, max {restarts[-1]:.2f} ({len(restarts)} kills)")
        keys.close()
    finally:
        inst.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
