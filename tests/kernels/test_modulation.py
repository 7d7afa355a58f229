"""Modulation and stereo modules (lfo, ar, adsr_curve, slew, pan, width): each kernel against
its slow reference (tests/naive_modulation.py) through the kernel contract (lanes, segments),
and each docstring claim measured through the real engine with a registry that adds them."""

import itertools
import math

import numpy as np
import pytest

import naive_modulation as naive
from helpers import (
    compile_toml, fft_pitch, make_engine, note_off, note_on, render, rising_zero_crossings,
)
from instrument.kernels.envelopes import (
    AR_RELEASE_K, E_LEVEL, E_STAGE, ENV_STATE, IDLE, K_MAX, adsr_curve_kernel, ar_kernel,
    env_reset,
)
from instrument.kernels.modulation import (
    L_RNG, L_STARTED, L_TPREV, LFO_STATE, SLEW_STATE, lfo_kernel, lfo_seed, pan_kernel,
    sin_turns, slew_kernel, slew_reset, width_kernel,
)
from instrument.layout import (
    CTX_SAMPLE_RATE, CTX_WIDTH, N_RESERVED_ROWS, ROW_GATE, ROW_ONE, ROW_TRIGGER,
)
from instrument.modules.envelopes import AdsrCurve, Ar
from instrument.modules.modulation import Lfo, Pan, Slew, Width
from instrument.modules.registry import Registry, check_module, default_registry

SR = 48000.0
BLOCK = 64
MODULES = (Lfo, Ar, AdsrCurve, Slew, Pan, Width)
GAIN_DB = -6.0  # envelopes are heard through a gain, so full level stays under the limiter
G = 10.0 ** (GAIN_DB / 20.0)

_registry = None


def registry() -> Registry:
    """The built-ins plus this file's modules (one fused renderer, built once)."""
    global _registry
    if _registry is None:
        modules = dict(default_registry().modules)
        modules.update({cls.type_name: cls for cls in MODULES})
        _registry = Registry(modules=modules)
    return _registry


# ---- driving kernels directly ---------------------------------------------------------------

def drive(kernel, n_blocks, lanes, state, inputs, params, n_out=1, segments=(0, BLOCK),
          io_inputs=None, sr=SR):
    """Run ``kernel`` over ``n_blocks``: ``inputs[k]`` and ``params[k]`` are (total, lanes)
    arrays (or scalars), ``state`` a (rows, lanes) array updated in place. ``io_inputs`` puts
    inputs on reserved rows instead (e.g. ROW_GATE). Returns a list of (total, lanes) outputs."""
    total = n_blocks * BLOCK
    n_in = len(inputs)
    bufs = np.zeros((N_RESERVED_ROWS + n_in + n_out, BLOCK, lanes))
    bufs[ROW_ONE] = 1.0
    in_rows = list(io_inputs or range(N_RESERVED_ROWS, N_RESERVED_ROWS + n_in))
    out_rows = list(range(N_RESERVED_ROWS + n_in, N_RESERVED_ROWS + n_in + n_out))
    io = np.array(in_rows + out_rows, dtype=np.int64)
    P = np.zeros((max(len(params), 1), BLOCK, lanes))
    pr = np.arange(max(len(params), 1), dtype=np.int64)
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = sr
    full = [np.broadcast_to(np.asarray(x, dtype=float), (total, lanes)) for x in inputs]
    fullp = [np.broadcast_to(np.asarray(x, dtype=float), (total, lanes)) for x in params]
    outs = [np.zeros((total, lanes)) for _ in range(n_out)]
    bounds = list(segments) if segments[-1] == BLOCK else list(segments) + [BLOCK]
    for b in range(n_blocks):
        sl = slice(b * BLOCK, (b + 1) * BLOCK)
        for k in range(n_in):
            bufs[io[k]] = full[k][sl]
        for k in range(len(params)):
            P[k] = fullp[k][sl]
        for s0, s1 in itertools.pairwise(bounds):
            kernel(bufs, io, P, pr, state, ctx, s0, s1, lanes)
        for k in range(n_out):
            outs[k][sl] = bufs[out_rows[k]]
    return outs


def pulses(total, lanes, rng, on=(200, 2500), off=(100, 2000)):
    gate = np.zeros((total, lanes))
    for v in range(lanes):
        t = int(rng.integers(0, 300))
        while t < total:
            a = int(rng.integers(*on))
            gate[t:t + a, v] = 1.0
            t += a + int(rng.integers(*off))
    return gate


def fresh_env(lanes):
    col = np.zeros(ENV_STATE)
    env_reset(col)
    return np.repeat(col[:, None], lanes, axis=1)


# ---- engine presets -------------------------------------------------------------------------

def preset(nodes: str, connect, mode="poly", polyphony=4, global_graph="") -> str:
    conn = ", ".join(f'"{c}"' for c in connect)
    return (f'format = 1\nname = "mod"\n[voice]\npolyphony = {polyphony}\nmode = "{mode}"\n'
            f'connect = [{conn}]\n{nodes}\n[voice.nodes.out]\ntype = "output"\n{global_graph}\n')


def play(text, n_frames, events, sr=SR):
    plan = compile_toml(text, sr, BLOCK, registry())
    return render(make_engine(plan), n_frames, events)[:n_frames].astype(np.float64)


def lfo_preset(params: str, mode="poly", polyphony=4) -> str:
    return preset(f'[voice.nodes.lfo]\ntype = "lfo"\n{params}\n', ["lfo.out -> out.in"], mode,
                  polyphony)


# ---- declarations ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.type_name)
def test_module_validates(cls):
    assert check_module(cls) == ""


def test_sin_turns_error_below_2e_11():
    t = np.linspace(-0.5, 1.0, 200001)[:-1]
    err = max(abs(sin_turns(x) - math.sin(2 * math.pi * x)) for x in t[::7])
    assert err < 2e-11


# ---- kernels against references -------------------------------------------------------------

@pytest.mark.parametrize("shape", range(5), ids=["sine", "triangle", "saw", "square", "sh"])
@pytest.mark.parametrize("mode", [0, 1], ids=["free", "retrigger"])
def test_lfo_matches_reference_across_lanes_and_segments(shape, mode):
    lanes, n_blocks = 3, 200
    total = n_blocks * BLOCK
    n = np.arange(total)
    rate = np.stack([np.full(total, 7.3), 20.0 + 15.0 * np.sin(n / 3000.0),
                     np.full(total, 0.6)], axis=1)
    phase = np.stack([np.zeros(total), np.full(total, 90.0), np.linspace(0, 350, total)], axis=1)
    depth = np.array([1.0, 0.5, 0.8])
    uni = 1.0 if shape == 2 else 0.0
    trig = np.zeros((total, lanes))
    trig[np.random.default_rng(shape).integers(0, total, 12), :] = 1.0
    st = np.zeros((LFO_STATE, lanes))
    seeds = [12345, 99, 0xDEADBEEF]
    st[L_STARTED] = 1.0
    st[L_RNG] = seeds
    st[L_TPREV] = 2.0
    out, = drive(lfo_kernel, n_blocks, lanes, st, [trig],
                 [shape, rate, depth, mode, phase, uni, 0], segments=(0, 9, 40))
    for v in range(lanes):
        ref = naive.lfo(total, SR, shape, rate[:, v], depth[v], mode, phase[:, v], uni,
                        trig[:, v], seeds[v])
        # exact but for the phase sum's rounding: a wrap can fall one sample apart
        diff = np.abs(out[:, v] - ref)
        assert np.mean(diff > 1e-9) < 2e-3, (v, np.nonzero(diff > 1e-9)[0][:5])
        if shape == 0:
            assert diff.max() < 1e-9


@pytest.mark.parametrize("hard", [0.0, 1.0], ids=["from-current", "from-zero"])
def test_adsr_curve_matches_reference_with_patched_gate(hard):
    lanes, n_blocks = 4, 150
    total = n_blocks * BLOCK
    rng = np.random.default_rng(3)
    gate = pulses(total, lanes, rng)
    trig = np.zeros((total, lanes))
    trig[rng.integers(0, total, 10), :] = 1.0
    curves = np.array([0.0, 0.3, 0.75, 1.0])
    times = {"attack_ms": 4.0, "decay_ms": 25.0, "sustain": 0.4, "release_ms": 18.0}
    st = fresh_env(lanes)
    out, = drive(adsr_curve_kernel, n_blocks, lanes, st, [gate, trig],
                 [times["attack_ms"], times["decay_ms"], times["sustain"],
                  times["release_ms"], curves, hard], segments=(0, 17, 40))
    for v in range(lanes):
        k = curves[v] * K_MAX
        ref = naive.envelope(gate[:, v], trig[:, v], SR, **times, k_att=k, k_dec=k, k_rel=k,
                             hard=bool(hard))
        assert np.max(np.abs(out[:, v] - ref)) < 1e-9


@pytest.mark.parametrize("hard", [0.0, 1.0], ids=["from-current", "from-zero"])
def test_adsr_curve_on_engine_rows_runs_steady_segments_that_match_the_reference(hard):
    """On the engine's rows (gate changes at block starts, triggers on their first sample)
    most segments are steady: one recursion per lane (``_env_steady_segment``), which must
    stop short of every landing; every curve from straight to 80 dB, stages from under a
    block to many blocks long."""
    lanes, n_blocks = 4, 300
    total = n_blocks * BLOCK
    gate = np.repeat(pulses(total, lanes, np.random.default_rng(8))[::BLOCK], BLOCK, axis=0)
    trig = np.zeros((total, lanes))
    starts = np.nonzero(np.diff(gate[:, 1]) > 0)[0][::2] + 1
    trig[starts, 1] = 1.0  # retriggers on a held gate too
    curves = np.array([0.0, 0.3, 0.75, 1.0])
    for times in ({"attack_ms": 0.9, "decay_ms": 2.0, "sustain": 0.5, "release_ms": 1.1},
                  {"attack_ms": 13.0, "decay_ms": 47.0, "sustain": 0.3, "release_ms": 35.0}):
        st = fresh_env(lanes)
        out, = drive(adsr_curve_kernel, n_blocks, lanes, st, [gate, trig],
                     [times["attack_ms"], times["decay_ms"], times["sustain"],
                      times["release_ms"], curves, hard], io_inputs=[ROW_GATE, ROW_TRIGGER])
        for v in range(lanes):
            k = curves[v] * K_MAX
            ref = naive.envelope(gate[:, v], trig[:, v], SR, **times, k_att=k, k_dec=k,
                                 k_rel=k, hard=bool(hard))
            assert np.max(np.abs(out[:, v] - ref)) < 1e-9
            assert np.all(out[ref == 0.0, v] == 0.0)  # landed on silence to the sample


def test_ar_matches_reference_on_engine_rows_and_patched_gate():
    lanes, n_blocks = 3, 120
    total = n_blocks * BLOCK
    gate = pulses(total, lanes, np.random.default_rng(4))
    trig = np.zeros((total, lanes))
    for io_inputs in (None, [ROW_GATE, ROW_TRIGGER]):
        # On the engine's rows the gate may only change at a segment start: use block starts.
        g = gate if io_inputs is None else np.repeat(gate[::BLOCK], BLOCK, axis=0)
        st = fresh_env(lanes)
        out, = drive(ar_kernel, n_blocks, lanes, st, [g, trig], [3.0, 12.0],
                     io_inputs=io_inputs)
        for v in range(lanes):
            ref = naive.envelope(g[:, v], trig[:, v], SR, 3.0, 0.0, 1.0, 12.0, 0.0, 0.0,
                                 AR_RELEASE_K)
            assert np.max(np.abs(out[:, v] - ref)) < 1e-9


@pytest.mark.parametrize("curve", [0.0, 0.5, 1.0])
def test_adsr_curve_stages_follow_the_closed_form_and_land_to_the_sample(curve):
    """Attack from 0 is (1 - e^(-k x)) / (1 - e^(-k)); every stage lands after ceil(N)."""
    ms = {"attack_ms": 10.01, "decay_ms": 30.0, "sustain": 0.25, "release_ms": 41.3}
    total = 200 * BLOCK
    gate = np.zeros((total, 1))
    off = 100 * BLOCK
    gate[:off] = 1.0
    trig = np.zeros((total, 1))
    trig[0] = 1.0
    st = fresh_env(1)
    out, = drive(adsr_curve_kernel, 200, 1, st, [gate, trig],
                 [ms["attack_ms"], ms["decay_ms"], ms["sustain"], ms["release_ms"], curve, 0.0],
                 io_inputs=[ROW_GATE, ROW_TRIGGER])
    y = out[:, 0]
    k = curve * K_MAX
    n_att = ms["attack_ms"] * SR / 1000
    x = (np.arange(int(n_att)) + 1) / n_att
    shape = x if k == 0 else (1 - np.exp(-k * x)) / (1 - np.exp(-k))
    assert np.max(np.abs(y[:len(x)] - shape)) < 1e-9
    att_end = np.argmax(y >= 1.0)
    assert att_end + 1 == math.ceil(n_att)
    dec_end = np.argmax((y == ms["sustain"]) & (np.arange(total) > att_end))
    assert dec_end - att_end == math.ceil(ms["decay_ms"] * SR / 1000)
    rel_end = off + np.argmax(y[off:] == 0.0)
    assert rel_end - off + 1 == math.ceil(ms["release_ms"] * SR / 1000)


@pytest.mark.parametrize("exponential", [0.0, 1.0], ids=["linear", "exponential"])
def test_slew_matches_reference(exponential):
    lanes, n_blocks = 2, 60
    total = n_blocks * BLOCK
    rng = np.random.default_rng(5)
    x = np.repeat(rng.uniform(-1, 1, (total // 300 + 1, lanes)), 300, axis=0)[:total]
    st = np.zeros((SLEW_STATE, lanes))
    for v in range(lanes):
        slew_reset(st[:, v])
    times = np.array([2.0, 7.5])
    out, = drive(slew_kernel, n_blocks, lanes, st, [x], [times, exponential],
                 segments=(0, 21))
    for v in range(lanes):
        ref = naive.slew(x[:, v], SR, times[v], exponential)
        assert np.max(np.abs(out[:, v] - ref)) < 1e-9


def test_pan_and_width_match_references():
    lanes, n_blocks = 2, 20
    total = n_blocks * BLOCK
    rng = np.random.default_rng(6)
    x = rng.standard_normal((total, lanes))
    pan = np.stack([np.linspace(-1, 1, total), np.full(total, 0.3)], axis=1)
    mod = np.stack([np.zeros(total), 0.9 * np.sin(np.arange(total) * 0.3)], axis=1)
    left, right = drive(pan_kernel, n_blocks, lanes, np.zeros((1, lanes)), [x, mod], [pan],
                        n_out=2, segments=(0, 30))
    w = np.stack([np.full(total, 0.0), np.linspace(0, 2, total)], axis=1)
    wl, wr = drive(width_kernel, n_blocks, lanes, np.zeros((1, lanes)), [x, x[::-1]], [w],
                   n_out=2)
    for v in range(lanes):
        ref_l, ref_r = naive.pan(x[:, v], pan[:, v] + mod[:, v])
        assert np.max(np.abs(left[:, v] - ref_l)) < 1e-10
        assert np.max(np.abs(right[:, v] - ref_r)) < 1e-10
        ref_l, ref_r = naive.width(x[:, v], x[::-1, v], w[:, v])
        assert np.max(np.abs(wl[:, v] - ref_l)) < 1e-12
        assert np.max(np.abs(wr[:, v] - ref_r)) < 1e-12


# ---- LFO through the engine -----------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.5, 7.3, 45.0])
def test_lfo_frequency_by_zero_crossings_and_fft(rate):
    seconds = 6.0
    y = play(lfo_preset(f"rate_hz = {rate}\ndepth = 0.5"), int(seconds * SR),
             [note_on(0, 60)])[:, 0]
    z = rising_zero_crossings(y[1:]) + 1  # sample 0 is the first zero
    f_zc = SR * (len(z) - 1) / (z[-1] - z[0])
    assert abs(f_zc / rate - 1) < 1e-5  # the issue asks 0.1%; measured ~1e-12
    if rate > 5:
        assert abs(fft_pitch(y, SR, fmin=1.0, fmax=100.0) / rate - 1) < 1e-5


@pytest.mark.parametrize("shape", range(5), ids=["sine", "triangle", "saw", "square", "sh"])
def test_lfo_shapes_through_engine_match_reference(shape):
    n = 24000
    text = lfo_preset(f"shape = {shape}\nrate_hz = 9\ndepth = 0.5\nmode = 1\nphase_deg = 30")
    y = play(text, n, [note_on(0, 64)])[:, 0]
    ref = naive.lfo(n, SR, shape, 9.0, 0.5, 1, 30.0, 0, [1.0] + [0.0] * (n - 1),
                    seed=lfo_seed(0, 64.0, 0.0))
    diff = np.abs(y - np.array(ref))
    assert np.mean(diff > 1e-6) < 1e-3  # float32 output; a step may land a sample apart
    assert np.median(diff) < 1e-7


def test_lfo_unipolar_spans_zero_to_depth():
    y = play(lfo_preset("shape = 1\nrate_hz = 5\ndepth = 0.8\nunipolar = 1"), 48000,
             [note_on(0, 60)])[:, 0]
    assert abs(y.min()) < 1e-4 and abs(y.max() - 0.8) < 1e-4


@pytest.mark.parametrize("mode", [0, 1], ids=["free", "retrigger"])
def test_lfo_retrigger_restarts_the_phase_and_free_runs_on(mode):
    """Mono: a second key retriggers the voice. Retrigger mode restarts the cycle at
    phase_deg (a sine at 90 degrees starts at +depth); free mode carries on."""
    rate, d = 3.0, 10_007
    text = lfo_preset(f"rate_hz = {rate}\ndepth = 0.5\nmode = {mode}\nphase_deg = 90", "mono", 1)
    y = play(text, 30_000, [note_on(0, 60), note_on(d, 62)])[:, 0]
    n = np.arange(30_000)
    free = 0.5 * np.sin(2 * np.pi * rate * n / SR + np.pi / 2)
    restarted = 0.5 * np.sin(2 * np.pi * rate * (n - d) / SR + np.pi / 2)
    assert np.max(np.abs(y[:d] - free[:d])) < 1e-6
    expect = restarted if mode == 1 else free
    assert np.max(np.abs(y[d:] - expect[d:])) < 1e-6
    assert abs(y[d] - 0.5) < 1e-6 if mode == 1 else abs(y[d] - 0.5) > 0.1


def test_lfo_free_voices_share_one_phase():
    """A voice starting later joins the phase of the one already running: the sum is twice
    one voice's LFO; retriggered, the second voice starts its own cycle."""
    d = 7777
    events = [note_on(0, 60), note_on(d, 67)]
    one = play(lfo_preset("rate_hz = 4\ndepth = 0.3"), 20_000, [note_on(0, 60)])[:, 0]
    both = play(lfo_preset("rate_hz = 4\ndepth = 0.3"), 20_000, events)[:, 0]
    assert np.max(np.abs(both[d:] - 2 * one[d:])) < 1e-6
    retrig = play(lfo_preset("rate_hz = 4\ndepth = 0.3\nmode = 1"), 20_000, events)[:, 0]
    assert np.max(np.abs(retrig[d:] - 2 * one[d:])) > 0.1


def test_sample_and_hold_steps_at_the_rate_with_fresh_values():
    rate = 50.0
    y = play(lfo_preset(f"shape = 4\nrate_hz = {rate}\ndepth = 0.9"), int(10 * SR),
             [note_on(0, 60)])[:, 0]
    steps = np.nonzero(np.diff(y) != 0.0)[0] + 1
    assert np.all(np.abs(np.diff(steps) - SR / rate) <= 1)
    held = y[np.concatenate([[0], steps])]
    assert len(held) == pytest.approx(10 * rate, abs=1)
    assert np.all(np.abs(held) <= 0.9)
    assert abs(held.mean()) < 0.1 and abs(held.std() - 0.9 / math.sqrt(3)) < 0.05
    again = play(lfo_preset(f"shape = 4\nrate_hz = {rate}\ndepth = 0.9"), int(10 * SR),
                 [note_on(0, 60)])[:, 0]
    assert np.array_equal(y, again)  # deterministic


def test_lfo_in_the_global_graph_runs_free():
    glob = """
[global]
connect = ["voices.left -> main.left", "voices.right -> main.right", "glfo.out -> main.in"]
[global.nodes.voices]
type = "voices"
[global.nodes.glfo]
type = "lfo"
rate_hz = 5
depth = 0.4
mode = 1
[global.nodes.main]
type = "output"
"""
    nodes = '[voice.nodes.osc]\ntype = "sine"\nlevel = 0.0\n'
    text = preset(nodes, ["osc.out -> out.in"], global_graph=glob)
    y = play(text, 48000, [note_on(1000, 60), note_on(20000, 64), note_off(30000, 60)])
    n = np.arange(48000)
    assert np.max(np.abs(y[:, 0] - 0.4 * np.sin(2 * np.pi * 5 * n / SR))) < 1e-6
    assert np.array_equal(y[:, 0], y[:, 1])


# ---- envelopes through the engine -----------------------------------------------------------

def env_preset(env_type: str, params: str, mode="poly", keep_alive=False) -> str:
    """env -> gain (-6 dB) -> out. ``keep_alive`` puts the velocity (through another -6 dB) on
    the right channel, so the voice never falls silent and is not freed before its envelope
    lands (the engine frees a released voice once it stays below -100 dBFS)."""
    nodes = (f'[voice.nodes.env]\ntype = "{env_type}"\n{params}\n'
             f'[voice.nodes.g]\ntype = "gain"\ngain_db = {GAIN_DB}\n')
    connect = ["env.out -> g.in", "g.out -> out.in"]
    if keep_alive:
        nodes += (f'[voice.nodes.ctl]\ntype = "controls"\n'
                  f'[voice.nodes.g2]\ntype = "gain"\ngain_db = {GAIN_DB}\n')
        connect = ["env.out -> g.in", "g.out -> out.left", "ctl.velocity -> g2.in",
                   "g2.out -> out.right"]
    return preset(nodes, connect, mode)


def first(cond, start=0):
    idx = np.nonzero(cond[start:])[0]
    return start + int(idx[0]) if len(idx) else -1


def level(value: float) -> float:
    """What the engine's float32 output holds for envelope level ``value``."""
    return float(np.float32(value * G))


@pytest.mark.parametrize("sr", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("curve", [0.0, 0.5, 1.0])
def test_adsr_curve_stage_times_within_a_millisecond(curve, sr):
    """Stage ends found where the output first equals the stage's goal level exactly."""
    att, dec, sus, rel = 50.0, 120.0, 0.6, 200.0
    text = env_preset("adsr_curve", f"attack_ms = {att}\ndecay_ms = {dec}\nsustain = {sus}\n"
                                    f"release_ms = {rel}\ncurve = {curve}", keep_alive=True)
    off = int(0.5 * sr)
    y = play(text, int(0.9 * sr), [note_on(0, 60), note_off(off, 60)], sr)[:, 0]
    a_end = first(y == level(1.0))
    d_end = first(y == level(sus), a_end)
    r_end = first(y == 0.0, off)
    measured = {"attack": (a_end + 1) / sr, "decay": (d_end - a_end) / sr,
                "release": (r_end - off + 1) / sr}
    for name, declared in (("attack", att), ("decay", dec), ("release", rel)):
        assert abs(measured[name] * 1000 - declared) < 1.0, (name, measured[name])
        assert abs(measured[name] * sr - declared * sr / 1000) <= 1, (name, measured[name])


@pytest.mark.parametrize("retrigger", [0, 1], ids=["from-current", "from-zero"])
def test_adsr_curve_retrigger_from_current_or_from_zero(retrigger):
    """Mono: a second key retriggers the held voice; the attack starts at the sustain level
    (from current) or at 0 (from zero)."""
    d = 20_000
    text = env_preset("adsr_curve", f"attack_ms = 100\ndecay_ms = 50\nsustain = 0.5\n"
                                    f"curve = 0\nretrigger = {retrigger}", "mono")
    y = play(text, 30_000, [note_on(0, 60), note_on(d, 62)])[:, 0] / G
    assert abs(y[d - 1] - 0.5) < 1e-6
    step = 1.0 / (0.1 * SR)
    start = 0.0 if retrigger else 0.5
    assert abs(y[d] - (start + step)) < 1e-6
    assert abs(y[d + 1000] - (start + 1001 * step)) < 1e-5


def test_adsr_curve_legato_carries_on_without_a_new_attack():
    d = 20_000
    text = env_preset("adsr_curve", "attack_ms = 100\ndecay_ms = 50\nsustain = 0.5\n"
                                    "retrigger = 1", "legato")
    y = play(text, 30_000, [note_on(0, 60), note_on(d, 62)])[:, 0] / G
    assert np.max(np.abs(y[d - 100:] - 0.5)) < 1e-6


def test_ar_times_and_hold():
    att, rel = 20.0, 150.0
    off = 24_000
    y = play(env_preset("ar", f"attack_ms = {att}\nrelease_ms = {rel}", keep_alive=True), 40_000,
             [note_on(0, 60), note_off(off, 60)])[:, 0] / G
    a_end = first(y >= 1.0 - 1e-6)
    assert a_end + 1 == math.ceil(att * SR / 1000)
    assert np.allclose(y[:a_end + 1], (np.arange(a_end + 1) + 1) / (att * SR / 1000), atol=1e-6)
    assert np.max(np.abs(y[a_end:off] - 1.0)) < 1e-6
    r_end = first(y == 0.0, off)
    assert abs((r_end - off + 1) - rel * SR / 1000) <= 1


# ---- stereo and slew through the engine ------------------------------------------------------

def pan_preset(pan: float, mod: str = "") -> str:
    nodes = (f'[voice.nodes.osc]\ntype = "sine"\nlevel = 0.5\n'
             f'[voice.nodes.p]\ntype = "pan"\npan = {pan}\n')
    connect = ["osc.out -> p.in", "p.left -> out.left", "p.right -> out.right"]
    if mod:
        nodes += mod
        connect.append("m.out -> p.mod")
    return preset(nodes, connect)


def _db(a, b):
    return 20 * math.log10(math.sqrt(np.mean(a ** 2)) / math.sqrt(np.mean(b ** 2)))


def test_pan_law():
    ref = play(preset('[voice.nodes.osc]\ntype = "sine"\nlevel = 0.5\n', ["osc.out -> out.in"]),
               9600, [note_on(0, 69)])[:, 0]
    centre = play(pan_preset(0.0), 9600, [note_on(0, 69)])
    assert abs(_db(centre[:, 0], ref) + 3.0103) < 0.005
    assert abs(_db(centre[:, 1], ref) + 3.0103) < 0.005
    for pos, loud, quiet in ((-1.0, 0, 1), (1.0, 1, 0)):
        y = play(pan_preset(pos), 9600, [note_on(0, 69)])
        assert abs(_db(y[:, loud], ref)) < 0.005
        assert np.max(np.abs(y[:, quiet])) < 1e-7
    half = play(pan_preset(0.5), 9600, [note_on(0, 69)])
    assert abs(_db(half[:, 1], ref) - 20 * math.log10(math.sin(3 * math.pi / 8))) < 0.005
    assert abs(_db(half[:, 0], ref) - 20 * math.log10(math.cos(3 * math.pi / 8))) < 0.005


def test_pan_at_audio_rate_keeps_constant_power():
    """A sine an octave above the note sweeps pan left-right per sample: left**2 + right**2
    still equals the unpanned signal squared, and the balance moves at the modulator's rate."""
    mod = '[voice.nodes.m]\ntype = "sine"\ntranspose_st = 12\nlevel = 1.0\n'
    y = play(pan_preset(0.0, mod), 9600, [note_on(0, 69)])
    ref = play(preset('[voice.nodes.osc]\ntype = "sine"\nlevel = 0.5\n', ["osc.out -> out.in"]),
               9600, [note_on(0, 69)])[:, 0]
    assert np.max(np.abs(y[:, 0] ** 2 + y[:, 1] ** 2 - ref ** 2)) < 1e-6
    loud = np.abs(ref) > 0.1
    balance = np.arctan2(np.abs(y[loud, 1]), np.abs(y[loud, 0]))  # theta = (p + 1) pi / 4
    assert balance.min() < 0.05 and balance.max() > math.pi / 2 - 0.05


@pytest.mark.parametrize("width", [0.0, 1.0, 2.0])
def test_width_scales_side_energy_and_keeps_mid(width):
    voice = ('[voice.nodes.osc]\ntype = "sine"\nlevel = 0.4\n'
             '[voice.nodes.p]\ntype = "pan"\npan = 0.6\n')
    connect = ["osc.out -> p.in", "p.left -> out.left", "p.right -> out.right"]
    glob = f"""
[global]
connect = ["voices.left -> w.left", "voices.right -> w.right", "w.out_left -> main.left",
           "w.out_right -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.w]
type = "width"
width = {width}
[global.nodes.main]
type = "output"
"""
    dry = play(preset(voice, connect), 9600, [note_on(0, 57)])
    wet = play(preset(voice, connect, global_graph=glob), 9600, [note_on(0, 57)])
    mid_d, side_d = dry.sum(1) / 2, (dry[:, 0] - dry[:, 1]) / 2
    mid_w, side_w = wet.sum(1) / 2, (wet[:, 0] - wet[:, 1]) / 2
    assert np.sum(mid_w ** 2) == pytest.approx(np.sum(mid_d ** 2), rel=1e-5)
    assert np.sum(side_w ** 2) == pytest.approx(width ** 2 * np.sum(side_d ** 2), rel=1e-5,
                                                abs=1e-9)


@pytest.mark.parametrize("mode", [0, 1], ids=["linear", "exponential"])
def test_slew_times(mode):
    """A square LFO (+-0.5) slewed: linear moves 1.0 in time_ms; exponential reaches 63.2%
    of the step after time_ms."""
    nodes = ('[voice.nodes.lfo]\ntype = "lfo"\nshape = 3\nrate_hz = 2\ndepth = 0.5\nmode = 1\n'
             f'[voice.nodes.s]\ntype = "slew"\ntime_ms = 10\nmode = {mode}\n')
    y = play(preset(nodes, ["lfo.out -> s.in", "s.out -> out.in"]), 24000,
             [note_on(0, 60)])[:, 0]
    edge = first(y < 0.5)  # the square falls from +0.5 to -0.5 half a cycle in
    assert abs(edge - 12000) <= 1
    n = int(10e-3 * SR)
    if mode == 0:
        assert abs(first(y <= -0.5 + 1e-7, edge) - edge + 1 - n) <= 1
        assert abs(y[edge + n // 2 - 1] - 0.0) < 1e-3
    else:
        assert abs((0.5 - y[edge + n - 1]) - (1 - math.exp(-1))) < 1e-4


# ---- idle voices end ------------------------------------------------------------------------

def test_released_envelope_reaches_idle_and_exact_zero():
    st = fresh_env(1)
    total = 40 * BLOCK
    gate = np.zeros((total, 1))
    gate[:1000] = 1.0
    trig = np.zeros((total, 1))
    trig[0] = 1.0
    out, = drive(adsr_curve_kernel, 40, 1, st, [gate, trig], [1.0, 5.0, 0.5, 10.0, 1.0, 0.0])
    assert out[-1, 0] == 0.0 and st[E_STAGE, 0] == IDLE and st[E_LEVEL, 0] == 0.0
