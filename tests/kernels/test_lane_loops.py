"""Lane loops (``kernels.noalias``): compiled with LLVM's noalias promise, and for 16 lanes as a
constant count as well; the 16-lane path gives the very samples of the general one."""

import numpy as np
import pytest

from instrument.engine import builtin_ops
from instrument.kernels import amp, envelopes, osc_saw, svf
from instrument.kernels.noalias import NOALIAS, WIDE_LANES
from instrument.layout import CTX_PITCH_STEADY, CTX_VELOCITY, ROW_GATE, ROW_PITCH, ROW_SINK
from instrument.layout import CODE_PMOD, CODE_SUM, OP_CODE, OP_IO0, OP_IO1, ROW_TRIGGER
from instrument.modules.kernel_args import kernel_args
from instrument.modules.registry import default_registry
from instrument.params import Kind
from instrument.presets import compile_file
from live import REPO

SEGMENTS = ((0, 64), (0, 13), (13, 14), (14, 64), (0, 64), (0, 40), (40, 64))
LANE_LOOPS = [amp._vca_steady, amp._vca_moving, osc_saw._steady_saw, svf._svf_run,
              envelopes._run_steady, builtin_ops._add_rows, builtin_ops._log_points]


@pytest.mark.skipif(not NOALIAS, reason="this numba has no noalias flag")
@pytest.mark.parametrize("fn", LANE_LOOPS, ids=lambda f: f.__name__)
def test_lane_loops_are_compiled_with_the_noalias_promise(fn):
    assert fn.targetoptions.get("noalias") is True


@pytest.mark.skipif(not NOALIAS, reason="this numba has no noalias flag")
def test_every_built_in_module_kernel_is_compiled_with_the_noalias_promise():
    registry = default_registry()
    kernels = {registry.get(name).kernel for name in registry.renderer().codes}
    assert len(kernels) > 20
    for kernel in kernels:
        assert kernel.targetoptions.get("noalias") is True, kernel.py_func.__name__


def _drive(type_name, steady, width):
    """The kernel of ``type_name`` over 40 blocks of uneven segments on ``width`` lanes: the
    first WIDE_LANES lanes get pitches, gates, triggers, velocities and noise inputs, every
    further lane a copy of lane 0's; a cutoff that moves (a filter's, so it takes its ramp).
    Returns the first WIDE_LANES lanes of the first output, segment after segment."""
    cls = default_registry().get(type_name)
    params = {spec.name: spec.from_norm(0.37) for spec in cls.params
              if spec.kind == Kind.CONTINUOUS}
    bufs, io, P, pr, st, ctx = kernel_args(cls, len(cls.inputs) + len(cls.outputs), width,
                                           params, steady=steady)
    lanes = WIDE_LANES
    pick = np.r_[np.arange(lanes), np.zeros(width - lanes, dtype=int)]
    rng = np.random.default_rng(5)
    for j, port in enumerate(cls.inputs):
        io[j] = {"pitch": ROW_PITCH, "gate": ROW_GATE, "trigger": ROW_TRIGGER}.get(
            port.default, io[j])
    for j in range(len(cls.inputs) + 1, len(io)):
        io[j] = ROW_SINK
    bufs[ROW_PITCH] = np.linspace(55.0, 1760.0, lanes)[pick]
    ctx[CTX_PITCH_STEADY] = 1.0
    ctx[CTX_VELOCITY] = np.linspace(0.2, 1.0, lanes)[pick]
    names = [spec.name for spec in cls.params]
    out = []
    for b in range(40):
        for s0, s1 in SEGMENTS:
            if "cutoff_hz" in names and not steady:
                P[pr[names.index("cutoff_hz")], s0:s1] = (
                    300.0 + 200.0 * np.sin(0.1 * (b * 64 + np.arange(s0, s1))))[:, None]
            for j, port in enumerate(cls.inputs):
                if port.default == "zero" or port.default == "one":
                    bufs[io[j], s0:s1] = (rng.standard_normal((s1 - s0, lanes)) * 0.3)[:, pick]
            on = ((b // 7 + np.arange(lanes)) % 3 != 0)[pick]
            bufs[ROW_GATE, s0:s1] = on
            bufs[ROW_TRIGGER, s0:s1] = 0.0
            bufs[ROW_TRIGGER, s0] = on & (((b + np.arange(lanes)) % 11 == 0)[pick])
            cls.kernel(bufs, io, P, pr, st, ctx, s0, s1, width)
            out.append(bufs[io[len(cls.inputs)], s0:s1, :lanes].copy())
    return np.concatenate(out)


@pytest.mark.parametrize("steady", [False, True], ids=["moving", "steady"])
@pytest.mark.parametrize("type_name", ["vca", "saw", "adsr", "adsr_curve", "svf_lowpass", "svf"])
def test_sixteen_lanes_give_the_samples_of_the_general_path(type_name, steady):
    wide, general = _drive(type_name, steady, WIDE_LANES), _drive(type_name, steady,
                                                                 WIDE_LANES + 1)
    assert np.max(np.abs(wide)) > 0.01
    assert np.array_equal(wide, general)


def _modulate(width, n_sources):
    """pmod_op on a log-curve parameter from one source (the one-source lane loop) or from
    that source and a second at amount 0.0 (the general loop): the rows it writes."""
    rng = np.random.default_rng(2)
    bufs = np.zeros((12, 64, width))
    bufs[10] = rng.random((64, width))
    bufs[11] = rng.random((64, width))
    P = np.zeros((2, 64, width))
    PN = np.full((1, 64), 0.3)
    pmeta = np.zeros((1, 10))
    pmeta[0, :3] = (builtin_ops.CURVE_LOG, 20.0, 20000.0)
    srcs = np.array([10, 11][:n_sources], dtype=np.int64)
    amounts = np.array([0.45, 0.0][:n_sources])
    out = []
    for chunk_ends in (0, 1):
        for s0, s1 in SEGMENTS:
            prs = np.array([0, 1, chunk_ends], dtype=np.int64)
            builtin_ops.pmod_op(bufs, srcs, prs, amounts, pmeta, P, PN, s0, s1, width)
            out.append(P[1, s0:s1, :WIDE_LANES].copy())
    return np.concatenate(out)


@pytest.mark.parametrize("width", [WIDE_LANES, 7])
def test_one_source_log_points_give_the_general_loops_samples(width):
    lanes = min(width, WIDE_LANES)
    one, general = _modulate(width, 1), _modulate(width, 2)
    assert np.array_equal(one[:, :lanes], general[:, :lanes])
    assert np.all(one[:, :lanes] > 20.0)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "presets").glob("*.toml")))
def test_no_op_of_a_shipped_preset_writes_a_row_it_reads(preset):
    """The promise lane loops make LLVM (``layout``, part 1): an op's output rows are none of
    its input rows (two outputs may share the sink, which nobody reads)."""
    plan = compile_file(REPO / "presets" / f"{preset}.toml", 48000, 64)
    registry = default_registry()
    by_code = {code: name for name, code in registry.renderer().codes.items()}
    for k in range(plan.ops.shape[0]):
        code = int(plan.ops[k, OP_CODE])
        io = [int(r) for r in plan.io[plan.ops[k, OP_IO0]:plan.ops[k, OP_IO1]]]
        if code == CODE_PMOD:
            continue  # writes a parameter row, reads buffer rows
        n_in = len(io) - 1 if code == CODE_SUM else len(registry.get(by_code[code]).inputs)
        outs = {r for r in io[n_in:] if r != ROW_SINK}
        assert not outs & set(io[:n_in]), (preset, k, io)


@pytest.mark.parametrize("n_sources", [2, 3, 4])
@pytest.mark.parametrize("width, nl", [(16, 16), (16, 9), (7, 7), (1, 1)])
def test_a_fan_in_sums_its_sources_in_order(n_sources, width, nl):
    rng = np.random.default_rng(n_sources)
    bufs = rng.standard_normal((16, 64, width))
    io = np.array([10 + k for k in range(n_sources)] + [15], dtype=np.int64)
    before = bufs[15].copy()
    builtin_ops.sum_op(bufs, io, 3, 50, nl)
    want = bufs[10, 3:50, :nl].copy()
    for k in range(1, n_sources):
        want = want + bufs[10 + k, 3:50, :nl]
    assert np.array_equal(bufs[15, 3:50, :nl], want)
    before[3:50, :nl] = want
    assert np.array_equal(bufs[15], before)  # nothing outside [s0, s1) x nl lanes
