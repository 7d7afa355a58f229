"""Live figures under a real JACK server (dummy driver, 48 kHz, 64 frames):

- time from ``instrument run`` to first audio (warm numba cache);
- MIDI note-on to audio onset through JACK, in frames (a JACK client sends the note and
  records the instrument's output in the same process cycle, so both share JACK's frame clock);
- callback duration p50 / p99 / p99.9 / max as % of the 1.33 ms deadline and xruns, while
  ``--load-s`` seconds of poly16 play with 2 000 OSC messages/s and dense MIDI (16-note chords
  every 250 ms, a CC sweep at 500 messages/s, pitch bend);
- resident memory of the host and the audio process (its own, and JACK's pool it maps).

Needs jackd2, and the JACK-Client package (``.venv/bin/pip install JACK-Client``).
Run: ``.venv/bin/python benchmarks/live_jack.py [--load-s 60]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from audio_memory import memory_mb  # noqa: E402
from jack_server import start_jack_server  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def status(port: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "instrument.cli.main", "status", "--json",
                          "--osc-port", str(port)], capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout) if out.returncode == 0 else {}


class Probe:
    """JACK client: MIDI out to the instrument, audio in from it, one process callback."""

    def __init__(self):
        import jack

        self.client = jack.Client("probe", no_start_server=True)
        self.midi = self.client.midi_outports.register("keys")
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(2)]
        self.queue: list[tuple[bytes]] = []
        self.lock = threading.Lock()
        self.sent_frame = None
        self.onset_frame = None
        self.armed = False
        self.client.set_process_callback(self.process)

    def process(self, frames):
        self.midi.clear_buffer()
        with self.lock:
            queue, self.queue = self.queue, []
        for data in queue:
            self.midi.write_midi_event(0, data)
            if data[0] & 0xF0 == 0x90 and self.armed and self.sent_frame is None:
                self.sent_frame = self.client.last_frame_time
        if self.armed and self.sent_frame is not None and self.onset_frame is None:
            import numpy as np

            buf = np.abs(self.ins[0].get_array())
            hits = np.flatnonzero(buf > 1e-4)
            if hits.size:
                self.onset_frame = self.client.last_frame_time + int(hits[0])

    def send(self, *data: int) -> None:
        with self.lock:
            self.queue.append(bytes(data))

    def start(self, out_ports: list[str]) -> None:
        self.client.activate()
        self.client.connect(self.midi, "instrument:in")
        for port, src in zip(self.ins, out_ports):
            self.client.connect(src, port)

    def latency_frames(self, note: int) -> int | None:
        self.sent_frame = self.onset_frame = None
        self.armed = True
        self.send(0x90, note, 100)
        end = time.monotonic() + 1.0
        while self.onset_frame is None and time.monotonic() < end:
            time.sleep(0.005)
        self.armed = False
        self.send(0x80, note, 0)
        if self.onset_frame is None:
            return None
        return self.onset_frame - self.sent_frame


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--load-s", type=float, default=60.0)
    p.add_argument("--latency-notes", type=int, default=20)
    p.add_argument("--realtime", type=int, default=80, metavar="PRIORITY",
                   help="run jackd with SCHED_FIFO at this priority and the instrument's audio "
                        "thread 10 below (0: neither, as in the tests)")
    p.add_argument("--cpu", type=int, default=None, help="pin the audio process to this CPU")
    args = p.parse_args()
    server = start_jack_server(name=f"bench-{os.getpid()}", realtime_priority=args.realtime)
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("JACK_")})
    from live import LiveInstrument

    extra = ["--mapping", "none"]
    if args.realtime:
        extra += ["--rt-priority", str(args.realtime - 10)]
    if args.cpu is not None:
        extra += ["--cpu", str(args.cpu)]
    inst = LiveInstrument(server.env, "presets/poly16.toml", *extra)
    try:
        inst.wait_ports()
        first = None
        for _ in range(50):
            first = status(inst.osc_port).get("first_audio_s")
            if first:
                break
            time.sleep(0.1)
        probe = Probe()
        probe.start(inst.out_ports())
        time.sleep(0.5)
        lat = []
        for i in range(args.latency_notes):
            value = probe.latency_frames(60 + i % 12)
            if value is not None:
                lat.append(value)
            time.sleep(0.9)  # the release (500 ms) rings out before the next probe

        # The probe is a Python JACK client: its process callback needs the GIL, which the load
        # threads below hold most of the time, and a late client makes the whole JACK graph
        # xrun. So it leaves before the load; MIDI then comes from python-rtmidi, whose JACK
        # thread is native code.
        probe.client.deactivate()
        probe.client.close()
        from live import JackMidiOut

        keys = JackMidiOut()
        before = status(inst.osc_port)
        stop = threading.Event()
        sent = [0]

        def osc_flood():
            from pythonosc.udp_client import SimpleUDPClient

            osc = SimpleUDPClient("127.0.0.1", inst.osc_port)
            t0 = time.monotonic()
            while not stop.is_set():
                k = sent[0]
                osc.send_message("/param/filt/cutoff_hz", (k % 1000) / 1000.0)
                sent[0] += 1
                delay = t0 + sent[0] / 2000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        def midi_load():
            n = 0
            while not stop.is_set():
                base = 36 + (n % 4) * 5
                for j in range(16):
                    keys.send(0x90, base + j * 3, 90)
                for k in range(125):  # 250 ms of CC sweep and bend at 500 messages/s
                    keys.send(0xB0, 74, k % 128)
                    if k % 10 == 0:
                        keys.send(0xE0, 0, 64 + (k % 20))
                    time.sleep(0.002)
                for j in range(16):
                    keys.send(0x80, base + j * 3, 0)
                n += 1

        threads = [threading.Thread(target=osc_flood), threading.Thread(target=midi_load)]
        t_load = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.load_s)
        stop.set()
        for t in threads:
            t.join()
        load_s = time.monotonic() - t_load
        after = status(inst.osc_port)
        host_rss = rss_mb(inst.proc.pid)
        audio = memory_mb(after["audio_pid"])
        print(f"first audio after start: {first:.2f} s")
        if lat:
            lat.sort()
            print(f"MIDI note-on to audio onset: median {lat[len(lat) // 2]} frames, min "
                  f"{lat[0]}, max {lat[-1]} (period 64, {len(lat)} notes)")
        print(f"load: {load_s:.0f} s of poly16, OSC {sent[0] / load_s:.0f} msg/s "
              f"(received {after['osc_messages'] - before['osc_messages']}), MIDI "
              f"{after['midi_messages'] - before['midi_messages']} messages")
        print(f"callback, % of deadline (whole run): p50 {after['callback_p50_pct']:.1f}  p99 "
              f"{after['callback_p99_pct']:.1f}  p99.9 {after['callback_p999_pct']:.1f}  max "
              f"{after['callback_max_pct']:.1f}; late blocks {after['late_blocks']}")
        print(f"xruns: {after['xruns']} ({before['xruns']} before the load phase, during start-up "
              f"and the latency probes); dropped events: {after['dropped_events']}")
        print(f"resident memory: host {host_rss:.0f} MB, audio process {audio['rss']:.0f} MB "
              f"({audio['own']:.0f} MB its own, {audio['jack']:.0f} MB JACK's shared pool; "
              "benchmarks/audio_memory.py)")
        keys.close()
    finally:
        inst.stop()
        jack_xruns = sum(1 for line in server.log().splitlines() if "xrun" in line.lower())
        print(f"jackd's own log reports {jack_xruns} xrun lines")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
