"""Kernels that read a settled parameter as one value per lane (``kernels.steady``): given the
engine's steady flags they give the very samples they give without them, and the engine flags
exactly the rows that hold (``engine.voicing.fill_params``)."""

import numpy as np
import pytest

from instrument.engine.instance import PlanInstance
from instrument.engine.render_template import render_block
from instrument.engine.events import NOTE_ON, PARAM
from instrument.layout import (
    CTX_PITCH_STEADY, CTX_STEADY, CTX_VELOCITY, PM_ROW, ROW_GATE, ROW_PITCH, ROW_SINK,
    ROW_TRIGGER,
)
from instrument.modules.kernel_args import kernel_args
from instrument.modules.registry import default_registry
from instrument.params import Kind
from instrument.presets import compile_file
from live import REPO

BLOCK = 64
SEGMENTS = ((0, 64), (0, 13), (13, 14), (14, 64), (0, 64), (0, 40), (40, 64))


def _drive(type_name, steady, lanes=16):
    """The kernel of ``type_name`` over 60 blocks of uneven segments, its parameters at
    non-default constants, inputs as the engine makes them (pitch, gate with notes starting
    and ending at segment starts, trigger) or noise; the output rows of every segment."""
    cls = default_registry().get(type_name)
    params = {spec.name: spec.from_norm(0.37) for spec in cls.params
              if spec.kind == Kind.CONTINUOUS}
    bufs, io, P, pr, st, ctx = kernel_args(cls, len(cls.inputs) + len(cls.outputs), lanes,
                                           params, steady=steady)
    rng = np.random.default_rng(11)
    for j, port in enumerate(cls.inputs):
        io[j] = {"pitch": ROW_PITCH, "gate": ROW_GATE, "trigger": ROW_TRIGGER}.get(
            port.default, io[j])
    for j in range(len(cls.inputs), len(io)):
        io[j] = io[j] if j == len(cls.inputs) else ROW_SINK  # first output only
    bufs[ROW_PITCH] = np.linspace(55.0, 1760.0, lanes)
    ctx[CTX_PITCH_STEADY] = 1.0
    ctx[CTX_VELOCITY] = np.linspace(0.2, 1.0, lanes)
    out = []
    for b in range(60):
        for s0, s1 in SEGMENTS:
            for j, port in enumerate(cls.inputs):
                if port.default == "zero" or port.default == "one":
                    bufs[io[j], s0:s1] = rng.standard_normal((s1 - s0, lanes)) * 0.3
            on = (b // 7 + np.arange(lanes)) % 3 != 0
            bufs[ROW_GATE, s0:s1] = on
            bufs[ROW_TRIGGER, s0:s1] = 0.0
            bufs[ROW_TRIGGER, s0] = on & ((b + np.arange(lanes)) % 11 == 0)
            cls.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
            out.append(bufs[io[len(cls.inputs)], s0:s1].copy())
    return np.concatenate(out)


@pytest.mark.parametrize("type_name", ["vca", "saw", "adsr", "adsr_curve", "ar"])
def test_a_kernel_gives_the_same_samples_with_its_parameters_flagged_steady(type_name):
    moving, steady = _drive(type_name, False), _drive(type_name, True)
    assert np.max(np.abs(moving)) > 0.01
    assert np.array_equal(steady, moving)


def test_the_engine_flags_settled_rows_steady_and_moving_ones_not():
    """poly16: every parameter row settled after load; a new cutoff target moves its row (and
    only it) while it is smoothed, then it settles again; the modulated copy of the cutoff
    (the filter envelope's pmod row) is never flagged."""
    plan = compile_file(REPO / "presets" / "poly16.toml", 48000, BLOCK)
    instance = PlanInstance(plan)
    no_out = np.zeros((0, 2), dtype=np.float32)
    lim = np.zeros(8)
    cutoff = next(s.index for s in plan.params if s.path == "filt.cutoff_hz")
    rows = [int(plan.pmeta[p, PM_ROW]) for p in range(len(plan.params))]
    flags = instance.vctx[CTX_STEADY:, 0]
    render_block(instance.state, np.array([[0.0, NOTE_ON, 0.0, 60.0, 0.8]]), 1, lim, no_out)
    assert all(flags[r] == 1.0 for r in rows)
    assert np.all(flags[plan.n_voice_param_rows - 1:] == 0.0) and max(rows) < len(flags) - 1
    render_block(instance.state, np.array([[0.0, PARAM, 0.0, float(cutoff), 0.9]]), 1, lim,
                 no_out)
    assert flags[rows[cutoff]] == 0.0
    assert sum(flags[r] for r in rows) == len(rows) - 1
    for _ in range(2000):  # 2.7 s: far past the cutoff's smoothing
        render_block(instance.state, np.zeros((1, 5)), 0, lim, no_out)
    assert flags[rows[cutoff]] == 1.0


@pytest.mark.parametrize("type_name", ["adsr", "adsr_curve"])
def test_sustaining_lanes_hold_the_sustain_level_exactly_while_a_released_one_falls(type_name):
    """Every lane sustaining: each sample is the sustain level itself (the envelopes fill the
    segment instead of stepping a recursion whose step is 0); one lane released among them:
    it falls, sample after sample, and the others stay exactly on the level."""
    cls = default_registry().get(type_name)
    lanes = 16
    bufs, io, P, pr, st, ctx = kernel_args(cls, 3, lanes, {"attack_ms": 1.0, "decay_ms": 5.0,
                                                            "sustain": 0.6}, steady=True)
    io[0], io[1] = ROW_GATE, ROW_TRIGGER
    bufs[ROW_GATE] = 1.0
    for _ in range(20):  # 27 ms: attack and decay over
        cls.kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, lanes)
    for _ in range(3):
        cls.kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, lanes)
        assert np.all(bufs[io[2]] == 0.6)
    bufs[ROW_GATE, :, 5] = 0.0
    cls.kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, lanes)
    out = bufs[io[2]]
    assert np.all(np.delete(out, 5, axis=1) == 0.6)
    assert np.all(np.diff(out[:, 5]) < 0.0) and out[0, 5] < 0.6
