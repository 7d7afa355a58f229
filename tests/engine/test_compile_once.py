"""Each native function the engine reaches is compiled for one set of argument types.

A literal argument (``run_ops(..., 1)``) or a warm-up call with other types than the callback's
(``record_block(..., 1.0, ...)`` where the callback passes an int) makes numba compile a second
version of a function and of everything it calls: the global graph's literal lane count alone
cost 55 of the 150 s that a cold ``instrument cache --warm`` took, and the warm-up's float
duration left the callback's own ``record_block`` to be loaded from disk inside the callback at
the first plan swap. Checked in a fresh process after warming up poly16, as the audio process
does.
"""

from __future__ import annotations

import json
import subprocess
import sys

from live import REPO

PROBE = """
import json, sys
from instrument.presets import compile_file
from instrument.runtime.audio_main import exercise_engine
from instrument.engine.fused import renderer_for_key
from instrument.runtime.ring import drain_ring
from instrument.runtime.status import record_block
plan = compile_file(sys.argv[1], 48000, 64)
exercise_engine(plan, 48000, 64)
fused = sys.modules[renderer_for_key(plan.renderer_key).source_path.stem]
# Functions only the renderer calls: every version numba compiled is in their cache index.
cached = {name: [str(key[0]) for key in f._cache._cache_file._load_index()]
          for name, f in (("run_ops", fused.run_ops), ("_render_segment", fused._render_segment))}
# Functions the warm-up calls from Python: the version it compiled.
called = {name: [str(tuple(str(t) for t in s)) for s in f.signatures]
          for name, f in (("drain_ring", drain_ring), ("record_block", record_block))}
print(json.dumps({"cached": cached, "called": called}))
"""


def test_the_engines_native_functions_are_compiled_for_one_signature_each():
    done = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "presets" / "poly16.toml")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name, signatures in found["cached"].items():
        assert len(signatures) == 1, (name, signatures)
        assert "Literal" not in signatures[0], (name, signatures)
    # The callback's types: float64 sample rate and times, int64 block and duration in ns.
    row, table = "array(float64, 1d, C)", "array(float64, 2d, C)"
    assert found["called"]["drain_ring"] == [
        str((row, table, "float64", "float64", "float64", "int64"))]
    assert found["called"]["record_block"] == [
        str((row, row, row, "int64", "float64", "float64"))]


LOADS = """
import sys
from instrument.presets import compile_file
from instrument.runtime.audio_main import exercise_engine
from instrument.engine.fused import renderer_for_key
plan = compile_file(sys.argv[1], 48000, 64)
exercise_engine(plan, 48000, 64)
renderer = renderer_for_key(plan.renderer_key)
print(len(renderer.render_block.overloads), len(renderer.live_block.overloads))
"""


def test_the_audio_process_loads_the_renderer_once():
    """The audio process plays every plan through ``live_block`` (its render-only mode for a
    crossfade or a restrike), so ``render_block`` is never loaded on its own: that was a second
    copy of the renderer's machine code, 60 MB of the audio process. Checked in a second
    process, on a warm cache (compiling ``live_block`` compiles ``render_block`` as its
    callee)."""
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", LOADS, str(REPO / "presets" / "poly16.toml")],
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "1"], done.stdout
