"""Oscillator shapes and noise, measured: each kernel against its slow reference (naive_osc.py)
through the kernel contract (lanes side by side, blocks split into segments); alias levels by
FFT; pitch by FFT through the real engine at 44.1, 48 and 96 kHz; PWM, hard sync, sub phase
lock, unison power, FM sidebands against Bessel functions, noise spectra.

Alias level: 1 s, Blackman-Harris window; every bin within 6 bins of a harmonic k * f0 below
Nyquist (or DC) is signal, the strongest peak anywhere else is the alias, in dB re the
strongest harmonic (the fundamental for the plain shapes). Exactly 2000 Hz at 48 kHz cannot
be measured that way: 48000 / 2000 = 24, so every alias lands on a harmonic. The tests use
fundamentals around 2 kHz whose aliases fall between harmonics (B6 1975.5 Hz, 2017 Hz, C7
2093 Hz) and periodic patches (PWM, sync) whose period is a multiple of 1 / f0.
"""

import math

import numpy as np
import pytest
from scipy.signal import get_window, welch
from scipy.special import jv

import naive_osc as ref
from kernel_rig import segment_bounds
from helpers import (
    RATES, cents, compile_toml, fft_pitch, make_engine, note_on, render, rms, simple_toml,
)
from instrument.modules.kernel_args import kernel_args
from instrument.kernels import minblep as k
from instrument.kernels import noise as nz
from instrument.kernels.approx import sin_2pi
from instrument.kernels.osc_basic import saw_fast_kernel
from instrument.kernels.osc_saw import saw_minblep_kernel
from instrument.layout import (
    CTX_NOTE, CTX_PITCH_STEADY, CTX_SAMPLE_RATE, CTX_WIDTH, N_RESERVED_ROWS, ROW_PITCH, ROW_SINK,
)
from instrument.modules.noise import Noise
from instrument.modules.osc_basic import Sine
from instrument.modules.osc_pulse import Pulse, Sub, Triangle
from instrument.modules.osc_saw import Saw, SyncSaw
from instrument.modules.osc_stack import Fm2, Unison
from instrument.modules.registry import Registry, check_module, default_registry

SR = 48000
BLOCK = 64
MODULES = (Saw, Pulse, Triangle, SyncSaw, Sub, Unison, Fm2, Noise)
NEAR_2K = (1975.53, 2017.0, 2093.0)


# ---- driving a kernel directly --------------------------------------------------------------

def drive(cls, n, inputs=(), lanes=1, sr=SR, block=BLOCK, segments=(0, BLOCK), notes=None,
          state_log=None, **params):
    """Run ``cls.kernel`` over ``n`` samples (whole blocks), each block split at
    ``segments``. ``inputs``: one value per input port, a number or an array (n,) or
    (n, lanes); ``params`` by name, likewise (defaults from the declarations). Returns
    (outputs, n, lanes). ``state_log(block, st)`` sees the state after each block."""
    n_in, n_out = len(cls.inputs), len(cls.outputs)
    n_blocks = -(-n // block)
    total = n_blocks * block

    def signal(value):
        a = np.asarray(value, dtype=np.float64)
        if a.ndim == 1:
            a = np.concatenate([a, np.full(total - len(a), a[-1])])[:, None]
        elif a.ndim == 2:
            a = np.concatenate([a, np.repeat(a[-1:], total - len(a), axis=0)])
        return np.broadcast_to(a, (total, lanes))

    ins = [signal(v) for v in inputs]
    ps = [signal(params.get(spec.name, spec.default)) for spec in cls.params]
    bufs, io, P, pr, st, ctx = kernel_args(cls, n_in + n_out, lanes, sample_rate=sr,
                                           block=block)
    if notes is not None:
        ctx[CTX_NOTE] = notes
    out = np.zeros((n_out, total, lanes))
    for b in range(n_blocks):
        sl = slice(b * block, (b + 1) * block)
        for j, a in enumerate(ins):
            bufs[io[j]] = a[sl]
        for j, a in enumerate(ps):
            P[j] = a[sl]
        for s0, s1 in segment_bounds(segments, block):
            cls.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
        out[:, sl] = bufs[io[n_in:]]
        if state_log is not None:
            state_log(b, st)
    return out[:, :n]


def alias_db(x, sr, f0):
    """Strongest component off the harmonic grid k * f0 (k >= 1, below Nyquist), in dB re
    the strongest on it; 1 s Blackman-Harris, 6 bins either side of each harmonic and of DC
    count as the harmonic."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    mag = np.abs(np.fft.rfft(x * get_window("blackmanharris", len(x), fftbins=False)))
    bin_hz = sr / len(x)
    signal = np.zeros(len(mag), dtype=bool)
    signal[:7] = True
    for f in np.arange(f0, sr / 2, f0):
        c = round(f / bin_hz)
        signal[max(c - 6, 0):c + 7] = True
    return 20.0 * math.log10(mag[~signal].max() / mag[signal].max())


# ---- the minBLEP tables ---------------------------------------------------------------------

def _kernel_impulse():
    """The band-limiting kernel at OVERSAMPLE points per sample (the step table's slope)."""
    step = np.concatenate([k.STEP_TABLE[:k.OVERSAMPLE, j] for j in range(k.N_TAPS)] + [[0.0]])
    return np.diff(step) + 0.0, step


def test_step_residual_starts_at_minus_one_and_ends_at_zero():
    assert k.STEP_TABLE[0, 0] == -1.0
    assert k.STEP_TABLE[k.OVERSAMPLE, k.N_TAPS - 1] == 0.0
    assert k.RAMP_TABLE[k.OVERSAMPLE, k.N_TAPS - 1] == 0.0
    assert abs(k.RAMP_TABLE[0, 0] - k.STEP_DELAY) < 1e-15
    assert np.abs(k.STEP_TABLE[:, -1]).max() < 1e-3  # the tail is down to -60 dB


def test_kernel_is_flat_to_18_khz_and_its_delay_is_its_centroid():
    h, _ = _kernel_impulse()
    os_ = k.OVERSAMPLE
    t = np.arange(len(h)) / os_

    def gain_db(f):  # f in units of the sample rate
        return 20 * math.log10(abs(np.sum(h * np.exp(-2j * math.pi * f * t))) / abs(h.sum()))

    assert -1.0 < gain_db(0.375) < -0.5  # 18 kHz at 48 kHz
    assert abs(gain_db(0.3)) < 0.05
    assert gain_db(0.5) < -60.0
    centroid = float(np.sum(t * h) / h.sum())
    assert abs(centroid - k.STEP_DELAY) < 0.02  # grid vs trapezoid integration


def test_step_overshoots_by_a_fifth_of_the_jump_so_saw_and_square_peak_near_1_4():
    assert 0.19 < k.STEP_TABLE.max() < 0.22
    for cls in (Saw, Pulse):
        peak = np.abs(drive(cls, SR // 4, [100.0], level=1.0)[0]).max()
        assert 1.3 < peak < 1.45, cls.type_name


def test_kernel_is_minimum_phase_its_energy_comes_first():
    """Of all kernels with one magnitude response, the minimum-phase one has the most energy
    in its first n samples for every n; here against the linear-phase prototype."""
    h, _ = _kernel_impulse()
    n = len(h)
    tt = (np.arange(n + 1) - n / 2) / k.OVERSAMPLE
    proto = np.sinc(2 * k.CUTOFF * tt) * np.kaiser(n + 1, k.BETA)
    e_min = np.cumsum(h ** 2) / np.sum(h ** 2)
    e_lin = np.cumsum(proto ** 2) / np.sum(proto ** 2)
    assert np.all(e_min[::k.OVERSAMPLE] >= e_lin[:n:k.OVERSAMPLE] - 1e-9)
    assert k.STEP_DELAY < 0.25 * k.N_TAPS


def test_sin_2pi_is_within_1e_11_of_sin():
    x = np.linspace(-20.0, 20.0, 400001)
    got = np.array([sin_2pi.py_func(v) for v in x[::97]])
    assert np.max(np.abs(got - np.sin(2 * np.pi * x[::97]))) < 1e-11


# ---- kernels against their references -------------------------------------------------------

REF_N = 40 * BLOCK
REF_LANES = 3
REF_FREQS = np.array([110.0, 1234.5, 5000.0])
SEGMENTS = (0, 5, 33)


def _compare(out, refs, tol=1e-9):
    for v, r in enumerate(refs):
        assert np.max(np.abs(out[:, v] - np.asarray(r))) < tol, v


def _freqs():
    return np.broadcast_to(REF_FREQS, (REF_N, REF_LANES))


def test_saw_and_its_sync_output_match_reference():
    out = drive(Saw, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0)
    _compare(out[0], [ref.saw([f] * REF_N, SR) for f in REF_FREQS])
    _compare(out[1], [ref.saw_sync_output([f] * REF_N, SR) for f in REF_FREQS])


def test_pulse_with_audio_rate_pwm_matches_reference():
    width = 0.5 + 0.44 * np.sin(2 * np.pi * 300.0 * np.arange(REF_N) / SR)
    out = drive(Pulse, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0,
                width=width)
    refs = [ref.pulse([f] * REF_N, width, SR) for f in REF_FREQS]
    _compare(out[0], [r[0] for r in refs])
    _compare(out[1], [r[1] for r in refs])


def test_pulse_with_width_jumping_inside_blocks_matches_reference():
    rng = np.random.default_rng(5)
    width = np.repeat(rng.uniform(0.0, 1.0, REF_N // 16), 16)  # clamped to 0.05..0.95
    out = drive(Pulse, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0,
                width=width)
    _compare(out[0], [ref.pulse([f] * REF_N, width, SR)[0] for f in REF_FREQS])


def test_triangle_matches_reference():
    out = drive(Triangle, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0)
    _compare(out[0], [ref.triangle([f] * REF_N, SR) for f in REF_FREQS])


@pytest.mark.parametrize("octave", [0, 1])
@pytest.mark.parametrize("shape", [0, 1])
def test_sub_matches_reference(octave, shape):
    out = drive(Sub, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0,
                octave=octave, shape=shape)
    _compare(out[0], [ref.sub([f] * REF_N, SR, octave, shape) for f in REF_FREQS])


def test_sync_saw_matches_reference_with_a_master_at_another_pitch():
    master = np.array(ref.saw_sync_output([220.0] * REF_N, SR))
    gate = np.zeros(REF_N)
    gate[700:1500] = 1.0  # a gate as sync: one restart at its rising edge
    for sync in (master, gate):
        out = drive(SyncSaw, REF_N, [_freqs(), sync], REF_LANES, segments=SEGMENTS,
                    level=1.0, ratio=2.37)
        _compare(out[0], [ref.saw([f] * REF_N, SR, ratio=2.37, sync=sync) for f in REF_FREQS])


@pytest.mark.parametrize("voices,stereo", [(1, 0.0), (5, 0.7), (7, 1.0)])
def test_unison_matches_the_sum_of_reference_saws(voices, stereo):
    n = 16 * BLOCK
    f = np.broadcast_to(REF_FREQS, (n, REF_LANES))
    out = drive(Unison, n, [f], REF_LANES, segments=SEGMENTS, level=1.0, voices=voices,
                spread_cents=20.0, stereo=stereo)
    refs = [ref.unison([fv] * n, SR, voices, 20.0, stereo) for fv in REF_FREQS]
    _compare(out[0], [r[0] for r in refs], 1e-7)  # detune through exp_approx: 1e-10 relative
    _compare(out[1], [r[1] for r in refs], 1e-7)


def test_fm2_matches_reference_with_index_modulated_at_audio_rate():
    index = 2.0 + 1.5 * np.sin(2 * np.pi * 97.0 * np.arange(REF_N) / SR)
    out = drive(Fm2, REF_N, [_freqs()], REF_LANES, segments=SEGMENTS, level=1.0, ratio=1.5,
                index=index, feedback=0.8)
    _compare(out[0], [ref.fm2([f] * REF_N, SR, 1.5, index, 0.8) for f in REF_FREQS], 1e-8)


@pytest.mark.parametrize("color", [0, 1])
def test_noise_matches_reference_per_lane(color):
    out = drive(Noise, REF_N, (), REF_LANES, segments=SEGMENTS, notes=[60.0, 60.0, 72.0],
                color=color, level=1.0, seed=3)
    refs = [ref.noise_white(REF_N, v, note, 3) for v, note in enumerate((60, 60, 72))]
    if color:
        refs = [ref.pink_filter(r, SR) for r in refs]
    _compare(out[0], refs, 1e-12)


# ---- alias levels ---------------------------------------------------------------------------

def _alias(cls, f0, **params):
    return alias_db(drive(cls, SR, [f0], level=0.5, **params)[0, :, 0], SR, f0)


@pytest.mark.parametrize("f0", NEAR_2K)
def test_saw_aliases_stay_below_minus_80_db_near_2_khz(f0):
    assert _alias(Saw, f0) < -80.0


@pytest.mark.parametrize("f0", NEAR_2K)
def test_square_aliases_stay_below_minus_80_db_near_2_khz(f0):
    assert _alias(Pulse, f0, width=0.5) < -80.0


@pytest.mark.parametrize("f0", NEAR_2K)
def test_narrow_pulse_aliases_stay_below_minus_75_db_near_2_khz(f0):
    assert _alias(Pulse, f0, width=0.1) < -75.0


@pytest.mark.parametrize("f0", NEAR_2K)
def test_triangle_aliases_stay_below_minus_85_db_near_2_khz(f0):
    assert _alias(Triangle, f0) < -85.0


@pytest.mark.parametrize("f0", NEAR_2K)
def test_polyblep_saw_aliases_are_about_30_db_down_for_comparison(f0):
    """``saw_fast`` (2-point PolyBLEP), measured the same way: the figure ``saw``
    replaces (its strongest alias is the first harmonic folded back from above Nyquist)."""
    n = SR
    bufs = np.zeros((N_RESERVED_ROWS + 2, n, 1))
    io = np.array([N_RESERVED_ROWS, N_RESERVED_ROWS + 1])
    bufs[io[0]] = f0
    P = np.zeros((3, n, 1))
    P[2] = 0.5
    st = np.zeros((3, 1))
    ctx = np.zeros((CTX_WIDTH, 1))
    ctx[CTX_SAMPLE_RATE] = SR
    saw_fast_kernel(bufs, io, P, np.arange(3), st, ctx, 0, n, 1)
    assert -35.0 < alias_db(bufs[io[1], :, 0], SR, f0) < -25.0


def test_square_with_fast_pwm_has_no_aliases_above_minus_70_db():
    """f0 1760 Hz, width 0.5 +- 0.4 at 440 Hz: the output repeats every 1/440 s, so every
    component off the 440 Hz grid is an alias (or a click)."""
    t = np.arange(SR) / SR
    width = 0.5 + 0.4 * np.sin(2 * np.pi * 440.0 * t)
    out = drive(Pulse, SR, [1760.0], level=0.5, width=width)[0, :, 0]
    assert alias_db(out, SR, 440.0) < -70.0


@pytest.mark.parametrize("f_master", [220.0, 1046.5])
def test_hard_sync_has_no_aliases_above_minus_70_db(f_master):
    """A slave at 2.37 times a master saw, restarted by the master's sync output: periodic at
    the master's frequency, so components off its harmonics are aliases."""
    sync = drive(Saw, SR, [f_master])[1]
    out = drive(SyncSaw, SR, [f_master, sync], level=0.5, ratio=2.37)[0, :, 0]
    assert alias_db(out, SR, f_master) < -70.0


# ---- behaviour ------------------------------------------------------------------------------

def test_sync_output_marks_each_wrap_with_its_sub_sample_position():
    f0 = 1234.5
    sync = drive(Saw, SR, [f0])[1, :, 0]
    marks = np.nonzero(sync)[0]
    assert len(marks) == int(SR * f0 / SR)
    exact = np.arange(1, len(marks) + 1) * SR / f0 - 1.0  # wrap times (phase starts at dt)
    assert np.max(np.abs((marks - (1.0 - sync[marks])) - exact)) < 1e-6


def test_pulse_has_no_dc_at_any_width():
    for width in (0.1, 0.3, 0.5, 0.9):
        out = drive(Pulse, SR, [440.0], level=1.0, width=width)[0, :, 0]
        assert abs(out.mean()) < 1e-3, width


def test_sub_stays_phase_locked_to_an_oscillator_at_the_pitch_through_a_glide():
    n = SR // 2
    pitch = 200.0 * 2 ** (2 * np.arange(n) / n)  # two octaves up in 0.5 s
    saw_phase, sub_phase = [], []
    drive(Saw, n, [pitch], state_log=lambda b, st: saw_phase.append(st[0, 0]))
    drive(Sub, n, [pitch], state_log=lambda b, st: sub_phase.append(st[0, 0]))
    diff = (2 * np.array(sub_phase) - np.array(saw_phase)) % 1.0
    assert np.max(np.minimum(diff, 1.0 - diff)) < 1e-9


def test_unison_rms_does_not_depend_on_the_voice_count():
    """Detuned saws beat; over 4 s with 50 cents of spread the beats average out (over 1 s
    with 25 cents they still swing +-0.4 dB)."""
    levels = {}
    for voices in (1, 2, 3, 5, 7):
        out = drive(Unison, 4 * SR, [220.0], level=0.5, voices=voices, spread_cents=50.0)
        levels[voices] = 20 * math.log10(rms(out[0, :, 0]))
    assert max(levels.values()) - min(levels.values()) < 0.25, levels


def test_unison_stereo_spreads_the_stack_with_equal_power():
    mono = drive(Unison, 4 * SR, [220.0], level=0.5, voices=7, spread_cents=50.0)
    wide = drive(Unison, 4 * SR, [220.0], level=0.5, voices=7, spread_cents=50.0, stereo=1.0)
    assert np.array_equal(mono[0], mono[1])
    assert rms(wide[0, :, 0] - wide[1, :, 0]) > 0.3 * rms(wide[0, :, 0])
    p_mono = np.mean(mono[0] ** 2)
    p_wide = 0.5 * (np.mean(wide[0] ** 2) + np.mean(wide[1] ** 2))
    assert abs(10 * math.log10(p_wide / p_mono)) < 0.25


def test_fm2_sidebands_follow_bessel_functions():
    """ratio 3: carrier f and modulator 3f give lines at |1 + 3n| f with amplitudes
    |J_n(index)|: f: J0, 2f: J1, 4f: J1, 5f: J2, 7f: J2."""
    f0, beta = 500.0, 1.7
    out = drive(Fm2, SR, [f0], level=1.0, ratio=3.0, index=beta)[0, :, 0]
    w = get_window("blackmanharris", SR, fftbins=False)
    mag = np.abs(np.fft.rfft(out * w)) / w.sum() * 2
    for harmonic, order in ((1, 0), (2, 1), (4, 1), (5, 2), (7, 2)):
        got = mag[int(harmonic * f0)]
        assert abs(20 * math.log10(got / abs(jv(order, beta)))) < 0.05, harmonic


def test_fm2_feedback_adds_harmonics_to_the_modulator():
    plain = drive(Fm2, SR // 4, [220.0], level=1.0, ratio=1.0, index=1.0)[0, :, 0]
    fed = drive(Fm2, SR // 4, [220.0], level=1.0, ratio=1.0, index=1.0, feedback=1.2)[0, :, 0]
    centroid = [np.sum(np.arange(len(s)) * s) / s.sum()
                for s in (np.abs(np.fft.rfft(x * np.hanning(len(x)))) for x in (plain, fed))]
    assert centroid[1] > 1.3 * centroid[0]


def test_fm2_with_index_0_is_a_pure_sine():
    out = drive(Fm2, SR, [440.0], level=1.0, index=0.0)[0, :, 0]
    t = np.arange(SR) / SR
    assert np.max(np.abs(out - np.sin(2 * np.pi * 440.0 * t))) < 1e-9


# ---- noise ----------------------------------------------------------------------------------

def _noise(color, n=SR, lanes=1, sr=SR, level=1.0, seed=0):
    return drive(Noise, n, (), lanes, sr=sr, color=color, level=level, seed=seed)[0]


def test_white_noise_is_uniform_within_level_and_flat():
    x = _noise(0, 4 * SR, level=0.8)[:, 0]
    assert np.abs(x).max() <= 0.8
    assert abs(rms(x) / (0.8 / math.sqrt(3)) - 1.0) < 0.01
    assert abs(x.mean()) < 0.005
    f, psd = welch(x, SR, nperseg=4096)
    bands = [psd[(f >= lo) & (f < 2 * lo)].mean() for lo in 100 * 2.0 ** np.arange(7)]
    db = 10 * np.log10(bands)
    assert db.max() - db.min() < 0.5


def test_noise_is_deterministic_and_uncorrelated_between_voices():
    a = _noise(0, lanes=4)
    b = _noise(0, lanes=4)
    assert np.array_equal(a, b)
    c = np.corrcoef(a.T)
    assert np.max(np.abs(c - np.eye(4))) < 0.02
    other = _noise(0, lanes=4, seed=1)
    assert np.max(np.abs(np.corrcoef(a[:, 0], other[:, 0])[0, 1])) < 0.02


@pytest.mark.parametrize("sample_rate", [32000, 44100, 48000, 96000, 192000])
def test_pink_filter_is_within_0_4_db_of_minus_3_db_per_octave(sample_rate):
    p, g, d = nz.pink_coefficients(sample_rate)
    f = np.geomspace(100.0, 10000.0, 300)
    z = np.exp(-2j * np.pi * f / sample_rate)
    h = d + sum(gk / (1 - pk * z) for pk, gk in zip(p, g))
    dev = 20 * np.log10(np.abs(h)) + 10 * np.log10(2) * np.log2(f / 1000.0)
    assert dev.max() - dev.min() < 0.8  # +-0.4 dB around its middle


@pytest.mark.parametrize("sample_rate", RATES)
def test_pink_noise_spectrum_is_minus_3_db_per_octave_within_1_db(sample_rate):
    x = _noise(1, 12 * sample_rate, sr=sample_rate)[:, 0]
    f, psd = welch(x, sample_rate, nperseg=1 << 15)
    centers = 100.0 * 2 ** (np.arange(0, 20) / 3)  # third octaves, 100 Hz .. 10 kHz
    db = np.array([10 * np.log10(psd[(f >= c * 2 ** -(1 / 6)) & (f < c * 2 ** (1 / 6))].mean())
                   for c in centers])
    dev = db + 10 * np.log10(2) * np.log2(centers / 1000.0)
    dev -= 0.5 * (dev.max() + dev.min())
    assert np.abs(dev).max() < 1.0, np.round(dev, 2)


def test_pink_noise_has_the_rms_of_white_noise():
    white = rms(_noise(0, 8 * SR)[:, 0])
    pink = rms(_noise(1, 8 * SR)[SR:, 0])  # past the lowest section's start-up
    assert abs(20 * math.log10(pink / white)) < 0.5


# ---- through the engine ---------------------------------------------------------------------

_registry = None


def osc_registry() -> Registry:
    """The built-in modules plus these (one fused renderer for the session)."""
    global _registry
    if _registry is None:
        modules = dict(default_registry().modules)
        modules.update({cls.type_name: cls for cls in MODULES})
        _registry = Registry(modules=modules)
    return _registry


def _plan(text, sample_rate=SR):
    return compile_toml(text, sample_rate, BLOCK, registry=osc_registry())


def _toml(osc, params="", port="out"):
    text = simple_toml(osc, osc_params=f"level = 0.3\n{params}")
    return text.replace('"osc.out -> amp.in"', f'"osc.{port} -> amp.in"')


PITCHED = [
    ("saw", "", 69, "out"),
    ("pulse", "width = 0.3", 69, "out"),
    ("triangle", "", 69, "out"),
    ("sync_saw", "ratio = 1.0", 69, "out"),
    ("sub", "", 81, "out"),
    ("sub", "octave = 1\nshape = 1", 93, "out"),
    ("unison", "voices = 1", 69, "left"),
    ("unison", "voices = 3\nspread_cents = 0", 69, "left"),
    ("fm2", "index = 0", 69, "out"),
    ("fm2", "index = 1.5\nratio = 2", 69, "out"),
]


@pytest.mark.parametrize("module", MODULES, ids=lambda c: c.type_name)
def test_module_passes_registry_validation(module):
    assert check_module(module) == ""


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("osc,params,note,port", PITCHED)
def test_a4_is_440_hz_within_a_tenth_of_a_cent(osc, params, note, port, sample_rate):
    engine = make_engine(_plan(_toml(osc, params, port), sample_rate))
    out = render(engine, int(1.2 * sample_rate), [note_on(0, note)])
    a = int(0.1 * sample_rate)
    f = fft_pitch(out[a:a + sample_rate, 0], sample_rate, fmin=300.0, fmax=600.0)
    assert abs(cents(f, 440.0)) < 0.1, f


def test_engine_saw_near_2_khz_aliases_below_minus_80_db():
    engine = make_engine(_plan(_toml("saw")))
    out = render(engine, int(1.2 * SR), [note_on(0, 95)])
    assert alias_db(out[int(0.1 * SR):int(1.1 * SR), 0], SR, 440.0 * 2 ** (26 / 12)) < -80.0


def test_engine_pwm_from_a_sine_patched_into_width_stays_clean():
    """880 Hz, width 0.5 +- 0.36 at 55 Hz from a sine node. The engine's parameter
    modulation is exact every 8 samples and linear between (a 220 Hz sine arrives there with
    errors near -50 dB, which the pulse then faithfully plays); at 55 Hz it measures -87 dB."""
    text = _toml("pulse").replace(
        '"osc.out -> amp.in"', '"osc.out -> amp.in", "lfo.out -> osc.width * 0.4"'
    ) + '[voice.nodes.lfo]\ntype = "sine"\ntranspose_st = -48\nlevel = 1.0\n'
    engine = make_engine(_plan(text))
    out = render(engine, int(1.2 * SR), [note_on(0, 81)])
    assert alias_db(out[int(0.1 * SR):int(1.1 * SR), 0], SR, 55.0) < -75.0


def test_engine_hard_sync_from_a_pulse_master():
    text = _toml("sync_saw", "ratio = 2.37").replace(
        '"osc.out -> amp.in"', '"osc.out -> amp.in", "mst.sync -> osc.sync"'
    ) + '[voice.nodes.mst]\ntype = "pulse"\n'
    engine = make_engine(_plan(text))
    out = render(engine, int(1.2 * SR), [note_on(0, 84)])
    f0 = 440.0 * 2 ** (15 / 12)
    x = out[int(0.1 * SR):int(1.1 * SR), 0]
    assert alias_db(x, SR, f0) < -70.0
    assert abs(cents(fft_pitch(x, SR, fmin=f0 / 2, fmax=1.5 * f0), f0)) < 0.1


@pytest.mark.parametrize("osc,port", [("saw", "out"), ("pulse", "out"), ("triangle", "out"),
                                      ("sync_saw", "out"), ("sub", "out"), ("unison", "right"),
                                      ("fm2", "out"), ("noise", "out")])
def test_chord_through_the_engine_is_finite_audible_and_repeatable(osc, port):
    events = [note_on(i * 100, n) for i, n in enumerate((48, 55, 60, 64, 67, 72))]
    outs = [render(make_engine(_plan(_toml(osc, port=port))), SR // 2, events)
            for _ in range(2)]
    assert np.all(np.isfinite(outs[0]))
    assert rms(outs[0][:, 0]) > 0.05
    assert np.array_equal(outs[0], outs[1])


def test_unread_outputs_go_to_the_sink_row_and_cost_nothing():
    """saw with neither output read returns at once (both are bound to the sink row)."""
    bufs = np.zeros((N_RESERVED_ROWS + 1, BLOCK, 1))
    bufs[ROW_SINK] = 7.0
    io = np.array([N_RESERVED_ROWS, ROW_SINK, ROW_SINK])
    P = np.zeros((3, BLOCK, 1))
    st = np.zeros((Saw.prepare(SR, BLOCK), 1))
    ctx = np.zeros((CTX_WIDTH, 1))
    ctx[CTX_SAMPLE_RATE] = SR
    saw_minblep_kernel(bufs, io, P, np.arange(3), st, ctx, 0, BLOCK, 1)
    assert np.all(bufs[ROW_SINK] == 7.0) and np.all(st == 0.0)


@pytest.mark.parametrize("module", [c for c in MODULES if c.inputs], ids=lambda c: c.type_name)
def test_a_non_finite_pitch_is_survived_and_forgotten(module):
    """NaN and inf pitch for a few samples: nothing reads outside its tables (a NaN table
    index would), and two blocks later the output is finite again (the engine resets a plan
    whose output stays non-finite, but a kernel must not need that)."""
    n = 12 * BLOCK
    pitch = np.full(n, 440.0)
    pitch[3 * BLOCK + 7:3 * BLOCK + 12] = np.nan
    pitch[4 * BLOCK + 20] = np.inf
    inputs = [pitch] + [np.zeros(n)] * (len(module.inputs) - 1)
    out = drive(module, n, inputs, 2)
    assert np.all(np.isfinite(out[:, 7 * BLOCK:]))
    assert np.all(np.isfinite(out[:, :3 * BLOCK]))


@pytest.mark.parametrize("module", [Saw, Pulse], ids=lambda c: c.type_name)
def test_unread_sync_output_changes_nothing_else(module):
    """With ``sync`` bound to the sink row the kernel skips it; ``out`` is the same."""
    n = 8 * BLOCK
    full = drive(module, n, [1234.5])[0]
    bufs = np.zeros((N_RESERVED_ROWS + 2, BLOCK, 1))
    io = np.array([N_RESERVED_ROWS, N_RESERVED_ROWS + 1, ROW_SINK])
    bufs[io[0]] = 1234.5
    P = np.zeros((len(module.params), BLOCK, 1))
    for j, spec in enumerate(module.params):
        P[j] = spec.default
    column = np.zeros(module.prepare(SR, BLOCK))
    module.reset_state(column, SR)
    st = column[:, None].copy()
    ctx = np.zeros((CTX_WIDTH, 1))
    ctx[CTX_SAMPLE_RATE] = SR
    out = []
    for _ in range(n // BLOCK):
        module.kernel(bufs, io, P, np.arange(len(module.params)), st, ctx, 0, BLOCK, 1)
        out.append(bufs[io[1]].copy())
    assert np.array_equal(np.concatenate(out), full)


def test_more_discontinuities_per_block_than_event_slots_match_reference():
    """512-sample blocks at 3-7 kHz: dozens of wraps per voice per block, so each voice's
    event list fills and is emptied several times within one segment."""
    block, n = 512, 4 * 512
    f = np.broadcast_to(np.array([3000.0, 7100.0]), (n, 2))
    saw = drive(Saw, n, [f], 2, block=block, segments=(0, 300), level=1.0)
    _compare(saw[0], [ref.saw([fv] * n, SR) for fv in (3000.0, 7100.0)])
    master = np.array(ref.saw_sync_output([2900.0] * n, SR))
    synced = drive(SyncSaw, n, [f, master], 2, block=block, level=1.0, ratio=1.7)
    _compare(synced[0], [ref.saw([fv] * n, SR, ratio=1.7, sync=master) for fv in (3000.0, 7100.0)])
    uni = drive(Unison, n, [f], 2, block=block, level=1.0, voices=3, spread_cents=30.0,
                stereo=0.5)
    refs = [ref.unison([fv] * n, SR, 3, 30.0, 0.5) for fv in (3000.0, 7100.0)]
    _compare(uni[0], [r[0] for r in refs], 1e-7)
    _compare(uni[1], [r[1] for r in refs], 1e-7)


def test_saw_at_a_steady_pitch_matches_its_general_path():
    """With the engine's pitch row flagged steady (``CTX_PITCH_STEADY``) the saw computes its
    phase as last + k x increment instead of summing it sample by sample: the same output
    within 1e-9, sync output included, for pitches from 30 Hz to 9 kHz (several wraps per
    segment), in uneven segments, with detune moving in some blocks (then the general path)."""
    lanes = 4
    pitch_hz = np.array([30.0, 440.0, 2093.0, 9000.0])
    outs = []
    for steady in (0.0, 1.0):
        bufs, io, P, pr, st, ctx = kernel_args(Saw, 3, lanes, sample_rate=SR, block=BLOCK)
        io[0] = ROW_PITCH
        bufs[ROW_PITCH] = pitch_hz
        ctx[CTX_PITCH_STEADY] = steady
        detune = [spec.name for spec in Saw.params].index("detune_cents")
        got = []
        for b in range(200):
            P[detune] = 5.0 if b < 100 else 5.0 + np.linspace(0, 3, BLOCK)[:, None] * (b < 110)
            for s0, s1 in ((0, 17), (17, 18), (18, BLOCK)):
                Saw.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
            got.append(bufs[io[1:]].copy())
        outs.append(np.concatenate(got, axis=1))
    assert np.abs(outs[0][1]).max() > 0.1  # sync pulses were written
    assert np.max(np.abs(outs[1] - outs[0])) < 1e-9


def test_saw_steady_wraps_are_the_bisections_wraps_to_the_bit():
    """At a steady increment the saw places its wraps from (j - start) / increment, checked
    against the phase expression, with no phase row (``osc_saw._steady_wraps``): the same
    residuals in the correction rows and the same sync output, bit for bit, as the
    bisection on the written phase row, from the slowest increment to the fastest, with
    starts just below a wrap and segments of 1 to 64 samples."""
    from instrument.kernels import osc_saw as S

    rng = np.random.default_rng(3)
    lanes = 16
    for s0, s1 in ((0, 64), (5, 6), (17, 64), (0, 1), (3, 40)):
        rows = S.SAW_FIXED + 2 * (BLOCK + k.N_TAPS)
        st = np.zeros((rows, lanes))
        st[S._S_LAST] = np.concatenate([rng.random(12), [1.0 - 1e-16, 0.0, 0.999999, 0.5]])
        st[S._S_DT] = np.concatenate([rng.uniform(1e-4, 0.5, 12), [k.MAX_INC, k.MIN_INC,
                                                                    1e-6, 0.5 - 1e-17]])
        st[S._S_PREV] = st[S._S_LAST]
        phase = np.zeros((BLOCK, lanes))
        for i in range(s0, s1):
            phase[i] = S._steady_phase(st[S._S_LAST], st[S._S_DT], i - s0 + 1.0)
        expected_st, got_st = st.copy(), st.copy()
        expected_st[S._S_LAST] = phase[s1 - 1]  # where pass A leaves it for the bisection
        expected_sync, got_sync = np.zeros((BLOCK, lanes)), np.zeros((BLOCK, lanes))
        S._wrap_residuals(phase, expected_sync, True, expected_st, s0, s1, lanes)
        S._steady_wraps(got_sync, True, got_st, s0, s1, lanes)
        ev = slice(S.SAW_EVENTS, rows)  # events and corrections (the phase rows move on apart)
        assert np.array_equal(got_st[ev], expected_st[ev])
        assert np.array_equal(got_sync, expected_sync)
        assert np.count_nonzero(got_sync) > 0


def test_sine_at_a_steady_pitch_matches_its_general_path():
    """The sine's steady-pitch phase (start + k x increment, ``steady_pitch``) gives its
    general path's output within 1e-9, over 200 blocks in uneven segments."""
    lanes = 3
    outs = []
    for steady in (0.0, 1.0):
        bufs, io, P, pr, st, ctx = kernel_args(Sine, 2, lanes, sample_rate=SR, block=BLOCK)
        io[0] = ROW_PITCH
        bufs[ROW_PITCH] = np.array([20.0, 440.0, 15000.0])
        ctx[CTX_PITCH_STEADY] = steady
        got = []
        for _ in range(200):
            for s0, s1 in ((0, 5), (5, BLOCK)):
                Sine.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
            got.append(bufs[io[1]].copy())
        outs.append(np.concatenate(got))
    assert np.abs(outs[0]).max() > 0.4
    assert np.max(np.abs(outs[1] - outs[0])) < 1e-9
