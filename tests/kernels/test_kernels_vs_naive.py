"""Each kernel against its slow reference (tests/naive.py), driven through the real kernel
contract (rows, lanes, segments) with several voices side by side."""

import numpy as np
import pytest

import naive
from instrument.kernels.envelopes import ADSR_STATE, adsr_kernel
from instrument.kernels.osc_basic import STATE_SIZE as OSC_STATE
from instrument.kernels.osc_basic import saw_fast_kernel
from instrument.kernels.svf import svf_lowpass_kernel
from instrument.layout import (
    CTX_SAMPLE_RATE, CTX_WIDTH, N_RESERVED_ROWS, ROW_GATE, ROW_ONE, ROW_TRIGGER,
)
from instrument.modules.svf import SvfLowpass

SR = 48000.0
BLOCK = 64


def _run(kernel, n_blocks, lanes, state_rows, inputs, params, segments=(0, BLOCK), reset=None):
    """Drive ``kernel`` over ``n_blocks``; ``inputs[k](block)`` -> (BLOCK, lanes) per input row,
    ``params[k](block)`` -> (BLOCK, lanes). Returns the output row, (n_blocks*BLOCK, lanes)."""
    n_in = len(inputs)
    bufs = np.zeros((N_RESERVED_ROWS + n_in + 1, BLOCK, lanes))
    bufs[ROW_ONE] = 1.0
    io = np.array(list(range(N_RESERVED_ROWS, N_RESERVED_ROWS + n_in)) + [N_RESERVED_ROWS + n_in])
    P = np.zeros((max(len(params), 1), BLOCK, lanes))
    pr = np.arange(max(len(params), 1))
    st = np.zeros((state_rows, lanes))
    if reset is not None:
        col = np.zeros(state_rows)
        reset(col, SR)
        st[:] = col[:, None]
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = SR
    out = []
    for b in range(n_blocks):
        for k, f in enumerate(inputs):
            bufs[io[k]] = f(b)
        for k, f in enumerate(params):
            P[k] = f(b)
        bounds = list(segments) if segments[-1] == BLOCK else list(segments) + [BLOCK]
        for s0, s1 in zip(bounds, bounds[1:]):
            kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
        out.append(bufs[io[-1]].copy())
    return np.concatenate(out)


def test_adsr_matches_reference_with_patched_gate_and_segments():
    lanes = 3
    n_blocks = 120
    rng = np.random.default_rng(1)
    total = n_blocks * BLOCK
    gate = np.zeros((total, lanes))
    for v in range(lanes):  # each voice: gate pulses of random lengths
        t = 0
        while t < total:
            on = rng.integers(200, 2500)
            off = rng.integers(100, 2000)
            gate[t:t + on, v] = 1.0
            t += on + off
    trig = np.zeros((total, lanes))
    trig[rng.integers(0, total, 6), 1] = 1.0
    times = dict(attack_ms=3.0, decay_ms=20.0, sustain=0.4, release_ms=15.0)
    out = _run(adsr_kernel, n_blocks, lanes, ADSR_STATE,
               [lambda b: gate[b * BLOCK:(b + 1) * BLOCK], lambda b: trig[b * BLOCK:(b + 1) * BLOCK]],
               [lambda b, v=v: np.full((BLOCK, lanes), v) for v in times.values()],
               segments=(0, 17, 40))
    for v in range(lanes):
        ref = naive.adsr(gate[:, v], trig[:, v], sample_rate=SR, **times)
        assert np.max(np.abs(out[:, v] - ref)) < 1e-9


def test_adsr_fast_path_for_engine_gate_matches_reference():
    """Unpatched gate/trigger rows change only at a segment start; the kernel's fast path."""
    lanes = 2
    n_blocks = 80
    total = n_blocks * BLOCK
    gate = np.zeros((total, lanes))
    gate[0:1500, 0] = 1.0
    gate[640:3000, 1] = 1.0
    gate[3200:4000, 1] = 1.0
    trig = np.zeros((total, lanes))
    trig[0, 0] = trig[640, 1] = trig[3200, 1] = 1.0
    times = dict(attack_ms=2.0, decay_ms=10.0, sustain=0.6, release_ms=8.0)
    bufs = np.zeros((N_RESERVED_ROWS + 1, BLOCK, lanes))
    io = np.array([ROW_GATE, ROW_TRIGGER, N_RESERVED_ROWS])
    P = np.zeros((4, BLOCK, lanes))
    for k, value in enumerate(times.values()):
        P[k] = value
    st = np.zeros((ADSR_STATE, lanes))
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = SR
    out = np.zeros((total, lanes))
    # Segments split where the gate changes, as the engine splits blocks at events.
    edges = sorted({0, 640, 1500, 3000, 3200, 4000} | set(range(0, total + 1, BLOCK)))
    for s, e in zip(edges, edges[1:]):
        s0, s1 = s % BLOCK, (e - 1) % BLOCK + 1
        bufs[ROW_GATE, s0:s1] = gate[s:e]
        bufs[ROW_TRIGGER, s0:s1] = trig[s:e]
        adsr_kernel(bufs, io, P, np.arange(4), st, ctx, s0, s1, lanes)
        out[s:e] = bufs[N_RESERVED_ROWS, s0:s1]
    for v in range(lanes):
        ref = naive.adsr(gate[:, v], trig[:, v], sample_rate=SR, **times)
        assert np.max(np.abs(out[:, v] - ref)) < 1e-9


@pytest.mark.parametrize("resonance", [0.0, 0.3, 0.9])
def test_svf_matches_exact_reference_at_steady_cutoff(resonance):
    lanes = 2
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40 * BLOCK, lanes))
    cutoffs = np.array([300.0, 5000.0])
    out = _run(svf_lowpass_kernel, 40, lanes, SvfLowpass.prepare(SR, BLOCK),
               [lambda b: x[b * BLOCK:(b + 1) * BLOCK]],
               [lambda b: np.broadcast_to(cutoffs, (BLOCK, lanes)),
                lambda b: np.full((BLOCK, lanes), resonance)],
               reset=SvfLowpass.reset_state)
    for v in range(lanes):
        ref = naive.svf_lowpass(x[:, v], [cutoffs[v]] * len(x), [resonance] * len(x), SR)
        assert np.max(np.abs(out[:, v] - ref)) < 1e-6 * max(1.0, np.abs(ref).max())


def test_svf_with_swept_cutoff_stays_within_a_hair_of_exact_reference():
    """Coefficients interpolated over 8 samples: a 2-octave sweep in 0.2 s deviates from the
    per-sample exact filter by less than -80 dB of the signal."""
    lanes = 1
    n = 150 * BLOCK
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * 220 * t)[:, None] + 0.3 * np.sin(2 * np.pi * 1700 * t)[:, None]
    cutoff = 400.0 * 2 ** (2 * np.minimum(t / 0.2, 1.0))
    out = _run(svf_lowpass_kernel, 150, lanes, SvfLowpass.prepare(SR, BLOCK),
               [lambda b: x[b * BLOCK:(b + 1) * BLOCK]],
               [lambda b: cutoff[b * BLOCK:(b + 1) * BLOCK, None],
                lambda b: np.full((BLOCK, 1), 0.3)],
               reset=SvfLowpass.reset_state)
    ref = np.array(naive.svf_lowpass(x[:, 0], cutoff, [0.3] * n, SR))
    err_db = 20 * np.log10(np.sqrt(np.mean((out[:, 0] - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)))
    assert err_db < -80


def test_saw_matches_reference_across_lanes_and_segments():
    lanes = 3
    freqs = np.array([110.0, 1000.0, 5000.0])
    out = _run(saw_fast_kernel, 30, lanes, OSC_STATE,
               [lambda b: np.broadcast_to(freqs, (BLOCK, lanes))],
               [lambda b: np.zeros((BLOCK, lanes)), lambda b: np.zeros((BLOCK, lanes)),
                lambda b: np.ones((BLOCK, lanes))],
               segments=(0, 5, 33))
    for v in range(lanes):
        ref = naive.saw([freqs[v]] * len(out), SR)
        assert np.max(np.abs(out[:, v] - ref)) < 1e-9


def test_svf_follows_a_resonance_ramp_that_ends_steady():
    """Resonance ramps 0.9 -> 0.1 in one block, then holds 0.1: the damping must stay at the
    ramp's end (it once fell back to the ramp's start)."""
    lanes = 1
    n_blocks = 30
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n_blocks * BLOCK, lanes))
    res = np.full(n_blocks * BLOCK, 0.9)
    res[2 * BLOCK:3 * BLOCK] = np.linspace(0.9, 0.1, BLOCK)
    res[3 * BLOCK:] = 0.1
    out = _run(svf_lowpass_kernel, n_blocks, lanes, SvfLowpass.prepare(SR, BLOCK),
               [lambda b: x[b * BLOCK:(b + 1) * BLOCK]],
               [lambda b: np.full((BLOCK, 1), 800.0), lambda b: res[b * BLOCK:(b + 1) * BLOCK, None]],
               reset=SvfLowpass.reset_state)
    ref = np.array(naive.svf_lowpass(x[:, 0], [800.0] * len(x), res, SR))
    assert np.max(np.abs(out[5 * BLOCK:, 0] - ref[5 * BLOCK:])) < 1e-3
