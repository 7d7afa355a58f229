"""An audio process that had to compile starts again fresh (``audio_main._start_again_fresh``):
the same pid, its first plan handed over in a memfd, and from then on it plays, switches
presets through its stdin and stops as any other. The compile leaves LLVM's memory behind,
which the audio process would otherwise lock for its life (230-525 MB of its own against
172 MB loaded from the cache: ``benchmarks/audio_memory.py``).

The renderer's ``live_block`` (what the audio process plays with) is taken out of the test
cache first, so the audio process compiles that alone (8 s here, against a minute for all) and
writes it back for the tests after this one."""

import signal
import subprocess
import sys
import time
from pathlib import Path

from pythonosc.udp_client import SimpleUDPClient

from instrument.engine.fused import is_compiled
from instrument.modules.registry import default_registry
from live import REPO, free_udp_port, wait_status

START_TIMEOUT_S = 400  # on a cold kernel cache too


def test_an_audio_process_that_compiled_plays_on_from_a_fresh_start():
    renderer = default_registry().renderer()
    folder = Path(renderer.live_block.stats.cache_path)
    for path in folder.glob(f"{renderer.source_path.stem}.live_block-*"):
        path.unlink()
    assert not is_compiled(renderer)
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instrument.cli.main", "run", "presets/init.toml", "--null",
         "--no-midi", "--mapping", "none", "--osc-port", str(port), "--osc-bind", "127.0.0.1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if "first audio" in line:
                break
        text = "".join(lines)
        assert "first audio" in text, text
        assert "compiling the DSP code" in text and "starting the audio process again" in text
        status = wait_status(port, lambda s: s.get("audio_pid"))
        pid = int(status["audio_pid"])
        assert "--first-plan-fd" in Path(f"/proc/{pid}/cmdline").read_text()  # the same pid
        assert status["audio_restarts"] == 0

        osc = SimpleUDPClient("127.0.0.1", port)
        osc.send_message("/preset/load", ["poly16"])  # a plan through stdin, after the exec
        assert wait_status(port, lambda s: "poly16" in str(s.get("preset")))
        osc.send_message("/note/on", [57, 0.9])
        playing = wait_status(port, lambda s: s.get("active_voices", 0) >= 1)
        assert playing.get("active_voices", 0) >= 1, playing
        assert playing["audio_pid"] == pid and playing["audio_restarts"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in "".join(lines) + out
