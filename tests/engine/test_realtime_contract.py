"""The real-time contract of ``Engine.process_block`` (engine docstring, DESIGN idea 4),
measured: no memory growth (Python heap by tracemalloc, native by numba's NRT counters) over
thousands of dense blocks, and a Python cost per block that does not grow with the number of
nodes, voices or events."""

import gc
import tracemalloc

import numpy as np

from helpers import (
    chain_toml, compile_toml, count_python_calls, make_engine, note_on, render,
)
from instrument.bench import PRESET_DIR
from instrument.engine.events import (
    CC, CC_MOD_WHEEL, CC_SUSTAIN, EVENT_WIDTH, NOTE_OFF, NOTE_ON, PARAM, PITCH_BEND,
)
from instrument.presets import compile_file

SR = 48000
BLOCK = 64
N_BLOCKS = 2000


def _dense_event_blocks(n_params: int, n_arrays: int = 32, per_block: int = 12):
    """Preallocated block-relative event arrays: notes on and off (enough to steal voices),
    parameter moves, bend, mod wheel and pedal, spread over each block."""
    rng = np.random.default_rng(7)
    arrays = []
    for k in range(n_arrays):
        rows = []
        for j in range(per_block):
            offset = float(sorted(rng.integers(0, BLOCK, per_block))[j])
            pick = (k + j) % 6
            note = float(36 + (k * 5 + j * 7) % 48)
            if pick in (0, 1):
                rows.append((offset, NOTE_ON, 0, note, 0.3 + 0.7 * rng.random()))
            elif pick == 2:
                rows.append((offset, NOTE_OFF, 0, note, 0.0))
            elif pick == 3:
                rows.append((offset, PARAM, 0, float(rng.integers(0, n_params)), rng.random()))
            elif pick == 4:
                rows.append((offset, PITCH_BEND, 0, 2 * rng.random() - 1, 0.0))
            else:
                cc = CC_SUSTAIN if k % 4 == 0 else CC_MOD_WHEEL
                rows.append((offset, CC, 0, float(cc), float(rng.random() > 0.5)))
        arrays.append(np.ascontiguousarray(rows, dtype=np.float64))
    return arrays


def _poly16():
    return compile_file(PRESET_DIR / "poly16.toml", SR, BLOCK)


def _run(engine, arrays, out, n_blocks):
    n = len(arrays)
    for b in range(n_blocks):
        ev = arrays[b % n]
        engine.process_block(ev, ev.shape[0], out)


def test_process_block_does_not_grow_python_memory_over_2000_dense_blocks():
    plan = _poly16()
    engine = make_engine(plan)
    arrays = _dense_event_blocks(len(plan.params))
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    _run(engine, arrays, out, 200)  # warm up: compile, settle every code path
    gc.collect()
    tracemalloc.start(10)
    try:
        # Both runs from one line: a call may leave one small object alive until the next
        # call (CPython's attribute cache keeps the last name looked up in each of its slots),
        # which is no growth, but would show under the other run's traceback.
        snapshots = []
        for n_blocks in (20, N_BLOCKS):
            _run(engine, arrays, out, n_blocks)
            current, _ = tracemalloc.get_traced_memory()
            snapshots.append((current, tracemalloc.take_snapshot()))
        (current0, before), (current1, after) = snapshots
    finally:
        tracemalloc.stop()
    grown = [s for s in after.compare_to(before, "traceback")
             if s.size_diff > 0 and "tracemalloc" not in str(s.traceback)]
    engine_growth = sum(s.size_diff for s in grown
                        if any("instrument" in f.filename for f in s.traceback))
    assert engine_growth == 0, [str(s) for s in grown][:5]
    # The snapshot itself costs a little; anything per block would be 2000 times larger.
    assert current1 - current0 < 2048, current1 - current0
    assert np.all(np.isfinite(out))
    assert engine.active_voices > 0


def test_process_block_makes_no_native_allocations_beyond_argument_adoption():
    """Numba wraps every array argument of a native call in one NRT meminfo (malloc'd and
    freed around the call); that baseline aside, the renderer allocates nothing, and nothing
    stays allocated. The baseline is 4 per block: the instance's arrays cross as addresses in
    its block state."""
    from numba.core.runtime import _nrt_python, rtsys

    plan = _poly16()
    engine = make_engine(plan)
    arrays = _dense_event_blocks(len(plan.params))
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    if not _nrt_python.memsys_stats_enabled():
        _nrt_python.memsys_enable_stats()
    _run(engine, arrays, out, 200)
    s0 = rtsys.get_allocation_stats()
    _run(engine, arrays, out, N_BLOCKS)
    s1 = rtsys.get_allocation_stats()
    allocs = s1.alloc - s0.alloc
    frees = s1.free - s0.free
    assert allocs == frees  # nothing left allocated
    n_array_args = 4  # the block state, events, limiter, out: the instance's arrays go by address
    assert allocs == N_BLOCKS * n_array_args, (allocs / N_BLOCKS, n_array_args)


def _calls(plan, n_notes, events=None):
    engine = make_engine(plan)
    render(engine, 4 * BLOCK, [note_on(j, 30 + j, 0.8) for j in range(n_notes)])
    assert engine.active_voices == n_notes
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    if events is None:
        events = np.zeros((0, EVENT_WIDTH))
    return count_python_calls(engine, events, events.shape[0], out)


def test_python_calls_per_block_do_not_depend_on_the_number_of_nodes():
    small = compile_toml(chain_toml(5), SR, BLOCK)
    large = compile_toml(chain_toml(50), SR, BLOCK)
    assert large.ops.shape[0] >= 10 * (small.ops.shape[0] - 1)
    calls_small = _calls(small, 4)
    calls_large = _calls(large, 4)
    assert calls_small == calls_large, (calls_small, calls_large)
    assert calls_small <= 8


def test_python_calls_per_block_do_not_depend_on_the_number_of_voices():
    one = compile_toml(chain_toml(5, polyphony=1), SR, BLOCK)
    many = compile_toml(chain_toml(5, polyphony=64), SR, BLOCK)
    assert _calls(one, 1) == _calls(many, 64)


def test_python_calls_per_block_do_not_depend_on_the_number_of_events():
    plan = compile_toml(chain_toml(5, polyphony=16), SR, BLOCK)
    dense = _dense_event_blocks(len(plan.params), n_arrays=1, per_block=100)[0]
    assert _calls(plan, 8) == _calls(plan, 8, dense)


def test_python_calls_of_a_crossfade_block_do_not_depend_on_the_plan_size():
    def crossfade_calls(toml):
        plan = compile_toml(toml, SR, BLOCK)
        engine = make_engine(plan)
        out = np.zeros((BLOCK, 2), dtype=np.float32)
        render(engine, 4 * BLOCK, [note_on(0, 60), note_on(0, 64)])
        engine.swap(compile_toml(toml, SR, BLOCK))
        none = np.zeros((0, EVENT_WIDTH))
        engine.process_block(none, 0, out)  # adopt (strikes the held notes again)
        assert engine.old is not None
        return count_python_calls(engine, none, 0, out, blocks=5)

    assert engine_crossfade_blocks() > 5
    assert crossfade_calls(chain_toml(5)) == crossfade_calls(chain_toml(50))


def engine_crossfade_blocks():
    from instrument.engine.engine import DEFAULT_CROSSFADE_MS

    return int(DEFAULT_CROSSFADE_MS * 0.001 * SR) // BLOCK
