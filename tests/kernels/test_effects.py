"""Global effects (delay, chorus, reverb, drive, EQ): each kernel against its slow reference
(tests/naive_effects.py), the measurable claims of the docstrings, denormal-free tails, and the
modules through the real engine in a preset's global graph (voices -> fx -> main)."""

import math

import numpy as np
import pytest
from numba import njit
from scipy.signal import butter, get_window, sosfilt, sosfiltfilt

import naive_effects as naive
from kernel_rig import run_fx
from helpers import compile_toml, make_engine, note_off, note_on, render, rms, simple_toml
from instrument.modules.kernel_args import kernel_args
from instrument.kernels import reverb as kr
from instrument.kernels.approx import tanh_approx
from instrument.modules.delay import Chorus, Delay
from instrument.modules.drive_eq import Drive, Eq
from instrument.layout import N_RESERVED_ROWS
from instrument.modules.registry import Registry, check_module, default_registry
from instrument.modules.reverb import Reverb

SR = 48000.0
BLOCK = 64
EFFECTS = (Delay, Chorus, Reverb, Drive, Eq)


# ---- driving a kernel directly --------------------------------------------------------------

def _impulse(n, at=0):
    x = np.zeros(n)
    x[at] = 1.0
    return x


def _db(x):
    return 20.0 * math.log10(max(float(x), 1e-300))


# ---- module declarations --------------------------------------------------------------------

@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.type_name)
def test_module_is_valid_global_stereo_and_allocates_nothing(cls):
    assert cls.problems() == []
    assert cls.scope == "global"
    assert cls.input_names() == ("left", "right")
    assert cls.outputs == ("out_left", "out_right")
    assert check_module(cls) == ""  # finite output, no allocation (tracemalloc + NRT stats)


def test_state_is_sized_at_prepare_from_the_sample_rate():
    """The 2 s delay line at 96 kHz is 192k slots per side, allocated at plan compile."""
    assert Delay.prepare(96000.0, 64) >= 2 * 192000
    assert Delay.prepare(96000.0, 64) > 1.9 * Delay.prepare(48000.0, 64)
    assert Reverb.prepare(96000.0, 64) > 1.9 * Reverb.prepare(48000.0, 64) - 2 * kr.RV_HEADER
    assert Chorus.prepare(44100.0, 64) >= 2 * 0.040 * 44100


# ---- kernels against the slow references ----------------------------------------------------

def _noise(n, lanes=2, seed=0):
    rng = np.random.default_rng(seed)
    return 0.3 * rng.standard_normal((n, lanes)), 0.3 * rng.standard_normal((n, lanes))


def test_delay_matches_reference_with_gliding_time_and_ping_pong_switch():
    n = 9000
    xl, xr = _noise(n)
    time_ms = np.stack([np.linspace(7.3, 9.1, n), np.full(n, 4.37)], axis=1)
    ping_pong = np.zeros((n, 2))
    ping_pong[4000:, 0] = 1.0
    ping_pong[:, 1] = 1.0
    fb = np.array([0.6, 0.93])
    out = run_fx(Delay, xl, xr, lanes=2, segments=(0, 17, 40), time_ms=time_ms,
                 feedback=np.broadcast_to(fb, (n, 2)), ping_pong=ping_pong,
                 damping_hz=np.broadcast_to([3000.0, 12000.0], (n, 2)), mix=0.7)
    for v in range(2):
        ref = naive.delay(xl[:, v], xr[:, v], time_ms[:, v], [fb[v]] * n, ping_pong[:, v],
                          [(3000.0, 12000.0)[v]] * n, [0.7] * n, SR,
                          Delay.line_size(SR) - 3.0, 30.0, 20.0)
        for side in range(2):
            assert np.max(np.abs(out[side][:, v] - ref[side])) < 1e-9


def test_chorus_matches_reference_with_moving_depth_and_delay():
    n = 12000
    xl, xr = _noise(n, seed=1)
    depth = np.linspace(1.0, 4.0, n)
    delay = np.linspace(8.0, 12.0, n)
    out = run_fx(Chorus, xl, xr, lanes=2, segments=(0, 17, 40),
                 rate_hz=np.broadcast_to([1.3, 4.1], (n, 2)), depth_ms=depth, delay_ms=delay,
                 mix=0.6)
    for v in range(2):
        ref = naive.chorus(xl[:, v], xr[:, v], [(1.3, 4.1)[v]] * n, depth, delay, [0.6] * n,
                           SR, Chorus.line_size(SR) - 3.0)
        for side in range(2):
            assert np.max(np.abs(out[side][:, v] - ref[side])) < 1e-9


def _reverb_reference(xl, xr, size, decay_s, damping_hz, predelay_ms, mix, sample_rate=SR):
    n = len(xl)
    lay = Reverb.layout(sample_rate)

    def seq(x):
        return np.broadcast_to(np.asarray(x, dtype=float), (n,))

    return naive.reverb(xl, xr, seq(size), seq(decay_s), seq(damping_hz), seq(predelay_ms),
                        seq(mix), sample_rate, kr.RV_LENGTHS_MS, kr.RV_SCALE_MIN, kr.RV_ALLPASS_MS,
                        kr.RV_ALLPASS_G, kr.RV_IN_L, kr.RV_IN_R, kr.RV_OUT_L, kr.RV_OUT_R,
                        kr.RV_OUT_GAIN, lay["n_pre"] - 2.0, 60.0)


@pytest.mark.parametrize("moving,sample_rate", [(False, SR), (True, SR), (False, 8000.0)],
                         ids=["steady_size", "gliding_size", "steady_size_8khz"])
def test_reverb_matches_reference(moving, sample_rate):
    """Steady size takes the kernel's precomputed-weights path, a gliding one the general
    path; at 8 kHz the shortest line is shorter than a chunk, so chunks shrink. While the size
    glides, the kernel updates line gains once per segment, the reference every sample: they
    differ by less than -60 dB (RMS, relative)."""
    n = 8000
    xl, xr = _noise(n, lanes=1, seed=2)
    size = np.linspace(0.2, 0.9, n) if moving else 0.3
    predelay = np.linspace(3.0, 5.0, n)
    out = run_fx(Reverb, xl[:, 0], xr[:, 0], sample_rate=sample_rate, segments=(0, 17, 40),
                 size=size, decay_s=1.5, damping_hz=4000.0, predelay_ms=predelay, mix=0.6)
    ref = _reverb_reference(xl[:, 0], xr[:, 0], size, 1.5, 4000.0, predelay, 0.6,
                            sample_rate)
    for side in range(2):
        if moving:
            assert _db(rms(out[side] - ref[side]) / rms(ref[side])) < -60
        else:
            assert np.max(np.abs(out[side] - ref[side])) < 1e-9


def test_drive_matches_reference_with_moving_mix():
    n = 5000
    xl, xr = _noise(n, seed=3)
    mix = np.linspace(0.0, 1.0, n)
    out = run_fx(Drive, xl, xr, lanes=2, segments=(0, 17, 40),
                 drive_db=np.broadcast_to([18.0, 3.0], (n, 2)), mix=mix, output_db=-3.0)
    for v in range(2):
        for side, x in enumerate((xl, xr)):
            ref = naive.drive(x[:, v], [(18.0, 3.0)[v]] * n, mix, [-3.0] * n)
            assert np.max(np.abs(out[side][:, v] - ref)) < 1e-10


def test_eq_matches_reference():
    n = 5000
    xl, xr = _noise(n, seed=4)
    bands = dict(low_hz=150.0, low_db=6.0, mid_hz=1200.0, mid_db=-9.0, mid_q=2.0,
                 high_hz=6000.0, high_db=4.0)
    out = run_fx(Eq, xl, xr, lanes=2, segments=(0, 17, 40), **bands)
    for v in range(2):
        for side, x in enumerate((xl, xr)):
            ref = naive.eq(x[:, v], *([value] * n for value in bands.values()), SR)
            assert np.max(np.abs(out[side][:, v] - ref)) < 1e-9


# ---- delay ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", [44100.0, 48000.0, 96000.0])
def test_delay_echo_is_an_exact_copy_time_ms_later(sample_rate):
    lag = int(0.25 * sample_rate)
    left, right = run_fx(Delay, _impulse(lag + 500, at=100), sample_rate=sample_rate,
                         time_ms=250.0, feedback=0.0, mix=1.0)
    assert left[100 + lag] == 1.0 and right[100 + lag] == 1.0
    left[100 + lag] = 0.0
    assert np.max(np.abs(left)) < 1e-12


def test_delay_fractional_time_delays_a_1khz_sine_within_minus_90_db():
    n = 20000
    t = np.arange(n) / SR
    left, _ = run_fx(Delay, np.sin(2 * np.pi * 1000 * t), time_ms=10.01, feedback=0.0, mix=1.0)
    exact = np.sin(2 * np.pi * 1000 * (t - 0.01001))
    err = left[2000:] - exact[2000:]
    assert _db(rms(err) / math.sqrt(0.5)) < -90


def test_delay_repeats_decay_by_feedback_and_darken_by_the_damping_lowpass():
    d = 4800
    fb, damping = 0.5, 2000.0
    left, _ = run_fx(Delay, _impulse(6 * d), time_ms=100.0, feedback=fb, damping_hz=damping,
                     mix=1.0)
    echoes = [left[j * d:(j + 1) * d] for j in range(1, 6)]
    sums = np.array([e.sum() for e in echoes])
    assert np.allclose(sums[1:] / sums[:-1], fb, rtol=1e-9)  # unity DC gain in the loop
    a = 1.0 - math.exp(-2 * math.pi * damping / SR)
    f = np.fft.rfftfreq(d, 1.0 / SR)
    h = a / (1.0 - (1.0 - a) * np.exp(-2j * np.pi * f / SR))
    for e0, e1 in zip(echoes, echoes[1:]):
        ratio = np.abs(np.fft.rfft(e1)) / np.abs(np.fft.rfft(e0))
        band = f < 15000
        assert np.max(np.abs(20 * np.log10(ratio[band] / (fb * np.abs(h[band]))))) < 0.01


def test_delay_ping_pong_alternates_left_and_right():
    d = 2400
    left, right = run_fx(Delay, _impulse(7 * d), time_ms=50.0, feedback=0.8, ping_pong=1.0,
                         damping_hz=20000.0, mix=1.0)
    for j in range(1, 7):
        el = np.sum(left[j * d:(j + 1) * d] ** 2)
        er = np.sum(right[j * d:(j + 1) * d] ** 2)
        loud, quiet = (el, er) if j % 2 == 1 else (er, el)
        assert loud > 0.1 * 0.8 ** (2 * j) and quiet == 0.0


def test_delay_without_ping_pong_keeps_sides_apart():
    left, right = run_fx(Delay, _impulse(20000), np.zeros(20000), time_ms=50.0, feedback=0.8,
                         mix=1.0)
    assert np.max(np.abs(right)) == 0.0 and np.sum(left ** 2) > 0.5


def _highpassed_peak_db(x, start, stop, ref):
    h = sosfiltfilt(butter(8, 3000.0, "highpass", fs=SR, output="sos"), x)
    return _db(np.max(np.abs(h[start:stop])) / ref)


def test_delay_time_step_glides_without_click():
    """A 300 -> 320 ms step of the raw parameter (no engine smoothing) on a 440 Hz sine: the
    internal two-pole glide leaves nothing above 3 kHz louder than -60 dB (a read jump would be
    a full-scale click), and the echo then sits exactly 320 ms behind."""
    n = int(1.6 * SR)
    t = np.arange(n) / SR
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    time_ms = np.full(n, 300.0)
    time_ms[int(0.8 * SR):] = 320.0
    left, _ = run_fx(Delay, x, time_ms=time_ms, feedback=0.0, mix=1.0)
    assert _highpassed_peak_db(left, int(0.6 * SR), int(1.4 * SR), 0.5) < -60
    lag = int(0.32 * SR)
    assert np.max(np.abs(left[-2000:] - x[-2000 - lag:-lag])) < 1e-9


# ---- chorus ---------------------------------------------------------------------------------

def test_chorus_without_depth_is_the_input_delay_ms_later():
    x = np.random.default_rng(5).standard_normal(4000)
    left, right = run_fx(Chorus, x, depth_ms=0.0, delay_ms=10.0, mix=0.5)
    lag = 480
    expect = 0.5 * x + 0.5 * np.concatenate([np.zeros(lag), x[:-lag]])
    assert np.max(np.abs(left - expect)) < 1e-12 and np.max(np.abs(right - expect)) < 1e-12


def test_chorus_taps_sweep_delay_plus_minus_depth_once_per_lfo_period():
    """Impulses every 20 ms, LFO at 1.25 Hz (40 impulses per cycle): each echo lies within
    delay_ms +- depth_ms (plus the 2-sample Hermite support), the extremes over a cycle reach
    both ends within 0.05 ms, the response repeats after one cycle, and the right side
    equals the left a quarter cycle later."""
    spacing, per_cycle, cycles = 960, 40, 3
    n = spacing * per_cycle * cycles
    x = np.zeros(n)
    x[::spacing] = 1.0
    left, right = run_fx(Chorus, x, rate_hz=1.25, depth_ms=3.0, delay_ms=10.0, mix=1.0)
    lo, hi = (10.0 - 3.0) * SR / 1000, (10.0 + 3.0) * SR / 1000
    firsts, lasts = [], []
    for j in range(per_cycle * cycles - 1):
        echo = np.abs(left[j * spacing:(j + 1) * spacing])
        nz = np.nonzero(echo > 1e-9)[0]
        assert nz[0] >= lo - 2 and nz[-1] <= hi + 2
        firsts.append(nz[0])
        lasts.append(nz[-1])
    assert min(firsts) <= lo + 2.4 and max(lasts) >= hi - 2.4

    def echo(side, j):
        return side[j * spacing:(j + 1) * spacing]

    for j in range(5, 25):
        assert np.max(np.abs(echo(left, j + per_cycle) - echo(left, j))) < 1e-6
        assert np.max(np.abs(echo(right, j) - echo(left, j + per_cycle // 4))) < 1e-6


# ---- reverb ---------------------------------------------------------------------------------

def rt60(h, band):
    """RT60 of an impulse response in a band: Schroeder backward integration, a straight line
    fitted from -5 to -25 dB (T20), extrapolated to 60 dB."""
    h = sosfilt(butter(3, band, "bandpass", fs=SR, output="sos"), h)
    energy = np.cumsum((h ** 2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0] + 1e-300)
    i0, i1 = np.argmax(edc <= -5.0), np.argmax(edc <= -25.0)
    slope = np.polyfit(np.arange(i0, i1) / SR, edc[i0:i1], 1)[0]
    return -60.0 / slope


def _reverb_ir(seconds, **params):
    x = _impulse(int(seconds * SR))
    return run_fx(Reverb, x, predelay_ms=0.0, mix=1.0, **params)


@pytest.mark.parametrize("decay_s", [0.5, 2.0, 6.0])
@pytest.mark.parametrize("size", [0.0, 0.5, 1.0])
def test_reverb_rt60_at_500_hz_is_decay_s(decay_s, size):
    left, right = _reverb_ir(1.3 * decay_s + 0.1, size=size, decay_s=decay_s,
                             damping_hz=20000.0)
    for side in (left, right):
        measured = rt60(side, (354.0, 707.0))
        assert abs(measured / decay_s - 1.0) < 0.12, measured


@pytest.mark.parametrize("damping_hz", [1000.0, 2000.0, 4000.0])
def test_reverb_rt60_halves_at_damping_hz(damping_hz):
    decay_s = 3.0
    left, _ = _reverb_ir(1.3 * decay_s, size=0.5, decay_s=decay_s, damping_hz=damping_hz)
    third = (damping_hz * 2 ** (-1 / 6), damping_hz * 2 ** (1 / 6))
    assert abs(rt60(left, third) / (decay_s / 2) - 1.0) < 0.1


def test_reverb_predelay_and_first_arrival():
    """Nothing comes out before predelay + the shortest line (up to the 2-sample Hermite
    support), and something right after."""
    size, predelay_ms = 0.5, 30.0
    left, right = run_fx(Reverb, _impulse(int(0.2 * SR)), size=size, decay_s=1.0,
                         predelay_ms=predelay_ms, mix=1.0)
    scale = kr.RV_SCALE_MIN + (1 - kr.RV_SCALE_MIN) * size
    first = predelay_ms * SR / 1000 + min(kr.RV_LENGTHS_MS) * scale * SR / 1000
    for side in (left, right):
        nz = np.nonzero(np.abs(side) > 0.0)[0][0]
        assert first - 3 <= nz <= first + 1


def test_reverb_sides_are_decorrelated_and_level_does_not_follow_size():
    energies = []
    for size in (0.0, 0.5, 1.0):
        left, right = _reverb_ir(2.5, size=size, decay_s=2.0, damping_hz=20000.0)
        corr = np.dot(left, right) / math.sqrt(np.dot(left, left) * np.dot(right, right))
        assert abs(corr) < 0.3
        energies.append(np.dot(left, left))
    assert 10 * math.log10(max(energies) / min(energies)) < 2.0


def test_reverb_mix_zero_passes_the_input_unchanged():
    x = np.random.default_rng(6).standard_normal(3000)
    left, right = run_fx(Reverb, x, mix=0.0)
    assert np.array_equal(left, x) and np.array_equal(right, x)


# ---- drive ----------------------------------------------------------------------------------

def test_tanh_approx_error_below_1e_12_odd_and_monotonic():
    x = np.linspace(-30.0, 30.0, 600001)

    @njit
    def apply(xs):
        out = np.empty_like(xs)
        for i in range(xs.shape[0]):
            out[i] = tanh_approx(xs[i])
        return out

    y = apply(x)
    assert np.max(np.abs(y - np.tanh(x))) < 1e-12
    assert np.array_equal(apply(-x), -y) and np.all(np.diff(y) >= 0.0)


def _harmonics(x, f0, count):
    """Magnitudes of harmonics 1..count of a steady tone with a whole number of periods."""
    spec = np.abs(np.fft.rfft(x)) / (len(x) / 2)
    step = int(round(f0 * len(x) / SR))
    return np.array([spec[h * step] for h in range(1, count + 1)])


@pytest.mark.parametrize("drive_db", [6.0, 12.0, 24.0])
def test_drive_adds_the_odd_harmonics_of_tanh_and_no_even_ones(drive_db):
    t = np.arange(int(SR)) / SR
    x = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    left, _ = run_fx(Drive, x, drive_db=drive_db, mix=1.0)
    got = _harmonics(left, 1000.0, 6)
    g = 10 ** (drive_db / 20)
    exact = _harmonics(np.tanh(g * x) * 0.5 / math.tanh(0.5 * g), 1000.0, 6)
    for h in (0, 2, 4):  # 1st, 3rd, 5th
        assert abs(_db(got[h] / exact[h])) < 0.01
    for h in (1, 3, 5):  # 2nd, 4th, 6th
        assert _db(got[h] / got[0]) < -200


@pytest.mark.parametrize("drive_db", [0.0, 6.0, 12.0, 24.0, 36.0])
def test_drive_keeps_the_peak_of_a_minus_6_dbfs_sine(drive_db):
    t = np.arange(4800) / SR
    left, right = run_fx(Drive, 0.5 * np.sin(2 * np.pi * 1000.0 * t), drive_db=drive_db, mix=1.0)
    assert abs(np.max(left) - 0.5) < 1e-12 and abs(np.max(right) - 0.5) < 1e-12


def test_drive_folded_harmonics_measured():
    """No oversampling: what folds back over Nyquist, for a 1234.5 Hz sine at -6 dBFS (the
    strongest component that is not a harmonic, relative to the fundamental). Measured:
    -119 dB at 12 dB drive (the window's floor), -44 dB at 24 dB, -28 dB at 36 dB."""
    n = int(SR)
    t = np.arange(n) / SR
    f0 = 1234.5
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    harmonic = np.zeros(len(freqs), bool)
    for h in range(1, int(SR / 2 / f0) + 1):
        harmonic |= np.abs(freqs - h * f0) < 30.0
    levels = {}
    for drive_db in (12.0, 24.0, 36.0):
        left, _ = run_fx(Drive, 0.5 * np.sin(2 * np.pi * f0 * t), drive_db=drive_db, mix=1.0)
        spec = np.abs(np.fft.rfft(left * get_window("blackmanharris", n)))
        fundamental = spec[np.argmin(np.abs(freqs - f0))]
        levels[drive_db] = _db(spec[~harmonic & (freqs > 20.0)].max() / fundamental)
    assert levels[12.0] < -100 and levels[24.0] < -40 and levels[36.0] < -25, levels


def test_drive_mix_zero_is_the_trimmed_input():
    x = np.random.default_rng(7).standard_normal(3000)
    left, _ = run_fx(Drive, x, drive_db=30.0, mix=0.0, output_db=-6.0)
    assert np.max(np.abs(left - x * 10 ** (-6 / 20))) < 1e-12


# ---- EQ -------------------------------------------------------------------------------------

EQ_SETTINGS = [
    dict(low_hz=120.0, low_db=6.0, mid_hz=1000.0, mid_db=-6.0, mid_q=0.7, high_hz=8000.0,
         high_db=3.0),
    dict(low_hz=20.0, low_db=24.0, mid_hz=10000.0, mid_db=-24.0, mid_q=10.0,
         high_hz=20000.0, high_db=-24.0),
    dict(low_hz=1000.0, low_db=-24.0, mid_hz=100.0, mid_db=24.0, mid_q=0.1, high_hz=1000.0,
         high_db=24.0),
]


def _eq_response(settings, sample_rate, n=1 << 16):
    x = _impulse(n)
    left, right = run_fx(Eq, x, sample_rate=sample_rate, **settings)
    assert np.array_equal(left, right)
    return np.fft.rfft(left), np.fft.rfftfreq(n, 1.0 / sample_rate)


def _analytic(settings, freqs, sample_rate):
    s = settings
    total = np.ones(len(freqs), complex)
    for coeffs in (naive.rbj("lowshelf", s["low_hz"], s["low_db"], 0.0, sample_rate),
                   naive.rbj("peak", s["mid_hz"], s["mid_db"], s["mid_q"], sample_rate),
                   naive.rbj("highshelf", s["high_hz"], s["high_db"], 0.0, sample_rate)):
        total *= np.array(naive.biquad_response(coeffs, freqs, sample_rate))
    return total


@pytest.mark.parametrize("sample_rate", [44100.0, 48000.0, 96000.0])
@pytest.mark.parametrize("setting", range(len(EQ_SETTINGS)))
def test_eq_magnitude_is_the_analytic_biquad_response(setting, sample_rate):
    settings = EQ_SETTINGS[setting]
    measured, freqs = _eq_response(settings, sample_rate)
    band = (freqs >= 20.0) & (freqs <= 0.45 * sample_rate)
    picks = np.nonzero(band)[0][::7]
    expect = _analytic(settings, freqs[picks], sample_rate)
    err_db = 20 * np.log10(np.abs(measured[picks]) / np.abs(expect))
    assert np.max(np.abs(err_db)) < 0.01


def _gain_db_at(h, f, sample_rate):
    n = np.arange(len(h))
    return _db(abs(np.sum(h * np.exp(-2j * np.pi * f / sample_rate * n))))


def test_eq_shelves_and_peak_hit_their_gains():
    flat = dict(low_db=0.0, mid_db=0.0, high_db=0.0)
    x = _impulse(1 << 15)

    def ir(**p):
        return run_fx(Eq, x, **{**flat, **p})[0]

    h = ir(low_hz=200.0, low_db=9.0)
    assert abs(_gain_db_at(h, 0.0, SR) - 9.0) < 1e-6
    assert abs(_gain_db_at(h, 200.0, SR) - 4.5) < 1e-6
    h = ir(mid_hz=1500.0, mid_db=-12.0, mid_q=4.0)
    assert abs(_gain_db_at(h, 1500.0, SR) + 12.0) < 1e-6
    h = ir(high_hz=5000.0, high_db=6.0)
    assert abs(_gain_db_at(h, SR / 2, SR) - 6.0) < 1e-6
    assert abs(_gain_db_at(h, 5000.0, SR) - 3.0) < 1e-6
    y = ir()
    assert np.max(np.abs(y - x)) < 1e-12


# ---- tails into silence end in exact zeros --------------------------------------------------

@njit(cache=True)
def _run_blocks(kernel, bufs, io, P, pr, st, ctx, n_blocks):
    for _ in range(n_blocks):
        kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, 1)


# Settings whose tails would run into denormals (below 2.2e-308) within the rendered silence
# if the kernels did not flush: the 1 ms delay at feedback 0.95 gets there after ~14 s, the
# 0.5 s reverb after ~51 s, the +24 dB, Q 10 EQ after ~19 s. Measured with DENORMAL_FLOOR set
# to 0 (AMD EPYC): the worst second of tail cost 2.1x a sounding block for the delay, 6.8x for
# the reverb, 1.65x for the EQ; with the flush, every second within 0.93x..1.08x.
TAILS = [
    (Delay, dict(time_ms=1.0, feedback=0.95, damping_hz=20000.0, mix=0.5), 30.0),
    (Chorus, dict(), 2.0),
    (Reverb, dict(decay_s=0.5, damping_hz=20000.0, size=0.0, mix=0.5), 70.0),
    (Drive, dict(), 2.0),
    (Eq, dict(low_hz=20.0, low_db=24.0, mid_hz=100.0, mid_db=24.0, mid_q=10.0), 20.0),
]


@pytest.mark.parametrize("cls,params,tail_s", TAILS, ids=[t[0].type_name for t in TAILS])
def test_tail_into_silence_ends_in_exact_zeros_never_subnormal(cls, params, tail_s):
    """A second of white noise, then ``tail_s`` of silence: the tail ends in exact silence, with
    no subnormal value left in the lines, which is what keeps it as cheap as sound
    (``benchmarks/kernel_cost.py`` times both: 0.82-1.16x measured)."""
    args = kernel_args(cls, 4, 1, params)
    bufs = args[0]
    blocks_per_s = int(SR) // BLOCK
    bufs[N_RESERVED_ROWS:N_RESERVED_ROWS + 2] = 0.5 * np.random.default_rng(8).standard_normal(
        (2, BLOCK, 1))
    _run_blocks(cls.kernel, *args, blocks_per_s)
    bufs[N_RESERVED_ROWS:N_RESERVED_ROWS + 2] = 0.0
    _run_blocks(cls.kernel, *args, int(tail_s * blocks_per_s))
    assert np.max(np.abs(bufs[N_RESERVED_ROWS + 2:N_RESERVED_ROWS + 4])) == 0.0
    state = args[4]
    assert not np.any((state != 0.0) & (np.abs(state) < np.finfo(np.float64).tiny))


# ---- through the engine: voices -> fx -> main -----------------------------------------------

_registry = None


def fx_registry() -> Registry:
    """The built-ins plus the five effects (one fused renderer, built once)."""
    global _registry
    if _registry is None:
        modules = dict(default_registry().modules)
        modules.update({cls.type_name: cls for cls in EFFECTS})
        _registry = Registry(modules=modules)
    return _registry


def _global(*chain: tuple[str, str]) -> str:
    """A [global] section: voices -> each (name, 'type = ...' lines) in turn -> main."""
    names = ["voices"] + [name for name, _ in chain]
    links = []
    for a, b in zip(names, names[1:]):
        src = "voices.left" if a == "voices" else f"{a}.out_left"
        srcr = "voices.right" if a == "voices" else f"{a}.out_right"
        links += [f'"{src} -> {b}.left"', f'"{srcr} -> {b}.right"']
    last = names[-1]
    links += [f'"{last}.out_left -> main.left"', f'"{last}.out_right -> main.right"']
    tables = "\n".join(f"[global.nodes.{name}]\n{body}" for name, body in chain)
    return (f"[global]\nconnect = [{', '.join(links)}]\n[global.nodes.voices]\ntype = \"voices\"\n"
            f"{tables}\n[global.nodes.main]\ntype = \"output\"\n")


def _fx_engine(*chain, osc="sine"):
    text = simple_toml(osc, osc_params="level = 0.3",
                       env="attack_ms = 1\ndecay_ms = 1\nsustain = 1\nrelease_ms = 5",
                       global_graph=_global(*chain))
    return make_engine(compile_toml(text, SR, BLOCK, registry=fx_registry()))


def test_engine_delay_repeats_the_voices_time_ms_later():
    body = 'type = "delay"\ntime_ms = 100\nfeedback = 0\nmix = {}'
    events = [note_on(0, 69), note_off(2400, 69)]
    dry = render(_fx_engine(("dly", body.format(0))), 12000, events)
    wet = render(_fx_engine(("dly", body.format(1))), 12000, events)
    assert rms(dry[:2400, 0]) > 0.1
    assert np.max(np.abs(wet[4800:, 0] - dry[:-4800, 0])) < 1e-6
    assert np.max(np.abs(wet[:4800])) < 1e-6


def test_engine_delay_time_change_glides_without_click():
    engine = _fx_engine(("dly", 'type = "delay"\ntime_ms = 300\nfeedback = 0\nmix = 1'))
    n = int(1.6 * SR)

    def on_block(b, eng):
        if b == int(0.8 * SR) // BLOCK:
            eng.set_param("dly.time_ms", 320.0)

    out = render(engine, n, [note_on(0, 69)], on_block=on_block)
    level = np.max(np.abs(out[int(0.5 * SR):, 0]))
    assert level > 0.2
    assert _highpassed_peak_db(out[:, 0].astype(float), int(0.6 * SR), int(1.4 * SR),
                               level) < -80


def test_engine_reverb_rings_after_the_note():
    engine = _fx_engine(("rev", 'type = "reverb"\ndecay_s = 2\nmix = 0.5'))
    out = render(engine, int(1.0 * SR), [note_on(0, 60), note_off(4800, 60)])
    note = out[:4800, 0]
    tail = out[int(0.3 * SR):int(0.5 * SR), 0]
    later = out[int(0.8 * SR):, 0]
    assert rms(tail) > 0.01 * rms(note) and 0.0 < rms(later) < rms(tail)


def test_engine_all_sound_off_silences_the_effect_tails():
    from instrument.engine.events import ALL_SOUND_OFF

    engine = _fx_engine(("dly", 'type = "delay"\nfeedback = 0.9\nmix = 0.5'),
                        ("rev", 'type = "reverb"\ndecay_s = 5'))
    render(engine, int(0.5 * SR), [note_on(0, 60), note_off(4800, 60)])
    engine.process_block(np.array([[0, ALL_SOUND_OFF, 0, 0, 0]], float), 1,
                         np.zeros((BLOCK, 2), np.float32))
    assert np.max(np.abs(render(engine, BLOCK * 8))) == 0.0


def test_engine_full_chain_is_finite_and_every_node_in_the_plan():
    chain = (("eq", 'type = "eq"\nlow_db = 3\nhigh_db = -3'),
             ("drv", 'type = "drive"\ndrive_db = 12\nmix = 0.5'),
             ("cho", 'type = "chorus"'),
             ("dly", 'type = "delay"\nfeedback = 0.5\nping_pong = 1'),
             ("rev", 'type = "reverb"'))
    engine = _fx_engine(*chain, osc="saw")
    text = engine.current.plan.text
    for name, _ in chain:
        assert f" {name} " in text
    out = render(engine, int(2.0 * SR), [note_on(0, 48), note_on(0, 55), note_off(24000, 48),
                                         note_off(24000, 55)])
    assert np.all(np.isfinite(out))
    assert rms(out[:24000]) > 0.02 and rms(out[int(1.2 * SR):]) > 1e-4
    assert engine.nonfinite_resets == 0
