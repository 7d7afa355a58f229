"""The op timer build of the renderer (``engine.fused.generate_source(..., timed=True)``, used
by ``benchmarks/op_time.py``) is the only one that reads the clock: the untimed build the
instrument plays with reads none and leaves the timer slots alone."""

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.engine.fused import generate_source
from instrument.layout import E_WIDTH, eng_width
from instrument.modules.registry import default_registry
from instrument.presets import compile_file
from live import REPO

BLOCKS = 120


def _builtin_classes():
    return [cls for cls in default_registry().modules.values()
            if cls.__module__.startswith("instrument.")]


def test_only_the_timed_build_reads_the_clock():
    untimed, codes = generate_source(_builtin_classes())
    timed, timed_codes = generate_source(_builtin_classes(), timed=True)
    assert timed_codes == codes
    assert "OP_TIMERS = False" in untimed and "OP_TIMERS = True" in timed
    dispatch = untimed[:untimed.index("# Source template")]
    assert "monotonic_ns" not in dispatch
    assert "eng[T_OPS + k] += monotonic_ns() - t0" in timed


def _play(plan) -> tuple[np.ndarray, np.ndarray]:
    """A chord struck, held and released over BLOCKS blocks: the output and the eng slots."""
    engine = Engine(plan.sample_rate, plan.block_size)
    engine.load(plan)
    out = np.zeros((BLOCKS * plan.block_size, 2), dtype=np.float32)
    none = np.zeros((1, EVENT_WIDTH))
    for b in range(BLOCKS):
        if b == 2:
            ev = np.array([[5 + k, NOTE_ON, 0, 48 + 4 * k, 0.8] for k in range(5)], float)
        elif b == 80:
            ev = np.array([[9, NOTE_OFF, 0, 48 + 4 * k, 0.0] for k in range(5)], float)
        else:
            ev = none
        engine.process_block(ev, len(ev) if ev is not none else 0,
                             out[b * plan.block_size:(b + 1) * plan.block_size])
    return out, engine.current.eng.copy()


def test_the_untimed_build_leaves_the_timer_slots_alone():
    """(That the timed build plays the same samples bit for bit is checked by
    ``benchmarks/op_time.py`` itself before it reports: compiling it here cost the suite 30 s.)"""
    plan = compile_file(REPO / "presets" / "poly16.toml", 48000, 64)
    out, eng = _play(plan)
    assert np.abs(out).max() > 0.01
    assert eng.shape == (eng_width(plan.ops.shape[0]),)
    assert not eng[E_WIDTH:].any()
