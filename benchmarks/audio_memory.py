"""Resident memory of the audio process, per preset, playing into a real JACK server (dummy
driver, 48 kHz, 64 frames), read from ``/proc/PID/smaps`` a few seconds after first audio:

- ``rss``: VmRSS, everything resident in the process's address space;
- ``jack``: the part of it that is the JACK server's shared memory (``/dev/shm/jack-*``). Every
  JACK client maps the server's pool (``jack_rec`` alone is about 110 MB resident here); the
  Pi plays through ALSA and has none of it;
- ``own``: rss - jack. It counts the shared libraries' pages mapped here, which the page cache
  shares with the host (libllvmlite alone is 69-108 MB of it, more when the file was just
  written: the kernel maps the neighbours of a faulting page that are already cached);
- ``private``: the pages only this process holds (smaps ``Private_Clean`` + ``Private_Dirty``):
  what it costs the machine beyond the libraries the host has loaded anyway;
- ``locked``: the pages mlockall actually locked (smaps ``Locked``). The kernel's ``VmLck``
  counts address space, not pages: with ``MCL_ONFAULT`` nothing is locked before it is used.

Run: ``.venv/bin/python benchmarks/audio_memory.py [--settle-s 4] [presets/poly16.toml ...]``
(every shipped preset when none is named; the numba cache must be warm).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from jack_server import start_jack_server  # noqa: E402

JACK_SHM_PREFIX = "/dev/shm/jack"
START_TIMEOUT_S = 300.0  # a cold cache compiles first


def memory_mb(pid: int) -> dict:
    """rss, jack, own, private and locked (MB) of process ``pid``, from its smaps (see the
    docstring)."""
    rss_kb = jack_kb = locked_kb = private_kb = 0
    in_jack = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if not fields[0].endswith(":"):  # a mapping's header: range perms offset dev inode path
            in_jack = len(fields) >= 6 and fields[5].startswith(JACK_SHM_PREFIX)
        elif fields[0] == "Rss:":
            rss_kb += int(fields[1])
            jack_kb += int(fields[1]) if in_jack else 0
        elif fields[0] == "Locked:":
            locked_kb += int(fields[1])
        elif fields[0] in ("Private_Clean:", "Private_Dirty:") and not in_jack:
            private_kb += int(fields[1])
    return {"rss": rss_kb / 1024, "jack": jack_kb / 1024, "own": (rss_kb - jack_kb) / 1024,
            "private": private_kb / 1024, "locked": locked_kb / 1024}


def measure(env: dict, preset: str, settle_s: float) -> dict:
    from live import LiveInstrument, status_json, wait_status

    inst = LiveInstrument(env, preset, "--no-midi", "--mapping", "none")
    try:
        playing = lambda s: s.get("first_audio_s") and s.get("audio_pid")  # noqa: E731
        status = wait_status(inst.osc_port, playing, timeout_s=START_TIMEOUT_S)
        if not playing(status):
            raise SystemExit(f"{preset}: no first audio in {START_TIMEOUT_S:.0f} s:\n"
                             f"{inst.output()}")
        time.sleep(settle_s)
        memory = memory_mb(int(status["audio_pid"]))
        memory["xruns"] = status_json(inst.osc_port).get("xruns", -1)
        return memory
    finally:
        inst.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*")
    p.add_argument("--settle-s", type=float, default=4.0, help="after first audio")
    args = p.parse_args()
    presets = args.presets or sorted(str(x.relative_to(REPO))
                                     for x in (REPO / "presets").glob("*.toml"))
    server = start_jack_server(name=f"bench-{os.getpid()}")
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("JACK_")})
    try:
        print(f"{'preset':<24} {'rss':>6} {'jack':>6} {'own':>6} {'private':>7} {'locked':>7}"
              "  (MB)")
        for preset in presets:
            m = measure(server.env, preset, args.settle_s)
            print(f"{preset:<24} {m['rss']:6.0f} {m['jack']:6.0f} {m['own']:6.0f} "
                  f"{m['private']:7.0f} {m['locked']:7.0f}", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
