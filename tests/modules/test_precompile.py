"""Kernels compiled in parallel worker processes (instrument/modules/precompile.py) land in
numba's cache where the compiling process finds them; ``is_compiled`` tells a cold cache from a
warm one. Each test runs in a fresh cache folder, in its own process."""

import os
import subprocess
import sys

from live import REPO


def _python(code: str, cache, timeout_s: float = 300) -> str:
    env = {**os.environ, "INSTRUMENT_CACHE_DIR": str(cache), "NUMBA_CACHE_DIR": str(cache / "numba")}
    env.pop("INSTRUMENT_NUMBA_CACHE_BASE", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kernels_compiled_by_workers_are_loaded_not_compiled_again(tmp_path):
    out = _python("""
from instrument.modules.kernel_args import kernel_args
from instrument.modules.precompile import compile_kernels
from instrument.modules.registry import discover
registry = discover(validate=False)
print(compile_kernels(["vca", "gain"], jobs=2))
vca = registry.modules["vca"]
vca.kernel(*kernel_args(vca, 3, 4), 0, 64, 4)  # the types the renderer passes
stats = vca.kernel.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
""", tmp_path)
    assert out.split() == ["2", "1", "0"], out


def test_one_job_compiles_nothing_and_unknown_types_are_left_to_the_renderer(tmp_path):
    out = _python("""
from instrument.modules.precompile import compile_kernels
print(compile_kernels(["vca"], jobs=1), compile_kernels(["no_such_module"], jobs=2))
""", tmp_path)
    assert out.split() == ["0", "0"], out


def test_is_compiled_is_false_in_an_empty_cache(tmp_path):
    """(It was always true: ``any`` of generators. So the first-start message never showed,
    and ``instrument doctor`` said compiled on a cold cache.)"""
    out = _python("""
from instrument.engine.fused import is_compiled
from instrument.modules.registry import discover
print(is_compiled(discover(validate=False).renderer()))
""", tmp_path)
    assert out.strip() == "False"


def test_is_compiled_once_the_renderer_ran():
    from instrument.engine.fused import is_compiled
    from instrument.modules.registry import default_registry
    from instrument.presets import compile_file
    from instrument.runtime.audio_main import exercise_engine

    exercise_engine(compile_file(REPO / "presets" / "init.toml", 48000, 64), 48000.0, 64)
    assert is_compiled(default_registry().renderer())


def test_workers_are_bounded_by_cores_and_free_memory():
    from instrument.modules.precompile import WORKER_MB, available_mb, parallel_jobs

    assert parallel_jobs(2, 24_000) == 2
    assert parallel_jobs(4, 2 * WORKER_MB + 100) == 2  # a small Pi: not four
    assert parallel_jobs(4, 100) == 1  # no room: compiled in the caller, one by one
    assert parallel_jobs(3, None) == 3
    assert available_mb() is None or available_mb() > 0
