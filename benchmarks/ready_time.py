"""Time from process start to systemd's READY=1, for every shipped preset, warm cache.

Starts ``instrument run PRESET --null --no-midi`` the way systemd would see it: with
``NOTIFY_SOCKET`` pointing at a datagram socket this script binds, and ``WATCHDOG_USEC`` set.
READY=1 is sent only once audio callbacks run, so this is start to first audio as the service
manager sees it. Each preset is started ``--rounds`` times, presets interleaved; the median and
the worst are printed.

    .venv/bin/python benchmarks/ready_time.py              # all presets, 3 rounds
    .venv/bin/python benchmarks/ready_time.py --rounds 5 presets/poly16.toml

Set ``INSTRUMENT_CACHE_DIR`` to the cache the instrument normally uses (the tests use
``.cache-test/``): with a cold cache the first start compiles for minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def time_to_ready(preset: Path, port: int, timeout_s: float = 120.0) -> float:
    name = f"instrument-ready-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.5)
    env = dict(os.environ, NOTIFY_SOCKET="@" + name, WATCHDOG_USEC="10000000")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", str(preset), "--null",
         "--no-midi", "--state-dir", "none", "--osc-port", str(port), "--osc-bind",
         "127.0.0.1", "--no-zeroconf", "--oscquery-port", "0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < timeout_s:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{preset.name}: exited with {proc.returncode}")
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.monotonic() - started
        raise RuntimeError(f"{preset.name}: no READY=1 in {timeout_s} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # left running, it would hold the fixed ports
            proc.kill()
            proc.wait()
        sock.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--port", type=int, default=9470)
    args = p.parse_args()
    presets = args.presets or sorted((REPO / "presets").glob("*.toml"))
    times: dict[Path, list[float]] = {preset: [] for preset in presets}
    for preset in presets:  # first start of each: the cache is warm for all after this
        time_to_ready(preset, args.port)
    for _ in range(args.rounds):
        for preset in presets:
            times[preset].append(time_to_ready(preset, args.port))
    print(f"{'preset':<16} {'median s':>9} {'max s':>7}")
    for preset, values in times.items():
        print(f"{preset.stem:<16} {statistics.median(values):9.2f} {max(values):7.2f}")
    every = [t for values in times.values() for t in values]
    print(f"all: median {statistics.median(every):.2f} s, max {max(every):.2f} s "
          f"({len(every)} starts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
