"""The audio callback's real-time contract, measured: over 10 000 blocks with events arriving
through the ring, no net memory growth (tracemalloc, numba NRT) and the garbage collector never
runs."""

import gc
import os
import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np

from instrument.engine.events import NOTE_OFF, NOTE_ON
from instrument.runtime import realtime
from instrument.runtime.audio_main import AudioProcess
from instrument.runtime.ring import RingWriter
from instrument.runtime.shared import S_CALLBACKS, SharedState
from live import REPO

BLOCKS = 10_000


def test_callback_allocates_nothing_and_gc_never_runs_over_10000_blocks():
    from numba.core.runtime import _nrt_python, rtsys

    host_side = SharedState(f"instrument-test-{os.getpid()}", create=True)
    try:
        preset = REPO / "presets" / "poly16.toml"
        from instrument.presets import compile_file

        plan = compile_file(preset, 48000, 64)
        for slot in plan.params:
            host_side.tables[0][slot.index] = slot.initial_norm
        args = SimpleNamespace(shm=host_side.name, rate=48000, block=64, device=None,
                               latency="low", null_fallback=True, record=None)
        proc = AudioProcess(args)
        proc.load(0, plan, first=True)
        proc.warm_up()
        ring = RingWriter(host_side.ring, host_side.status)
        out = np.zeros((64, 2), dtype=np.float32)
        stop = threading.Event()

        def keys():  # a player: notes in and out, and a knob, while the callback runs
            n = 0
            while not stop.is_set():
                note = 40 + n % 30
                ring.push(NOTE_ON, 0, note, 0.7)
                ring.push(NOTE_OFF, 0, note - 5, 0.0)
                host_side.tables[0][6] = (n % 100) / 100.0
                n += 1
                stop.wait(0.0005)

        for _ in range(200):  # settle: first-time paths, voice allocation
            proc.callback(out, 64, None, 0)
        if not _nrt_python.memsys_stats_enabled():
            _nrt_python.memsys_enable_stats()
        ran = []
        player = threading.Thread(target=keys)
        realtime.freeze_gc()  # as the audio process does before opening the stream
        gc.callbacks.append(lambda phase, info: ran.append(phase))
        player.start()
        try:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            nrt_before = rtsys.get_allocation_stats()
            for _ in range(BLOCKS):
                proc.callback(out, 64, None, 0)
            nrt_after = rtsys.get_allocation_stats()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
        finally:
            stop.set()
            player.join()
            gc.enable()
            gc.unfreeze()
            gc.callbacks.pop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename")
                    if s.size_diff > 0 and "instrument" in str(s.traceback)
                    and "test_" not in str(s.traceback))
        assert ran == []
        assert grown < 1024, grown
        # Each call into numba adopts its array arguments (one NRT meminfo each) and releases
        # them on return: allocations and frees must balance.
        assert (nrt_after.alloc - nrt_before.alloc) == (nrt_after.free - nrt_before.free)
        assert host_side.status[S_CALLBACKS] >= BLOCKS
        assert np.isfinite(out).all()
        proc.shared.close()
    finally:
        host_side.close()
