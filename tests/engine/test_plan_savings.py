"""Work the plan compiler saves: sparse reads (``layout``, part 1), where a modulation of a
filter's cutoff writes only the chunk ends the filter reads and an envelope that only
modulates such parameters writes only the modulation points (the same sound as writing every
sample, up to rounding); and output nodes that run no op, their sources writing the output
rows themselves (the same samples)."""

import numpy as np
import pytest

from helpers import bend, cc, make_engine, note_off, note_on, param, render
from instrument.graph.compile import direct_outputs, read_at_points, resolve_modules
from instrument.layout import (
    CFG_N_OPS, CTX_SAMPLE_RATE, CTX_WIDTH, MOD_STEP, N_RESERVED_ROWS, ROW_GATE, ROW_ONE,
    ROW_OUT_L, ROW_OUT_R, ROW_TRIGGER,
)
from instrument.modules.envelopes import Adsr, AdsrCurve, Ar
from instrument.modules.registry import default_registry
from instrument.modules.ladder import Ladder
from instrument.modules.modulation import Lfo
from instrument.modules.svf import Svf, SvfLowpass
from instrument.presets import compile_file
from instrument.presets.load import parse_preset
from live import REPO

SR = 48000
BLOCK = 64


def _points(s0, s1):
    """The modulation points of segment [s0, s1)."""
    return sorted(set(range(s0, s1, MOD_STEP)) | {s1 - 1})


def _everywhere(monkeypatch):
    """Compile as before sparse reads: every sample of every row written."""
    for cls in (Adsr, AdsrCurve, Ar, Lfo):
        monkeypatch.setattr(cls, "read_at_points", classmethod(lambda cls, state: False))
    for cls in (Svf, SvfLowpass, Ladder):
        monkeypatch.setattr(cls, "chunk_params", ())


def _voice_graph(connect):
    """The voice graph of VOICE with ``connect`` and its module classes."""
    preset = parse_preset(VOICE.format(connect=", ".join(connect)))
    return preset.voice_graph, resolve_modules(preset, default_registry())


VOICE = """
format = 1
name = "t"
[voice]
polyphony = 4
connect = [{connect}]
[voice.nodes.osc]
type = "saw"
[voice.nodes.env]
type = "adsr"
[voice.nodes.env2]
type = "adsr"
[voice.nodes.filt]
type = "svf_lowpass"
[voice.nodes.amp]
type = "vca"
[voice.nodes.pan]
type = "pan"
[voice.nodes.out]
type = "output"
"""


@pytest.mark.parametrize("connect, sparse", [
    # only a cutoff (log curve): read at the modulation points only
    (['"env.out -> filt.cutoff_hz * 0.5"'], {"env"}),
    # a cutoff and a time (exp curve): still only points
    (['"env.out -> filt.cutoff_hz * 0.5"', '"env.out -> env2.decay_ms * 0.2"'], {"env"}),
    # a cutoff and an audio input: every sample
    (['"env.out -> filt.cutoff_hz * 0.5"', '"env.out -> amp.cv"'], set()),
    # a linear parameter (resonance): every sample
    (['"env.out -> filt.resonance * 0.5"'], set()),
])
def test_a_node_is_read_at_points_only_when_every_reader_is_a_non_linear_modulation(
        connect, sparse):
    audio = ['"osc.out -> filt.in"', '"filt.out -> amp.in"', '"amp.out -> out.in"']
    assert read_at_points(*_voice_graph(audio + connect)) == sparse


def test_the_plan_says_which_nodes_write_points_and_which_modulations_chunk_ends():
    text = str(compile_file(REPO / "presets" / "poly16.toml", SR, BLOCK))
    assert "pmod         filt.cutoff_hz + b12*0.45 -> P19 (chunk ends)" in text
    assert text.endswith("written at modulation points only: fenv")


def _events(plan):
    """Chords struck and released at odd offsets (segments of every length), a zero-length
    note, pitch bend, the mod wheel and a cutoff move: every path of the envelopes."""
    cutoff = next((p.index for p in plan.params if p.path.endswith("cutoff_hz")), 0)
    ev = [note_on(0, 57), note_on(37, 61), note_on(1000, 64), note_off(5003, 57),
          note_on(7001, 45), note_off(7001, 45), bend(9000, 0.5), cc(12000, 1, 0.7),
          param(15000, cutoff, 0.2), note_off(20011, 61), note_on(20011, 66),
          note_on(24000, 69), note_off(30000, 64), note_off(30000, 66), note_off(40000, 69)]
    return ev + [note_on(41000 + 13 * k, 50 + 3 * k) for k in range(6)]


@pytest.mark.parametrize("preset", ["poly16", "pad", "brass", "bass", "init", "drone", "pluck"])
def test_sparse_reads_sound_as_writing_every_sample(preset, monkeypatch):
    """The chunk-end modulation gives the very numbers the filter read before; the envelope's
    jumps from point to point give the recursion's values up to rounding (an attack's last
    sample could move by one, -100 dB; here the float32 outputs agree to 1e-7 of the peak,
    a float32 rounding step)."""
    path = REPO / "presets" / f"{preset}.toml"
    sparse = compile_file(path, SR, BLOCK)
    with monkeypatch.context() as m:
        _everywhere(m)
        dense = compile_file(path, SR, BLOCK)
    assert "(chunk ends)" in str(sparse) and "(chunk ends)" not in str(dense)
    n = 60000
    outs = [render(make_engine(plan), n, _events(sparse)) for plan in (sparse, dense)]
    peak = np.abs(outs[1]).max()
    assert peak > 0.05
    assert np.abs(outs[0] - outs[1]).max() <= 1e-7 * peak


def _run_envelope(cls, points, gate, trig, segments, params):
    """``cls``'s kernel over engine-like rows, every sample it does not write left NaN."""
    lanes = gate.shape[1]
    io = np.array([ROW_GATE, ROW_TRIGGER, N_RESERVED_ROWS], dtype=np.int64)
    bufs = np.zeros((N_RESERVED_ROWS + 1, BLOCK, lanes))
    bufs[ROW_ONE] = 1.0  # the ar's sustain
    P = np.zeros((len(params), BLOCK, lanes))
    P[:] = np.asarray(params)[:, None, None]
    st = np.zeros((cls.state_size, lanes))
    for v in range(lanes):
        cls.reset_state(st[:, v], SR)
        if points:
            assert cls.read_at_points(st[:, v])
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = SR
    out = np.full(gate.shape, np.nan)
    for s, e in segments:
        s0, s1 = s % BLOCK, (e - 1) % BLOCK + 1
        bufs[ROW_GATE, s0:s1] = gate[s:e]
        bufs[ROW_TRIGGER, s0:s1] = trig[s:e]
        bufs[N_RESERVED_ROWS] = np.nan  # what the kernel does not write stays NaN
        cls.kernel(bufs, io, P, np.arange(len(params), dtype=np.int64), st, ctx, s0, s1, lanes)
        out[s:e] = bufs[N_RESERVED_ROWS, s0:s1]
    return out


# attack, decay, sustain, release (then curve and retrigger, or attack and release alone)
ENVELOPES = {"adsr": (Adsr, (4.0, 30.0, 0.4, 20.0)),
             "adsr_curve": (AdsrCurve, (4.0, 30.0, 0.4, 20.0, 0.6, 0.0)),
             "ar": (Ar, (4.0, 20.0))}


@pytest.mark.parametrize("kind", list(ENVELOPES))
@pytest.mark.parametrize("lanes", [1, 3, 16])
def test_an_envelope_read_at_points_writes_them_as_the_every_sample_one_does(kind, lanes):
    """Random segments (engine-like: gate constant over each, triggers on their first
    sample, zero-length notes among them): at every modulation point the value is the every
    sample kernel's within 1e-12; in steady segments it writes the points alone."""
    rng = np.random.default_rng(3)
    total = 400 * BLOCK
    cuts = set(range(0, total + 1, BLOCK)) | set(rng.integers(0, total, total // 50).tolist())
    bounds = sorted(cuts)
    segments = list(zip(bounds, bounds[1:]))
    gate = np.zeros((total, lanes))
    trig = np.zeros((total, lanes))
    for s, e in segments:
        gate[s:e] = rng.random(lanes) < 0.6
        trig[s] = rng.random(lanes) < 0.15
    cls, params = ENVELOPES[kind]
    every = _run_envelope(cls, False, gate, trig, segments, params)
    points = _run_envelope(cls, True, gate, trig, segments, params)
    assert not np.isnan(every).any()
    at = np.array([s + p - s % BLOCK for s, e in segments
                   for p in _points(s % BLOCK, (e - 1) % BLOCK + 1)])
    np.testing.assert_allclose(points[at], every[at], rtol=0, atol=1e-12)
    skipped = np.isnan(points)
    assert skipped.mean() > 0.05  # steady segments wrote their points alone
    assert not skipped[at].any()


@pytest.mark.parametrize("shape", ["Sine", "Triangle", "Saw", "Square", "S&H"])
@pytest.mark.parametrize("mode", ["Free", "Retrigger"])
def test_an_lfo_read_at_points_gives_the_every_sample_numbers_there(shape, mode):
    """Random engine-like segments, triggers on their first samples, the rate moving: at every
    modulation point the very numbers of the every-sample kernel (sample-and-hold runs every
    sample either way)."""
    from instrument.kernels.modulation import L_POINTS
    from instrument.modules.kernel_args import kernel_args

    lanes, total = 5, 200 * BLOCK
    rng = np.random.default_rng(5)
    cuts = sorted(set(range(0, total + 1, BLOCK)) | set(rng.integers(0, total, 150).tolist()))
    segments = list(zip(cuts, cuts[1:]))
    trig = np.zeros((total, lanes))
    for s, _ in segments:
        trig[s] = rng.random(lanes) < 0.2
    rate = 3.0 + 2.0 * np.sin(np.arange(total) / 900.0)[:, None] + np.arange(lanes)
    params = {"shape": Lfo.param("shape").choices.index(shape),
              "mode": Lfo.param("mode").choices.index(mode), "depth": 0.8, "phase_deg": 30.0}
    outs = []
    for points in (False, True):
        bufs, io, P, pr, st, ctx = kernel_args(Lfo, 2, lanes, params=params)
        st[L_POINTS] = 1.0 if points else 0.0
        out = np.full((total, lanes), np.nan)
        rate_row = Lfo.param_names().index("rate_hz")
        for s, e in segments:
            s0, s1 = s % BLOCK, (e - 1) % BLOCK + 1
            bufs[io[0], s0:s1] = trig[s:e]
            P[rate_row, s0:s1] = rate[s:e]
            bufs[io[1]] = np.nan
            Lfo.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
            out[s:e] = bufs[io[1], s0:s1]
        outs.append(out)
    every, points = outs
    assert not np.isnan(every).any() and np.abs(every).max() > 0.1
    at = np.array([s + p - s % BLOCK for s, e in segments
                   for p in _points(s % BLOCK, (e - 1) % BLOCK + 1)])
    np.testing.assert_array_equal(points[at], every[at])


# ---- outputs written in place -----------------------------------------------------------

_PANNED = ['"amp.out -> pan.in"', '"pan.out_left -> out.left"', '"pan.out_right -> out.right"']


@pytest.mark.parametrize("connect, writers", [
    (['"amp.out -> out.in"'], {("amp", "out"): ROW_OUT_L}),
    (_PANNED, {("pan", "out_left"): ROW_OUT_L, ("pan", "out_right"): ROW_OUT_R}),
    (_PANNED + ['"osc.out -> out.in"'], {}),  # the output sums in into both sides
    (['"amp.out -> out.in"', '"osc.out -> out.in"'], {}),  # a fan-in into in
    (['"amp.out -> out.in"', '"amp.out -> pan.in"'], {}),  # amp is read elsewhere too
    (['"amp.out -> pan.in"', '"pan.out_left -> out.left"'], {}),  # right: zeros to write
])
def test_the_output_node_runs_no_op_when_its_sources_can_write_its_rows(connect, writers):
    graph, classes = _voice_graph(['"osc.out -> amp.in"'] + connect)
    readers = {}
    for c in graph.connections:
        readers[(c.src, c.src_port)] = readers.get((c.src, c.src_port), 0) + 1
    assert direct_outputs(graph, classes, readers) == writers


@pytest.mark.parametrize("preset", ["poly16", "keys", "brass"])
def test_outputs_written_in_place_sound_bit_identical(preset, monkeypatch):
    """poly16 (a mono voice), keys (a panned one) and brass: the plan without output ops
    renders the very samples of the plan with them."""
    path = REPO / "presets" / f"{preset}.toml"
    direct = compile_file(path, SR, BLOCK)
    with monkeypatch.context() as m:
        m.setattr("instrument.graph.compile.direct_outputs", lambda *args: {})
        copied = compile_file(path, SR, BLOCK)
    assert "runs no op" in str(direct) and "runs no op" not in str(copied)
    assert direct.cfg[CFG_N_OPS] < copied.cfg[CFG_N_OPS]
    outs = [render(make_engine(plan), 40000, _events(direct)) for plan in (direct, copied)]
    assert np.abs(outs[0]).max() > 0.05
    assert outs[0].tobytes() == outs[1].tobytes()
