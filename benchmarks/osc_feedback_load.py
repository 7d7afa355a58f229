"""OSC feedback under load, on a real JACK server (dummy driver, 48 kHz, 64 frames): 4 clients
registered, one of them storms a fader at ``--rate`` messages/s for ``--seconds`` while a chord
plays; printed: host CPU (% of one core, from /proc), the audio callback's worst time and late
blocks over the storm, the same window without the storm, and what the clients received.

Run: ``.venv/bin/python benchmarks/osc_feedback_load.py [--clients 4] [--rate 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from jack_server import start_jack_server  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_file(port: int) -> dict:
    from instrument.runtime.host import runtime_dir

    try:
        return json.loads((runtime_dir() / f"status-{port}.json").read_text())
    except (OSError, ValueError):
        return {}


def window(port: int, pid: int, seconds: float, action=None) -> dict:
    """Host CPU %, worst callback % of the deadline and late blocks over ``seconds``."""
    before = status_file(port)
    c0, t0 = cpu_s(pid), time.monotonic()
    stop = threading.Event()
    worker = threading.Thread(target=action, args=(stop,)) if action else None
    if worker:
        worker.start()
    worst, seen = 0.0, before.get("time", 0)
    while time.monotonic() - t0 < seconds:
        data = status_file(port)
        if data.get("time", 0) != seen:
            seen = data["time"]
            worst = max(worst, data.get("callback_max_last_s_pct", 0.0))
        time.sleep(0.05)
    stop.set()
    if worker:
        worker.join()
    c1, t1 = cpu_s(pid), time.monotonic()
    time.sleep(1.2)
    after = status_file(port)
    worst = max(worst, after.get("callback_max_last_s_pct", 0.0))
    return {"cpu_pct": 100 * (c1 - c0) / (t1 - t0), "cb_max_pct": worst,
            "late": after.get("late_blocks", 0) - before.get("late_blocks", 0)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--realtime", type=int, default=0, metavar="PRIORITY",
                   help="jackd SCHED_FIFO priority, the instrument's audio thread 10 below "
                        "(0: neither, as in the tests)")
    args = p.parse_args()
    server = start_jack_server(name=f"bench-{os.getpid()}", realtime_priority=args.realtime)
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("JACK_")})
    from pythonosc.osc_message_builder import OscMessageBuilder

    from live import JackMidiOut, LiveInstrument

    def dgram(address, *values):
        b = OscMessageBuilder(address)
        for v in values:
            b.add_arg(v)
        return b.build().dgram

    extra = ["--rt-priority", str(args.realtime - 10)] if args.realtime else []
    inst = LiveInstrument(server.env, "presets/poly16.toml", "--mapping", "none", *extra)
    clients = []
    try:
        inst.wait_ports()
        while not status_file(inst.osc_port).get("callbacks"):
            time.sleep(0.1)
        target = ("127.0.0.1", inst.osc_port)
        received = [0] * args.clients
        for _ in range(args.clients):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.1)
            s.sendto(dgram("/hello"), target)
            clients.append(s)
        done = threading.Event()

        def drain(i):
            while not done.is_set():
                try:
                    clients[i].recvfrom(65536)
                    received[i] += 1
                except socket.timeout:
                    pass

        readers = [threading.Thread(target=drain, args=(i,)) for i in range(args.clients)]
        for r in readers:
            r.start()
        keys = JackMidiOut()
        for note in (48, 55, 60, 64, 67):
            keys.send(0x90, note, 100)
        time.sleep(2.0)
        sent = [0]

        def storm(stop):
            t0 = time.monotonic()
            while not stop.is_set():
                clients[0].sendto(dgram("/param/filt/cutoff_hz", (sent[0] % 1000) / 1000.0),
                                  target)
                sent[0] += 1
                delay = t0 + sent[0] / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        quiet = window(inst.osc_port, inst.proc.pid, args.seconds)
        before = list(received)
        loud = window(inst.osc_port, inst.proc.pid, args.seconds, storm)
        got = [received[i] - before[i] for i in range(args.clients)]
        done.set()
        for r in readers:
            r.join()
        keys.close()
        print(f"{args.clients} clients, fader storm {sent[0] / args.seconds:.0f} msg/s for "
              f"{args.seconds:.0f} s from client 1")
        print(f"host CPU: {loud['cpu_pct']:.1f}% of a core (no storm: {quiet['cpu_pct']:.1f}%)")
        print(f"callback max {loud['cb_max_pct']:.0f}% of the deadline, {loud['late']} late "
              f"blocks (no storm: {quiet['cb_max_pct']:.0f}%, {quiet['late']})")
        print(f"datagrams received per client during the storm: {got} (client 1, the sender, "
              f"gets the text twin of its fader, never the value)")
    finally:
        for s in clients:
            s.close()
        inst.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
