"""Compile every module kernel into numba's disk cache in parallel worker processes.

A cold start compiles each kernel once for the argument types the fused renderer passes
(``kernel_args`` lays out the same types), then the renderer, which loads those compiled
kernels from the cache and links them. numba compiles in one thread, so on a machine with
several cores the kernels are compiled first, one worker process per core, each taking the
next kernel as it finishes one; the caller then compiles the renderer on a warm kernel cache.
With this (and no built-in kernel compiled alone for validation: ``registry``), ``check``
plus ``cache --warm`` of every shipped preset from an empty cache took 72 and 73 s against
103 and 91 s before, interleaved, on the 2-core AMD EPYC VM; a Pi 4 has four cores.

Workers inherit the cache folder (``cache_folder`` puts it in the environment). A kernel that
fails to compile here is left for the renderer's compile, which reports it properly.
"""

from __future__ import annotations

import functools
import multiprocessing
import os

from instrument.settings import DEFAULTS


WORKER_MB = 600  # a worker's resident memory peaks near 460 MB after compiling its share


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_mb() -> int | None:
    """MemAvailable of /proc/meminfo in MB; None where there is none."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def parallel_jobs(cores: int, free_mb: int | None) -> int:
    """Workers to run: one per core, as many as the free memory holds (a 2 GB Pi 4 with four
    cores gets two or three, not four that would push it into swap)."""
    if free_mb is None:
        return cores
    return max(1, min(cores, free_mb // WORKER_MB))


def compile_kernels(type_names: list[str], jobs: int | None = None) -> int:
    """Compile the kernels of the registered modules ``type_names`` in ``jobs`` worker
    processes (default: ``parallel_jobs``). Does nothing with one job: the renderer's compile
    does the same work in this process anyway. Returns how many kernels compiled."""
    jobs = parallel_jobs(usable_cores(), available_mb()) if jobs is None else jobs
    if jobs < 2 or not type_names:
        return 0
    context = multiprocessing.get_context("spawn")  # no forked numba or thread state
    with context.Pool(min(jobs, len(type_names))) as pool:
        return sum(pool.imap_unordered(_compile_one, type_names, chunksize=1))


def _compile_one(type_name: str) -> int:
    """(In a worker.) Run one kernel once on a fresh voice: numba compiles it, or loads it."""
    from instrument.modules.kernel_args import kernel_args

    try:
        cls = _worker_registry().modules[type_name]
        lanes = 4
        args = kernel_args(cls, len(cls.inputs) + len(cls.outputs), lanes)
        cls.kernel(*args, 0, DEFAULTS.block_frames, lanes)
    except Exception:  # noqa: BLE001 - the renderer's compile reports a broken kernel
        return 0
    return 1


@functools.cache
def _worker_registry():
    """(In a worker.) The registered modules, discovered once per worker, not validated."""
    from instrument.modules.registry import discover

    return discover(validate=False)
