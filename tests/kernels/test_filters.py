"""The svf, ladder and onepole filters measured: approximations against libm, kernels against
their slow references (tests/naive_filters.py) through the real kernel contract, magnitude
responses against the analytic (bilinear-transformed) responses by FFT of an impulse, -3 dB
points and slopes, ladder self-oscillation, a full-range sweep and audio-rate modulation against
the exact per-sample-coefficient filter, denormal-free release tails, cost per voice, and the
modules inside the real engine (key tracking, global graph).

Figures are printed (``pytest -s``) as they are measured."""

import math

import numpy as np
import pytest
from numba import njit

import naive_filters as nf
from kernel_rig import run
from helpers import fft_pitch, make_engine, note_off, note_on, render, rms, spectral_centroid
from instrument.modules.kernel_args import kernel_args
from instrument.graph.compile import compile_preset
from instrument.kernels.approx import TANH_PADE_CLIP, ln_approx, tanh_pade_den, tanh_pade_num
from instrument.kernels.filters import KEY_RATIO_MAX, KEY_RATIO_MIN, key_cutoff
from instrument.kernels.ladder import LADDER_K_MAX, LADDER_OSC_RESONANCE, LADDER_RECURSIVE
from instrument.kernels.lane_blocks import block_lanes
from instrument.kernels.onepole import ONEPOLE_RECURSIVE
from instrument.kernels.svf import SVF_RECURSIVE
from instrument.modules.ladder import Ladder
from instrument.modules.onepole import OnePole
from instrument.modules.svf import Svf, SvfLowpass
from instrument.modules.registry import Registry, _exercise, default_registry
from instrument.layout import LANE_BLOCK
from instrument.presets import parse_preset

SR = 48000.0
BLOCK = 64
MODES = nf.MODES
ONEPOLE_MODES = ("lowpass", "highpass")
Q_BUTTERWORTH_RES = math.log(math.sqrt(2.0)) / math.log(100.0)  # Q = 0.707: 0.0753


# ---- driving a kernel -----------------------------------------------------------------------

def impulse_response(cls, params, n=1 << 16, amplitude=1e-6):
    """Impulse response of one lane, per unit input (a small kick keeps the ladder linear)."""
    x = np.zeros((n, 1))
    x[0, 0] = amplitude
    return run(cls, x, params)[:, 0] / amplitude


def db(x):
    return 20.0 * np.log10(np.maximum(np.abs(x), 1e-300))


def rel_db(err, ref):
    return 20.0 * math.log10(rms(err) / rms(ref))


# ---- approximations -------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _tanh_pade(x):
    """tanh by the Pade approximant the ladder uses, on x clamped to +-TANH_PADE_CLIP."""
    xc = min(max(x, -TANH_PADE_CLIP), TANH_PADE_CLIP)
    x2 = xc * xc
    return xc * tanh_pade_num(x2) / tanh_pade_den(x2)


@njit(cache=True)
def _map(f_code, xs):
    out = np.empty_like(xs)
    for i in range(xs.shape[0]):
        if f_code == 0:
            out[i] = ln_approx(xs[i])
        else:
            out[i] = _tanh_pade(xs[i])
    return out


@njit(cache=True)
def _map_key(cut, kt, key):
    out = np.empty_like(cut)
    for i in range(cut.shape[0]):
        out[i] = key_cutoff(cut[i], kt[i], key[i])
    return out


def test_ln_approx_error_below_1e_10_over_its_range():
    xs = np.geomspace(KEY_RATIO_MIN, KEY_RATIO_MAX, 200001)
    err = np.abs(_map(0, xs) - np.log(xs)).max()
    print(f"\nln_approx max abs error over [2^-8, 2^8]: {err:.2e}")
    assert err < 1e-10


def test_tanh_pade_error_below_6e_6_odd_monotone_bounded():
    xs = np.linspace(-60.0, 60.0, 1200001)
    y = _map(1, xs)
    err = np.abs(y - np.tanh(xs)).max()
    print(f"\ntanh Pade max abs error over [-60, 60]: {err:.2e}")
    assert err < 6e-6
    assert np.all(np.diff(y) >= 0.0)
    assert np.all(np.abs(y) < 1.0)
    assert np.array_equal(y, -_map(1, -xs))


def test_key_cutoff_follows_pitch_one_octave_per_octave_and_ignores_no_pitch():
    rng = np.random.default_rng(0)
    n = 5000
    cut = rng.uniform(20.0, 20000.0, n)
    kt = rng.uniform(0.0, 1.0, n)
    key = nf.C4_HZ * 2.0 ** rng.uniform(-7.9, 7.9, n)
    got = _map_key(cut, kt, key)
    want = cut * (key / nf.C4_HZ) ** kt
    assert np.max(np.abs(got / want - 1.0)) < 1e-9
    # One octave up the keyboard at full tracking: exactly one octave up the cutoff.
    one = np.ones(3)
    assert np.allclose(_map_key(1000.0 * one, one, np.array([nf.C4_HZ, 2 * nf.C4_HZ, 440.0])),
                       [1000.0, 2000.0, 1000.0 * 440.0 / nf.C4_HZ], rtol=1e-10)
    # No pitch (the global graph), a NaN key, or no tracking: the cutoff as set.
    assert np.allclose(_map_key(1000.0 * one, one, np.array([0.0, -5.0, np.nan])), 1000.0,
                       rtol=1e-12)
    assert np.allclose(_map_key(1000.0 * one, 0.0 * one, np.array([30.0, 440.0, 9000.0])),
                       1000.0, rtol=1e-12)


# ---- kernels against the slow references ----------------------------------------------------

LANE_CUTOFF = np.array([300.0, 2000.0, 9000.0, 15000.0])
LANE_KEY_TRACK = np.array([0.0, 0.5, 1.0, 1.0])
LANE_KEY = np.array([110.0, 440.0, 0.0, 1000.0])  # lane 2: no pitch (global graph)
SEGMENTS = (0, 1, 5, 33)  # one-sample segment, chunks cut short, a segment longer than a chunk
# Tolerances: tan_pi's relative error (below 1e-8) shows near the 0.49 x SR clamp (lane 3).


def _noise(n, lanes, seed=2):
    return 0.5 * np.random.default_rng(seed).standard_normal((n, lanes))


@pytest.mark.parametrize("resonance", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("mode", range(4))
def test_svf_matches_exact_reference(mode, resonance):
    x = _noise(40 * BLOCK, 4)
    out = run(Svf, x, dict(mode=mode, cutoff_hz=LANE_CUTOFF, resonance=resonance,
                           key_track=LANE_KEY_TRACK), key=LANE_KEY, segments=SEGMENTS)
    for v in range(4):
        ref = np.array(nf.svf(x[:, v], LANE_CUTOFF[v], resonance, SR, MODES[mode],
                              LANE_KEY_TRACK[v], LANE_KEY[v]))
        assert np.max(np.abs(out[:, v] - ref)) < 1e-7 * max(1.0, np.abs(ref).max())


def test_svf_lanes_in_different_modes_match_reference():
    """A modulated mode puts lanes in different modes: the general mixing path."""
    x = _noise(20 * BLOCK, 4)
    modes = np.arange(4.0)
    out = run(Svf, x, dict(mode=modes, cutoff_hz=1000.0, resonance=0.6), segments=SEGMENTS)
    for v in range(4):
        ref = np.array(nf.svf(x[:, v], 1000.0, 0.6, SR, MODES[v]))
        assert np.max(np.abs(out[:, v] - ref)) < 1e-7 * max(1.0, np.abs(ref).max())


def test_svf_with_moving_resonance_stays_within_90_db_of_exact_reference():
    """The damping is interpolated linearly across each segment between exact end values."""
    n = 200 * BLOCK
    t = np.arange(n) / SR
    x = _noise(n, 1)
    res = (0.5 + 0.45 * np.sin(2 * np.pi * 3 * t))[:, None]
    for mode in range(4):
        out = run(Svf, x, dict(mode=mode, cutoff_hz=1500.0, resonance=res), segments=SEGMENTS)
        ref = np.array(nf.svf(x[:, 0], 1500.0, res[:, 0], SR, MODES[mode]))
        assert rel_db(out[:, 0] - ref, ref) < -90


def test_svf_damping_lands_on_the_new_resonance_after_a_ramp():
    """A resonance that ramps within one block and then holds: from then on the damping is
    the held value's, so once the ramp's own (linearly interpolated) damping has rung out the
    output is the exact filter's. (svf_lowpass keeps the ramp's start value here.)"""
    n = 20 * BLOCK
    x = _noise(n, 1)
    res = np.full((n, 1), 0.1)
    res[:BLOCK, 0] = np.linspace(0.9, 0.1, BLOCK)
    out = run(Svf, x, dict(mode=0, cutoff_hz=1000.0, resonance=res))
    ref = np.array(nf.svf(x[:, 0], 1000.0, res[:, 0], SR))
    assert np.max(np.abs(out[5 * BLOCK:, 0] - ref[5 * BLOCK:])) < 1e-9


def test_svf_lowpass_settled_follows_a_resonance_step_under_a_held_cutoff():
    """A settled svf_lowpass (steady cutoff: it runs with held coefficients) takes a new
    resonance at a block's start just as the svf's chunked path does (within 1e-12), and once
    the step's transient has rung out (the first 8-sample chunk ramps the coefficients; at
    resonance 0.9, Q 31.5, for tens of ms) the output is the exact filter's. Kept at the old
    resonance, it was 1.5 off."""
    n = 160 * BLOCK
    x = _noise(n, 2)
    res = np.full((n, 2), 0.1)
    res[20 * BLOCK:] = 0.9
    res[120 * BLOCK:] = 0.4
    settled = run(SvfLowpass, x, dict(cutoff_hz=1000.0, resonance=res))
    chunked = run(Svf, x, dict(mode=0, cutoff_hz=1000.0, resonance=res))
    assert np.max(np.abs(settled - chunked)) < 1e-12
    for v in range(2):
        ref = np.array(nf.svf(x[:, v], 1000.0, res[:, v], SR))
        assert np.max(np.abs(settled[140 * BLOCK:, v] - ref[140 * BLOCK:])) < 1e-9


@pytest.mark.parametrize("mode", range(2))
def test_onepole_matches_exact_reference(mode):
    x = _noise(40 * BLOCK, 4)
    out = run(OnePole, x, dict(mode=mode, cutoff_hz=LANE_CUTOFF, key_track=LANE_KEY_TRACK),
              key=LANE_KEY, segments=SEGMENTS)
    for v in range(4):
        ref = np.array(nf.onepole(x[:, v], LANE_CUTOFF[v], SR, ONEPOLE_MODES[mode],
                                  LANE_KEY_TRACK[v], LANE_KEY[v]))
        assert np.max(np.abs(out[:, v] - ref)) < 1e-7 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("resonance", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("drive_db", [0.0, 12.0, 24.0])
def test_ladder_matches_reference(drive_db, resonance):
    """Same algorithm with math.tanh: the difference is the tanh approximation's (< 6e-6)."""
    x = _noise(40 * BLOCK, 4)
    out = run(Ladder, x, dict(cutoff_hz=LANE_CUTOFF, resonance=resonance, drive_db=drive_db,
                              key_track=LANE_KEY_TRACK), key=LANE_KEY, segments=SEGMENTS)
    for v in range(4):
        ref = np.array(nf.ladder(x[:, v], LANE_CUTOFF[v], resonance, SR, drive_db,
                                 LANE_KEY_TRACK[v], LANE_KEY[v]))
        assert np.max(np.abs(out[:, v] - ref)) < 5e-5 * max(1.0, np.abs(ref).max())


def test_ladder_with_moving_resonance_and_drive_stays_within_90_db_of_reference():
    n = 200 * BLOCK
    t = np.arange(n) / SR
    x = _noise(n, 1)
    res = (0.5 + 0.45 * np.sin(2 * np.pi * 3 * t))[:, None]
    drive = (12.0 + 12.0 * np.sin(2 * np.pi * 2 * t))[:, None]
    out = run(Ladder, x, dict(cutoff_hz=1500.0, resonance=res, drive_db=drive),
              segments=SEGMENTS)
    ref = np.array(nf.ladder(x[:, 0], 1500.0, res[:, 0], SR, drive[:, 0]))
    assert rel_db(out[:, 0] - ref, ref) < -90


@pytest.mark.parametrize("active", [4, 5, 8, 12, 15])
def test_ladder_in_lane_blocks_computes_what_each_lane_alone_does(active):
    """From 4 to 15 lanes, on arrays rounded up to whole lane blocks (as the voice arrays
    are), the ladder runs in blocks of 8 lanes, idle ones included (``kernels.lane_blocks``):
    every active lane sounds as it does alone (one lane: the plain loop), drive, resonance
    and cutoff moving."""
    lanes = -(-active // LANE_BLOCK) * LANE_BLOCK
    assert block_lanes(active, lanes) == lanes and block_lanes(1, 1) == 0
    n = 30 * BLOCK
    t = np.arange(n)[:, None] / SR
    phase = np.arange(lanes)[None, :] / lanes
    x = _noise(n, lanes)
    params = dict(cutoff_hz=300.0 * 2.0 ** (4.0 * phase + np.sin(2 * np.pi * 3 * t)),
                  resonance=0.5 + 0.5 * np.sin(2 * np.pi * (5 * t + phase)),
                  drive_db=12.0 + 12.0 * np.sin(2 * np.pi * (2 * t + phase)),
                  dc_block_hz=20.0)
    blocked = run(Ladder, x, params, segments=SEGMENTS, active=active)
    for v in range(active):
        alone = run(Ladder, x[:, v:v + 1], {k: p if np.isscalar(p) else p[:, v:v + 1]
                                            for k, p in params.items()}, segments=SEGMENTS)
        assert np.max(np.abs(blocked[:, v] - alone[:, 0])) < 1e-12


def test_ladder_output_is_bounded_by_its_saturation():
    """|out| <= (1 + k) / sqrt(drive): the tanh bounds the input stage at 1, and four
    one-poles (non-negative impulse responses) cannot exceed their input's peak."""
    n = 24000
    t = np.arange(n) / SR
    saw = (2.0 * ((110.0 * t) % 1.0) - 1.0)[:, None]
    for drive_db in (0.0, 12.0, 24.0):
        for resonance in (0.0, 0.5, 1.0):
            out = run(Ladder, 2.0 * saw, dict(cutoff_hz=3000.0, resonance=resonance,
                                              drive_db=drive_db))
            bound = (1.0 + LADDER_K_MAX * resonance) / math.sqrt(10.0 ** (drive_db / 20.0))
            assert np.abs(out).max() <= bound


# ---- magnitude responses --------------------------------------------------------------------

FREQS = np.fft.rfftfreq(1 << 16, 1.0 / SR)
BAND = (FREQS > 0.0) & (FREQS < 0.4 * SR)


def _response_error_db(measured_ir, analytic):
    """Largest |dB difference| below 0.4 x SR, where the analytic response is above -80 dB
    (the notch's zero and the low-pass's far stop band are left out: their dB are noise)."""
    h = np.abs(np.fft.rfft(measured_ir))[BAND]
    a = np.abs(np.array([analytic(f) for f in FREQS[BAND]]))
    keep = a > 1e-4
    return float(np.max(np.abs(db(h[keep]) - db(a[keep]))))


@pytest.mark.parametrize("resonance", [0.0, Q_BUTTERWORTH_RES, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("mode", range(4))
def test_svf_magnitude_within_half_a_db_of_analytic(mode, resonance):
    ir = impulse_response(Svf, dict(mode=mode, cutoff_hz=1000.0, resonance=resonance))
    err = _response_error_db(ir, lambda f: nf.svf_response(f, 1000.0, resonance, SR,
                                                            MODES[mode]))
    print(f"\nsvf {MODES[mode]} resonance {resonance:.3f}: max |error| {err:.2e} dB")
    assert err < 0.5


@pytest.mark.parametrize("drive_db", [0.0, 12.0])
@pytest.mark.parametrize("resonance", [0.0, 0.3, 0.6, 0.9])
def test_ladder_small_signal_magnitude_within_half_a_db_of_analytic(resonance, drive_db):
    ir = impulse_response(Ladder, dict(cutoff_hz=1000.0, resonance=resonance,
                                       drive_db=drive_db))
    err = _response_error_db(ir, lambda f: nf.ladder_response(f, 1000.0, resonance, SR,
                                                               drive_db))
    print(f"\nladder resonance {resonance} drive {drive_db} dB: max |error| {err:.2e} dB")
    assert err < 0.5


@pytest.mark.parametrize("mode", range(2))
def test_onepole_magnitude_within_half_a_db_of_analytic(mode):
    ir = impulse_response(OnePole, dict(mode=mode, cutoff_hz=1000.0))
    err = _response_error_db(ir, lambda f: nf.onepole_response(f, 1000.0, SR,
                                                               ONEPOLE_MODES[mode]))
    print(f"\nonepole {ONEPOLE_MODES[mode]}: max |error| {err:.2e} dB")
    assert err < 0.5


def _crossing_hz(ir, level_db, falling=True):
    """First frequency where the measured magnitude crosses ``level_db`` (linear interpolation
    in dB between FFT bins of a zero-padded impulse response)."""
    n = 1 << 20
    f = np.fft.rfftfreq(n, 1.0 / SR)
    m = db(np.fft.rfft(ir, n))
    below = m < level_db if falling else m > level_db
    k = int(np.argmax(below[1:])) + 1
    return float(f[k - 1] + (level_db - m[k - 1]) / (m[k] - m[k - 1]) * (f[k] - f[k - 1]))


def test_svf_lowpass_is_3_db_down_at_the_cutoff_at_q_0707():
    for cutoff in (100.0, 1000.0, 10000.0):
        ir = impulse_response(Svf, dict(mode=0, cutoff_hz=cutoff, resonance=Q_BUTTERWORTH_RES))
        f3 = _crossing_hz(ir, -10 * math.log10(2.0))
        print(f"\nsvf lowpass Q 0.707 cutoff {cutoff:g} Hz: -3.01 dB at {f3:.3f} Hz")
        assert abs(f3 / cutoff - 1.0) < 1e-3


def test_svf_highpass_is_3_db_down_and_bandpass_peaks_at_0_db_at_the_cutoff():
    ir = impulse_response(Svf, dict(mode=1, cutoff_hz=1000.0, resonance=Q_BUTTERWORTH_RES))
    f3 = _crossing_hz(ir, -10 * math.log10(2.0), falling=False)
    assert abs(f3 / 1000.0 - 1.0) < 1e-3
    for resonance in (0.0, 0.5, 1.0):
        ir = impulse_response(Svf, dict(mode=2, cutoff_hz=1000.0, resonance=resonance))
        n = 1 << 20
        m = db(np.fft.rfft(ir, n))
        f = np.fft.rfftfreq(n, 1.0 / SR)
        k = int(np.argmax(m))
        assert abs(m[k]) < 0.01 and abs(f[k] - 1000.0) < 1.0


def test_onepole_is_3_db_down_at_the_cutoff():
    for mode, falling in ((0, True), (1, False)):
        ir = impulse_response(OnePole, dict(mode=mode, cutoff_hz=1000.0))
        f3 = _crossing_hz(ir, -10 * math.log10(2.0), falling=falling)
        print(f"\nonepole {ONEPOLE_MODES[mode]}: -3.01 dB at {f3:.3f} Hz")
        assert abs(f3 / 1000.0 - 1.0) < 1e-3


@pytest.mark.parametrize("cls,params,slope", [
    (Svf, dict(mode=0, resonance=0.0), -12.0),
    (Svf, dict(mode=1, resonance=0.0), 12.0),
    (Ladder, dict(resonance=0.0), -24.0),
    (OnePole, dict(mode=0), -6.0),
    (OnePole, dict(mode=1), 6.0),
])
def test_slopes_in_db_per_octave(cls, params, slope):
    """Far from the cutoff (a decade and more, and far below Nyquist, whose approach steepens
    the low-pass skirts: the bilinear warp) the skirts fall at 6 dB/oct per pole."""
    cutoff = 100.0 if slope < 0 else 2000.0
    ir = impulse_response(cls, dict(params, cutoff_hz=cutoff))
    n = 1 << 20
    m = db(np.fft.rfft(ir, n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    lo, hi = (10 * cutoff, 20 * cutoff) if slope < 0 else (cutoff / 20, cutoff / 10)
    got = np.interp(hi, f, m) - np.interp(lo, f, m)
    print(f"\n{cls.type_name} {params}: {got:+.2f} dB/oct")
    assert abs(got - slope) < 0.3


# ---- ladder self-oscillation ----------------------------------------------------------------

@pytest.mark.parametrize("cutoff", [250.0, 1000.0, 4000.0])
def test_ladder_self_oscillates_at_the_cutoff_at_maximum_resonance(cutoff):
    """No input but a 1e-4 kick: at resonance 1 a steady sine within 20 cents of the cutoff."""
    n = int(2 * SR)
    x = np.zeros((n, 1))
    x[0, 0] = 1e-4
    out = run(Ladder, x, dict(cutoff_hz=cutoff, resonance=1.0))[:, 0]
    tail = out[n // 2:]
    f = fft_pitch(tail, SR)
    cents = 1200.0 * math.log2(f / cutoff)
    quarter = len(tail) // 4
    steady = rms(tail[-quarter:]) / rms(tail[:quarter])
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    fr = np.fft.rfftfreq(len(tail), 1.0 / SR)
    h3 = spectrum[np.abs(fr - 3 * f) < 20].max() / spectrum.max()
    print(f"\nladder self-oscillation at {cutoff:g} Hz: {f:.2f} Hz ({cents:+.1f} cents), "
          f"peak {np.abs(tail).max():.3f}, 3rd harmonic {db(h3):.1f} dB")
    assert abs(cents) < 20
    assert abs(steady - 1.0) < 0.01
    assert 0.2 < np.abs(tail).max() < 1.0


def test_ladder_below_the_oscillation_threshold_rings_down_to_exact_silence():
    n = int(2 * SR)
    x = np.zeros((n, 1))
    x[0, 0] = 1.0
    out = run(Ladder, x, dict(cutoff_hz=1000.0, resonance=LADDER_OSC_RESONANCE - 0.02))[:, 0]
    assert np.all(out[-BLOCK * 10:] == 0.0)


# ---- cutoff sweeps and audio-rate modulation ------------------------------------------------

SWEEP_N = int(2 * SR)
_T = np.arange(SWEEP_N) / SR
SWEEP_X = 0.5 * (np.sin(2 * np.pi * 220 * _T) + 0.3 * np.sin(2 * np.pi * 1700 * _T)
                 + 0.1 * np.sin(2 * np.pi * 7000 * _T))
SWEEP_CUTOFF = 20.0 * 1000.0 ** (_T / 2.0)  # 20 Hz to 20 kHz in 2 s


def _sweep_figures(out, ref):
    """(rms error dB, strongest spectral component of the error dB), both relative to the
    exact reference (rms, strongest component)."""
    w = np.hanning(len(ref))
    spur = np.abs(np.fft.rfft((out - ref) * w)).max() / np.abs(np.fft.rfft(ref * w)).max()
    return rel_db(out - ref, ref), float(db(spur))


@pytest.mark.parametrize("name,cls,params,reference", [
    ("svf lowpass", Svf, dict(mode=0, resonance=0.5),
     lambda: nf.svf(SWEEP_X, SWEEP_CUTOFF, 0.5, SR, "lowpass")),
    ("svf highpass", Svf, dict(mode=1, resonance=0.5),
     lambda: nf.svf(SWEEP_X, SWEEP_CUTOFF, 0.5, SR, "highpass")),
    ("svf bandpass", Svf, dict(mode=2, resonance=0.9),
     lambda: nf.svf(SWEEP_X, SWEEP_CUTOFF, 0.9, SR, "bandpass")),
    ("svf notch", Svf, dict(mode=3, resonance=0.5),
     lambda: nf.svf(SWEEP_X, SWEEP_CUTOFF, 0.5, SR, "notch")),
    ("ladder", Ladder, dict(resonance=0.9),
     lambda: nf.ladder(SWEEP_X, SWEEP_CUTOFF, 0.9, SR)),
    ("onepole lowpass", OnePole, dict(mode=0),
     lambda: nf.onepole(SWEEP_X, SWEEP_CUTOFF, SR, "lowpass")),
    ("onepole highpass", OnePole, dict(mode=1),
     lambda: nf.onepole(SWEEP_X, SWEEP_CUTOFF, SR, "highpass")),
])
def test_full_range_sweep_has_no_zipper_spurs_above_minus_80_db(name, cls, params, reference):
    """Coefficients exact every 8 samples, ramped in between: a 20 Hz - 20 kHz sweep in 2 s
    against the filter with exact coefficients at every sample."""
    out = run(cls, SWEEP_X[:, None], dict(params, cutoff_hz=SWEEP_CUTOFF[:, None]))[:, 0]
    err_db, spur_db = _sweep_figures(out, np.array(reference()))
    print(f"\n{name} full sweep: error {err_db:.1f} dB rms, strongest error component "
          f"{spur_db:.1f} dB")
    assert err_db < -80 and spur_db < -80


@pytest.mark.parametrize("cls,params,reference", [
    (Svf, dict(mode=0, resonance=0.5), lambda x, c: nf.svf(x, c, 0.5, SR, "lowpass")),
    (Ladder, dict(resonance=0.5), lambda x, c: nf.ladder(x, c, 0.5, SR)),
    (OnePole, dict(mode=0), lambda x, c: nf.onepole(x, c, SR, "lowpass")),
])
def test_audio_rate_cutoff_modulation_adds_no_spurs_above_minus_70_db(cls, params, reference):
    """Cutoff 1 kHz swept +-1 octave by a 437 Hz sine, input a quiet 220 Hz sine (the ladder's
    tanh stays linear): everything the kernel outputs away from the exact filter's lines
    (220 + m * 437 Hz) is below -70 dB of the strongest line. (The sidebands' levels differ
    from the exact filter's by -42 to -53 dB rms: the modulation is followed at 6 kHz, every
    8 samples, and interpolated linearly.)"""
    n = int(SR)
    t = np.arange(n) / SR
    x = 0.01 * np.sin(2 * np.pi * 220 * t)
    cutoff = 1000.0 * 2.0 ** np.sin(2 * np.pi * 437 * t)
    out = run(cls, x[:, None], dict(params, cutoff_hz=cutoff[:, None]))[:, 0]
    ref = np.array(reference(x, cutoff))
    w = np.blackman(n)
    spec = np.abs(np.fft.rfft(out * w))
    spec_ref = np.abs(np.fft.rfft(ref * w))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    lines = np.zeros(len(f), dtype=bool)
    for m in range(-120, 120):
        lines |= np.abs(f - abs(220.0 + 437.0 * m)) < 4.0
    spur = float(db(spec[~lines].max() / spec_ref.max()))
    ref_floor = float(db(spec_ref[~lines].max() / spec_ref.max()))
    print(f"\n{cls.type_name} 437 Hz FM: strongest new component {spur:.1f} dB "
          f"(exact filter's floor {ref_floor:.1f} dB), difference "
          f"{rel_db(out - ref, ref):.1f} dB rms")
    assert spur < -70


# ---- release tails: denormals ----------------------------------------------------------------

def _block_driver(kernel):
    @njit
    def drive(bufs, io, P, pr, st, ctx, xin, nl, out):
        for b in range(xin.shape[0]):
            for i in range(BLOCK):
                for v in range(nl):
                    bufs[io[0], i, v] = xin[b, i, v]
            kernel(bufs, io, P, pr, st, ctx, 0, BLOCK, nl)
            for i in range(BLOCK):
                for v in range(nl):
                    out[b, i, v] = bufs[io[2], i, v]
    return drive


@pytest.mark.parametrize("cls,params,tail_s,memory", [
    (Svf, dict(mode=0, cutoff_hz=2000.0, resonance=1.0), 6.5, SVF_RECURSIVE),
    (Svf, dict(mode=2, cutoff_hz=2000.0, resonance=1.0), 6.5, SVF_RECURSIVE),
    (Ladder, dict(cutoff_hz=2000.0, resonance=0.8), 4.0, LADDER_RECURSIVE),
    (OnePole, dict(mode=0, cutoff_hz=20.0), 6.5, ONEPOLE_RECURSIVE),
])
def test_release_tail_into_silence_ends_in_exact_zeros_never_subnormal(cls, params, tail_s,
                                                                         memory):
    """A note (noise, 16 voices), then silence at the input while the filter rings down past
    where its state would turn subnormal: the state ends at exact zeros and no output sample is
    subnormal, which is what keeps the tail as cheap as a sounding note
    (``benchmarks/kernel_cost.py`` times both: 0.77-1.16x measured).

    Measured with the flush to zero removed (the kernels with DENORMAL_FLOOR 0, on an AMD EPYC):
    subnormal output from 5.3 s (svf, resonance 1 at 2 kHz), 5.3 s (one-pole at 20 Hz) and
    1.9 s (ladder) to the end, and those windows 10-25% (svf, one-pole) and 55% (ladder)
    dearer than sounding ones; Intel cores charge far more per subnormal operation.
    """
    lanes = 16
    rng = np.random.default_rng(4)
    sound_blocks = 750
    tail_blocks = int(tail_s * SR / BLOCK) // 250 * 250
    xin = np.zeros((sound_blocks + tail_blocks, BLOCK, lanes))
    xin[:sound_blocks] = 0.3 * rng.standard_normal((sound_blocks, BLOCK, lanes))
    out = np.zeros_like(xin)
    args = kernel_args(cls, 3, lanes, params)
    _block_driver(cls.kernel)(*args, xin, lanes, out)
    st = args[4]
    tiny = (out != 0.0) & (np.abs(out) < np.finfo(np.float64).tiny)
    assert not tiny.any()
    assert np.all(out[-250:] == 0.0)
    assert np.all(st[list(memory)] == 0.0)


# ---- modules and the engine -----------------------------------------------------------------

def test_module_declarations_are_sane_and_pass_plugin_validation():
    """check_module is what discovery runs on every entry point: metadata, finite output,
    no allocation in the kernel."""
    for cls in (Svf, Ladder, OnePole):
        assert cls.problems() == []
        assert _exercise(cls) == ""
        assert cls.scope == "any"
        assert cls.input_names() == ("in", "key")
        assert cls.inputs[1].default == "pitch"
    assert Svf.param("mode").choices == MODES
    assert Svf.param("mode").parse("notch") == 3.0
    assert OnePole.param("mode").choices == ONEPOLE_MODES


_REGISTRY = None


def _registry():
    global _REGISTRY
    if _REGISTRY is None:
        modules = dict(default_registry().modules)
        modules.update(svf=Svf, ladder=Ladder, onepole=OnePole)
        _REGISTRY = Registry(modules=modules)
    return _REGISTRY


def _preset(filter_type, filter_params, global_filter=""):
    global_graph = ""
    if global_filter:
        global_graph = f"""
[global]
connect = ["voices.left -> gf.in", "gf.out -> main.left", "gf.out -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.gf]
type = "{global_filter}"
cutoff_hz = 800
key_track = 1.0
[global.nodes.main]
type = "output"
"""
    return f"""
format = 1
name = "filters"
[voice]
polyphony = 4
connect = ["osc.out -> filt.in", "filt.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.osc]
type = "saw"
level = 0.5
[voice.nodes.filt]
type = "{filter_type}"
{filter_params}
[voice.nodes.amp]
type = "vca"
gain = 1.0
velocity_amount = 0.0
[voice.nodes.out]
type = "output"
{global_graph}
"""


def _render_note(text, note, seconds=0.5):
    plan = compile_preset(parse_preset(text, "<test>"), _registry(), SR, BLOCK)
    engine = make_engine(plan)
    n = int(seconds * SR)
    out = render(engine, n, [note_on(0, note), note_off(n - BLOCK, note)])
    return out[int(0.1 * SR):n - BLOCK, 0].astype(np.float64)


def _harmonic_levels_db(x, f0, count=8):
    """Levels of harmonics 1..count of ``x`` (pitch f0), in dB (8x zero padding)."""
    w = np.blackman(len(x))
    n = 8 * len(x)
    spec = np.abs(np.fft.rfft(x * w, n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    return db(np.array([spec[np.abs(f - h * f0) < 0.03 * f0].max()
                        for h in range(1, count + 1)]))


def _response_at_harmonics_db(filter_type, params, note):
    """The filter's gain at the saw's harmonics 1..8, relative to the fundamental: harmonic
    levels through the filter minus the saw's own (the window and the saw cancel)."""
    f0 = 440.0 * 2.0 ** ((note - 69) / 12)
    through = _harmonic_levels_db(_render_note(_preset(filter_type, params), note), f0)
    bare = _harmonic_levels_db(_render_note(_preset("gain", "gain_db = 0"), note), f0)
    gain = through - bare
    return gain - gain[0]


@pytest.mark.parametrize("filter_type,params", [
    ("svf", "mode = 0\ncutoff_hz = 600\nresonance = 0.3\nkey_track = 1.0"),
    ("ladder", "cutoff_hz = 600\nresonance = 0.3\nkey_track = 1.0"),
    ("onepole", "mode = 0\ncutoff_hz = 600\nkey_track = 1.0"),
])
def test_full_key_tracking_in_the_engine_keeps_the_timbre_across_octaves(filter_type, params):
    """At key_track 1 the cutoff moves with the voice pitch: the filter's gain at each harmonic
    of a saw is the same an octave up (within the bilinear warp's ~0.1 dB); without tracking
    the upper harmonics lose several dB."""
    tracked = np.abs(_response_at_harmonics_db(filter_type, params, 60)
                     - _response_at_harmonics_db(filter_type, params, 48)).max()
    flat = params.replace("key_track = 1.0", "key_track = 0.0")
    untracked = np.abs(_response_at_harmonics_db(filter_type, flat, 60)
                       - _response_at_harmonics_db(filter_type, flat, 48)).max()
    print(f"\n{filter_type}: gain at harmonics 1-8 an octave apart differs by up to "
          f"{tracked:.3f} dB tracked, {untracked:.2f} dB untracked")
    assert tracked < 0.2
    assert untracked > 3.0


@pytest.mark.parametrize("filter_type", ["svf", "ladder", "onepole"])
def test_filter_runs_in_the_global_graph_where_key_tracking_does_nothing(filter_type):
    """In the global graph the key input reads the pitch row, which is 0 there: key_track 1
    leaves the cutoff at cutoff_hz whatever note plays."""
    text = _preset("svf", "mode = 0\ncutoff_hz = 20000", global_filter=filter_type)
    out = _render_note(text, 69)
    assert np.all(np.isfinite(out)) and rms(out) > 0.01
    # The same 800 Hz low-pass as a voice filter without tracking sounds the same.
    voice_only = _render_note(_preset(filter_type, "cutoff_hz = 800"), 69)
    reference = _render_note(_preset("svf", "mode = 0\ncutoff_hz = 20000"), 69)
    assert rms(reference) > rms(out)
    assert abs(spectral_centroid(out, SR) / spectral_centroid(voice_only, SR) - 1.0) < 0.05
