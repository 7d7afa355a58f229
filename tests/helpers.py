"""Shared helpers for the engine tests: compile a preset from TOML text, render events offline
through the real ``Engine``, and measure the result (FFT pitch, zero-crossing frequency, RMS,
spectral centroid).

Also two test-only modules (``blowup``: an unstable one-pole; ``ramp_gain``: a gain with LINEAR
smoothing, which no built-in module declares) and ``test_registry()`` that offers them next to
the built-ins. Their kernels live here because the fused renderer imports each kernel by module
and name; keep edits to this file rare, each one recompiles that renderer (~30 s).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
from numba import njit
from scipy.signal import get_window

from instrument.bench import calls_made_by
from instrument.engine.engine import Engine
from instrument.engine.events import (
    CC, EVENT_WIDTH, NOTE_OFF, NOTE_ON, PARAM, PITCH_BEND,
)
from instrument.graph.compile import compile_preset
from instrument.graph.plan import Plan
from instrument.modules.base import Module, Port
from instrument.modules.registry import Registry, default_registry
from instrument.params import ParamSpec
from instrument.params.smoothing import Smoothing
from instrument.presets import parse_preset

RATES = (44100, 48000, 96000)


# ---- presets and plans ----------------------------------------------------------------------

def compile_toml(text: str, sample_rate: float = 48000, block_size: int = 64,
                 registry: Registry | None = None) -> Plan:
    """Parse and compile a preset given as TOML text."""
    return compile_preset(parse_preset(text, "<test>"), registry or default_registry(),
                          sample_rate, block_size)


def make_engine(plan: Plan, **kwargs) -> Engine:
    engine = Engine(plan.sample_rate, plan.block_size, **kwargs)
    engine.load(plan)
    return engine


def simple_toml(osc: str = "sine", *, polyphony: int = 8, mode: str = "poly",
                steal: str = "oldest", glide_ms: float = 0.0, bend_range_st: float = 2.0,
                osc_params: str = "level = 0.5", env: str | None = None,
                vca: str = "gain = 1.0\nvelocity_amount = 0.0", global_graph: str = "",
                extra: str = "") -> str:
    """One oscillator -> vca -> output. ``env`` (ADSR parameter lines) adds an envelope on
    the vca's cv; without it the cv reads one, so a held note has a constant level."""
    connect = ['"osc.out -> amp.in"', '"amp.out -> out.in"']
    env_table = ""
    if env is not None:
        connect.append('"env.out -> amp.cv"')
        env_table = f"[voice.nodes.env]\ntype = \"adsr\"\n{env}\n"
    return f"""
format = 1
name = "test"
[voice]
polyphony = {polyphony}
mode = "{mode}"
steal = "{steal}"
glide_ms = {glide_ms}
bend_range_st = {bend_range_st}
connect = [{", ".join(connect)}]
[voice.nodes.osc]
type = "{osc}"
{osc_params}
{env_table}
[voice.nodes.amp]
type = "vca"
{vca}
[voice.nodes.out]
type = "output"
{global_graph}
{extra}
"""


def chain_toml(n_nodes: int, polyphony: int = 8) -> str:
    """saw -> (n_nodes - 2) alternating vca/gain nodes -> output: ``n_nodes`` voice nodes."""
    assert n_nodes >= 3
    names = ["osc"] + [f"n{i}" for i in range(n_nodes - 2)] + ["out"]
    connect = ", ".join(f'"{a}.out -> {b}.in"' for a, b in zip(names, names[1:]))
    tables = ['[voice.nodes.osc]\ntype = "saw"\nlevel = 0.1']
    for i in range(n_nodes - 2):
        if i % 2 == 0:
            tables.append(f'[voice.nodes.n{i}]\ntype = "vca"\ngain = 1.0')
        else:
            tables.append(f'[voice.nodes.n{i}]\ntype = "gain"\ngain_db = 0.0')
    tables.append('[voice.nodes.out]\ntype = "output"')
    body = "\n".join(tables)
    return (f'format = 1\nname = "chain{n_nodes}"\n[voice]\npolyphony = {polyphony}\n'
            f'connect = [{connect}]\n{body}\n')


# ---- events and rendering -------------------------------------------------------------------

def note_on(frame: int, note: float, velocity: float = 1.0, channel: int = 0):
    return (frame, NOTE_ON, channel, note, velocity)


def note_off(frame: int, note: float, velocity: float = 0.0, channel: int = 0):
    return (frame, NOTE_OFF, channel, note, velocity)


def param(frame: int, index: int, norm: float):
    return (frame, PARAM, 0, index, norm)


def cc(frame: int, number: int, value: float, channel: int = 0):
    return (frame, CC, channel, number, value)


def bend(frame: int, amount: float, channel: int = 0):
    return (frame, PITCH_BEND, channel, amount, 0.0)


def render(engine: Engine, n_frames: int, events: Iterable = (),
           on_block: Callable[[int, Engine], None] | None = None) -> np.ndarray:
    """Render ``n_frames`` (rounded up to whole blocks) through ``engine.process_block``.

    ``events`` are rows (absolute frame, kind, channel, a, b); each block gets its slice with
    offsets made block-relative. ``on_block(block_index, engine)`` runs before each block (the
    control side: swaps, set_param). Returns float32 (frames, 2).
    """
    block = engine.block_size
    n_blocks = -(-int(n_frames) // block)
    ev = np.array(list(events), dtype=np.float64).reshape(-1, EVENT_WIDTH)
    ev = ev[np.argsort(ev[:, 0], kind="stable")]
    starts = np.searchsorted(ev[:, 0], np.arange(n_blocks + 1) * block, side="left")
    out = np.zeros((n_blocks * block, 2), dtype=np.float32)
    scratch = np.zeros((max(len(ev), 1), EVENT_WIDTH))
    for b in range(n_blocks):
        if on_block is not None:
            on_block(b, engine)
        lo, hi = starts[b], starts[b + 1]
        n = hi - lo
        scratch[:n] = ev[lo:hi]
        scratch[:n, 0] -= b * block
        engine.process_block(scratch, n, out[b * block:(b + 1) * block])
    return out


# ---- measurements ---------------------------------------------------------------------------

def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def rms(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x)))


def fft_pitch(x: np.ndarray, sample_rate: float, fmin: float = 20.0, fmax: float = 20000.0,
              pad: int = 8) -> float:
    """Frequency of the strongest spectral peak in [fmin, fmax]: Blackman-Harris window,
    ``pad``-times zero padding, parabolic interpolation on the log magnitude (bias far below
    0.01 cent for a steady tone of a second)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    w = get_window("blackmanharris", n, fftbins=False)
    nfft = 1 << int(math.ceil(math.log2(n * pad)))
    mag = np.abs(np.fft.rfft(x * w, nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    band = np.nonzero((freqs >= fmin) & (freqs <= fmax))[0]
    k = band[np.argmax(mag[band])]
    a, b, c = np.log(mag[k - 1:k + 2] + 1e-300)
    delta = 0.5 * (a - c) / (a - 2.0 * b + c)
    return float((k + delta) * sample_rate / nfft)


def rising_zero_crossings(x: np.ndarray) -> np.ndarray:
    """Fractional sample positions of the rising zero crossings (linear interpolation)."""
    x = np.asarray(x, dtype=np.float64)
    i = np.nonzero((x[:-1] < 0.0) & (x[1:] >= 0.0))[0]
    return i + (-x[i]) / (x[i + 1] - x[i])


def zero_crossing_freqs(x: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(times in samples, frequencies in Hz): one per period between rising zero crossings,
    placed at the period's middle. Meant for a sine."""
    z = rising_zero_crossings(x)
    return 0.5 * (z[1:] + z[:-1]), sample_rate / np.diff(z)


def spectral_centroid(x: np.ndarray, sample_rate: float) -> float:
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    return float((freqs * mag).sum() / mag.sum())


def count_python_calls(engine: Engine, events: np.ndarray, n_events: int, out: np.ndarray,
                       blocks: int = 50) -> float:
    """Python-level and C-level calls per ``process_block``, the method itself included, the
    way ``instrument bench`` counts them, with the given events."""
    return calls_made_by(lambda: engine.process_block(events, n_events, out), blocks)


# ---- test-only modules ----------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def blowup_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """y = x + growth * y_prev: stable below growth 1, blows up to inf/NaN above it; at growth
    4 (the maximum) the state turns NaN at once, as a division by zero would make it."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    growth = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            y = x[i, v] + growth[i, v] * st[0, v]
            if growth[i, v] >= 4.0:
                y = math.nan
            st[0, v] = y
            out[i, v] = y


class Blowup(Module):
    """A deliberately unstable one-pole (test only): with ``growth`` 2 the output doubles every
    sample and overflows to inf (then NaN) within a few hundred samples; growth 4 is NaN at
    once."""

    type_name = "blowup"
    label = "Blow-up"
    doc = "Unstable one-pole for tests."
    scope = "any"
    params = (ParamSpec("growth", "Growth", "", 0.0, 4.0, 0.0, smoothing_ms=0.0,
                        doc="Feedback factor; above 1 the output grows without bound."),)
    inputs = (Port("in"),)
    outputs = ("out",)
    state_size = 1
    kernel = blowup_kernel


@njit(cache=True, error_model="numpy")
def ramp_gain_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """out = in * gain (per sample, so the parameter's smoothing shows in the output)."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    gain = P[pr[0]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = x[i, v] * gain[i, v]


class RampGain(Module):
    """Linear gain whose parameter uses LINEAR smoothing over 50 ms (test only)."""

    type_name = "ramp_gain"
    label = "Ramp gain"
    doc = "Linear gain with a linear-ramp smoothed parameter, for tests."
    scope = "any"
    params = (ParamSpec("gain", "Gain", "", 0.0, 1.0, 1.0, smoothing=Smoothing.LINEAR,
                        smoothing_ms=50.0, doc="Linear gain."),)
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = ramp_gain_kernel


_test_registry: Registry | None = None


def test_registry() -> Registry:
    """The built-in modules plus ``blowup`` and ``ramp_gain`` (one fused renderer, built once)."""
    global _test_registry
    if _test_registry is None:
        modules = dict(default_registry().modules)
        modules["blowup"] = Blowup
        modules["ramp_gain"] = RampGain
        _test_registry = Registry(modules=modules)
    return _test_registry


test_registry.__test__ = False  # not a test function, whatever pytest's name rules say


# A preset whose one voice blows up (the test registry's ``blowup`` module, growth from
# velocity): the engine's non-finite guard and the callbacks' recovery are tested on it.
ONE_VOICE_BLOWS = """
format = 1
[voice]
polyphony = 4
connect = ["osc.out -> boom.in", "ctl.velocity -> boom.growth * 0.5", "boom.out -> amp.in",
           "amp.out -> out.in"]
[voice.nodes.ctl]
type = "controls"
[voice.nodes.osc]
type = "sine"
level = 0.05
[voice.nodes.boom]
type = "blowup"
growth = 0.5
[voice.nodes.amp]
type = "vca"
gain = 1
velocity_amount = 0
[voice.nodes.out]
type = "output"
"""
QUIET_VELOCITY = 0.1  # stays stable in ONE_VOICE_BLOWS
