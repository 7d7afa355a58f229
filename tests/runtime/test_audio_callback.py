"""The audio callback's real-time contract, measured: over 10 000 blocks with events arriving
through the ring, no net memory growth (tracemalloc, numba NRT) and the garbage collector never
runs; one native call per block outside plan swaps, rendering exactly what the Python path
renders; a block that blows up is recovered from that path too."""

import gc
import os
import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np

from instrument.bench import calls_made_by
from instrument.engine.events import NOTE_OFF, NOTE_ON
from instrument.runtime import realtime
from instrument.runtime.audio_main import NO_FLAGS, AudioProcess
from instrument.runtime.ring_writer import RingWriter
from instrument.runtime.shared import S_CALLBACKS, S_NONFINITE, SharedState
from live import REPO

BLOCKS = 10_000


def test_callback_allocates_nothing_and_gc_never_runs_over_10000_blocks():
    from numba.core.runtime import _nrt_python, rtsys

    host_side = SharedState(f"instrument-test-{os.getpid()}", create=True)
    try:
        proc = _audio_process(host_side, _poly16())
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
            proc.callback(out, 64, None, NO_FLAGS)
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
                proc.callback(out, 64, None, NO_FLAGS)
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


def _audio_process(host_side, plan):
    for slot in plan.params:
        host_side.tables[0][slot.index] = slot.initial_norm
    args = SimpleNamespace(shm=host_side.name, rate=48000, block=64, device=None,
                           latency="low", null_fallback=True, record=None)
    proc = AudioProcess(args)
    proc.load(0, plan, first=True)
    proc.warm_up()
    return proc


def _poly16():
    from instrument.presets import compile_file

    return compile_file(REPO / "presets" / "poly16.toml", 48000, 64)


def test_outside_a_swap_the_callback_makes_one_call_and_renders_what_the_python_path_does():
    plan = _poly16()
    rendered = []
    for fast in (True, False):
        host_side = SharedState(f"instrument-test-{os.getpid()}-{int(fast)}", create=True)
        try:
            proc = _audio_process(host_side, plan)
            ring = RingWriter(host_side.ring, host_side.status)
            for note in (48, 52, 55, 59):
                ring.push(NOTE_ON, 0, note, 0.8)
            out = np.zeros((64, 2), dtype=np.float32)
            blocks = []
            for b in range(200):
                if b == 100:
                    ring.push(NOTE_OFF, 0, 52, 0.0)
                if fast:
                    proc.callback(out, 64, None, NO_FLAGS)
                else:
                    proc._callback_in_python(out, NO_FLAGS)
                blocks.append(out.copy())
            rendered.append(np.concatenate(blocks))
            if fast:
                # the callback itself and the one call it makes
                assert calls_made_by(lambda: proc.callback(out, 64, None, NO_FLAGS)) == 2.0
            assert host_side.status[S_CALLBACKS] >= 200
            proc.shared.close()
        finally:
            host_side.close()
    fast_out, python_out = rendered
    assert np.abs(fast_out).max() > 0.05
    # The ring's offsets come from the clock: a note-off lands at its own sample in each run,
    # so the two agree exactly up to block 100 and closely after it.
    np.testing.assert_array_equal(fast_out[:100 * 64], python_out[:100 * 64])


def test_a_block_that_blows_up_in_the_one_native_call_is_recovered():
    from helpers import ONE_VOICE_BLOWS, compile_toml, test_registry

    plan = compile_toml(ONE_VOICE_BLOWS, 48000, 64, registry=test_registry())
    host_side = SharedState(f"instrument-test-{os.getpid()}-blow", create=True)
    try:
        proc = _audio_process(host_side, plan)
        ring = RingWriter(host_side.ring, host_side.status)
        out = np.zeros((64, 2), dtype=np.float32)
        ring.push(NOTE_ON, 0, 60, 1.0)  # velocity 1: growth 2.5, the voice blows up
        for _ in range(100):
            proc.callback(out, 64, None, NO_FLAGS)
            assert np.isfinite(out).all()
        assert host_side.status[S_NONFINITE] >= 1
        assert proc.engine.current.live is not None
        proc.shared.close()
    finally:
        host_side.close()


def test_portaudio_callback_flags_keep_their_bits_where_the_callback_reads_them():
    """The one-call path reads ``flags._flags`` (no Python call); a sounddevice release that
    moved it would fail here, not in the audio thread."""
    import sounddevice as sd

    assert sd.CallbackFlags(2)._flags == 2
    assert NO_FLAGS._flags == 0
