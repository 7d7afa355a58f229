"""MIDI learn: time from arming to the binding stored in learned.toml, through a real
``instrument run`` on a JACK dummy server (JACK MIDI in from python-rtmidi, OSC on 127.0.0.1).

Each round: ``/learn/param/filt/resonance`` is sent; once its "learn ..." reply is back (a
hand is slower than that), a gesture of the control kind (messages ``--gap-ms`` apart, like
a knob turned briskly); the clock stops when
``/learn/status "learned ..."`` arrives, which the instrument sends after the atomic write
(fsync, rename, fsync of the folder) of learned.toml. Printed per kind, median of
``--rounds``: arm -> stored, and last gesture message -> stored (the instrument's own part:
the classifier's decision, the host's main loop turn of up to 50 ms, the write).

Needs jackd2. Run: ``.venv/bin/python benchmarks/learn_time.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from jack_server import start_jack_server  # noqa: E402


def cc(ch, number, value):
    return (0xB0 | ch, number, value)


GESTURES = {
    "7-bit": [cc(0, 21, v) for v in range(40, 48)],
    "14-bit": [m for v in (4000, 4300, 4600) for m in (cc(0, 5, v >> 7), cc(0, 37, v & 127))],
    "NRPN": [m for v in (9000, 9200, 9400)
             for m in (cc(0, 99, 1), cc(0, 98, 20), cc(0, 6, v >> 7), cc(0, 38, v & 127))],
    "relative, both ways": [cc(0, 30, v) for v in (1, 1, 2, 127, 127, 126)],
    "relative, one way (decided when quiet)": [cc(0, 31, v) for v in (1, 1, 1, 2, 1, 1)],
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--gap-ms", type=float, default=5.0, help="between gesture messages (5)")
    args = p.parse_args()
    from pythonosc.osc_message_builder import OscMessageBuilder

    from instrument.control.osc_datagram import decode_datagram

    server = start_jack_server(name=f"bench-{os.getpid()}")
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("JACK_")})
    from live import JackMidiOut, LiveInstrument, wait_status

    state = Path(tempfile.mkdtemp(prefix="learn-bench-"))
    inst = LiveInstrument(server.env, "presets/poly16.toml", "--mapping", "none",
                          "--state-dir", str(state))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.01)
    target = ("127.0.0.1", inst.osc_port)

    def send(address):
        sock.sendto(OscMessageBuilder(address).build().dgram, target)

    def wait_text(prefix, timeout_s=5.0):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                continue
            for address, values in decode_datagram(data):
                if address == "/learn/status" and str(values[0]).startswith(prefix):
                    return time.perf_counter(), values[0]
        return None, ""

    try:
        inst.wait_ports()
        wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, 120)
        keys = JackMidiOut()
        send("/hello")
        time.sleep(0.5)
        while True:  # drain the first-contact dump
            try:
                sock.recvfrom(65536)
            except socket.timeout:
                break
        print(f"gesture messages {args.gap_ms:g} ms apart; median of {args.rounds} rounds")
        for kind, gesture in GESTURES.items():
            total, own, armed, lost = [], [], [], 0
            for _ in range(args.rounds):
                t_arm = time.perf_counter()
                send("/learn/param/filt/resonance")
                t_armed, _ = wait_text("learn ")  # a hand moves later than this anyway
                if t_armed is not None:
                    armed.append(t_armed - t_arm)
                for m in gesture:
                    time.sleep(args.gap_ms / 1000)
                    keys.send(*m)
                t_last = time.perf_counter()
                t_stored, text = wait_text("learned ")
                if t_stored is None:
                    lost += 1
                    if os.environ.get("LEARN_BENCH_DEBUG"):
                        print("\n".join(inst.output().splitlines()[-6:]), file=sys.stderr)
                    send("/learn/cancel")
                    time.sleep(0.3)
                    continue
                total.append(t_stored - t_arm)
                own.append(t_stored - t_last)
                time.sleep(0.2)
            if total:
                print(f"{kind:40s} arm -> stored {statistics.median(total) * 1000:6.1f} ms"
                      f"  (arm -> armed reply {statistics.median(armed) * 1000:4.1f} ms)"
                      f"  (last message -> stored {statistics.median(own) * 1000:6.1f} ms,"
                      f" max {max(own) * 1000:6.1f} ms){f'  {lost} lost' if lost else ''}",
                      flush=True)
        keys.close()
    finally:
        sock.close()
        inst.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
