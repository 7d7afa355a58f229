"""Gain staging of the shipped presets, measured through the real engine as tests/
test_preset_sound.py renders them, and the three module features they rest on.

Every preset in presets/:
- no DC: the mean of the output over a bass-line phrase with chords (the sounding 16 s), and
  the steady mean of held notes (a Blackman-Harris-weighted mean: a plain one over a
  non-integer number of periods of a 33 Hz tone leaks about -66 dB), both below -60 dBFS;
- 8-note chords at velocity 100 never reach the safety limiter, with a dB of margin (four
  voicings, struck together and strummed 100 samples apart);
- velocity 30 and 120 differ by at least the preset's chosen range (RMS of a single note).

Modules: the VCA's dB velocity law (``velocity_range_db``); the ladder's and the drive's
``dc_block_hz`` against their references (tests/naive_filters.py, tests/naive_effects.py), and
what they remove. Figures are printed (``pytest -s``).
"""

import math

import numpy as np
import pytest
from scipy.signal import get_window

import naive_effects
import naive_filters as nf
from helpers import compile_toml, make_engine, note_off, note_on, render, simple_toml
from instrument.modules.amp import Vca
from instrument.modules.drive_eq import Drive
from instrument.modules.ladder import Ladder
from instrument.layout import CTX_SAMPLE_RATE, CTX_VELOCITY, CTX_WIDTH, N_RESERVED_ROWS
from kernel_rig import run, run_fx
from live import REPO

SR = 48000
PRESETS = sorted((REPO / "presets").glob("*.toml"))
DC_LIMIT_DB = -60.0
CHORD_MARGIN_DB = -1.0  # the limiter's ceiling is -0.3 dBFS
VOICINGS = {
    "wide": (36, 43, 48, 52, 55, 60, 64, 67),
    "close": (60, 62, 64, 65, 67, 69, 71, 72),
    "mid": (48, 52, 55, 59, 60, 64, 67, 71),
    "low": (36, 40, 43, 47, 48, 52, 55, 59),
}
# dB between velocity 30 and 120 that each preset must at least give: the expressive ones 18,
# the starting points 15, pad and drone less.
VELOCITY_RANGE_DB = dict(bass=18, brass=18, keys=18, lead=18, pluck=18, init=15, poly16=15,
                         pad=10, drone=6)


def db(x):
    return 20.0 * math.log10(max(abs(float(x)), 1e-15))


def _render(path, events, seconds):
    engine = make_engine(compile_toml(path.read_text(), SR, 64))
    out = render(engine, int(seconds * SR), events).astype(np.float64)
    return out, engine


def _at(t):
    return int(round(t * SR))


def bass_line_with_chords():
    """120 BPM, 8 bars of eighth notes on a low line (33..46), alternately held 0.24 and
    0.12 s, velocities 70..120; four chords an octave up at velocity 90 over it, 3.8 s each.
    Sounds for 16 s; rendered to 20 s."""
    line = (36, 36, 43, 36, 39, 41, 43, 46, 33, 33, 40, 33, 36, 38, 40, 43)
    vels = (100, 70, 90, 75, 120, 80, 95, 72, 110, 74, 88, 78, 115, 82, 92, 71)
    ev = []
    for k in range(64):
        t = 0.25 * k
        n = line[k % 16]
        ev += [note_on(_at(t), n, vels[k % 16] / 127), note_off(_at(t + (0.24, 0.12)[k % 2]), n)]
    for bar, chord in enumerate(((48, 55, 60, 64), (45, 52, 57, 60), (41, 48, 53, 57),
                                 (43, 50, 55, 59))):
        for n in chord:
            ev += [note_on(_at(4.0 * bar + 0.01), n + 12, 90 / 127),
                   note_off(_at(4.0 * bar + 3.8), n + 12)]
    return ev


def held_notes():
    """C2 alone for 4 s, then a C3-G3-C4-E4 chord for 6 s, velocity 100."""
    ev = [note_on(0, 36, 100 / 127), note_off(_at(4.0), 36)]
    for n in (48, 55, 60, 64):
        ev += [note_on(_at(4.5), n, 100 / 127), note_off(_at(10.5), n)]
    return ev


def steady_mean_db(x):
    """The DC of a steady stretch, per channel, the larger: a Blackman-Harris-weighted mean."""
    w = get_window("blackmanharris", len(x), fftbins=False)[:, None]
    return db(np.abs((x * w).sum(axis=0) / w.sum()).max())


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_has_no_dc_over_a_bass_line_and_held_notes(path):
    out, _ = _render(path, bass_line_with_chords(), 20.0)
    phrase = db(np.abs(out[:_at(16.0)].mean(axis=0)).max())
    out, _ = _render(path, held_notes(), 14.0)
    held = max(steady_mean_db(out[_at(1.0):_at(4.0)]), steady_mean_db(out[_at(6.5):_at(10.5)]))
    print(f"\n{path.stem}: DC over the bass line {phrase:.1f} dBFS, held {held:.1f} dBFS")
    assert phrase < DC_LIMIT_DB
    assert held < DC_LIMIT_DB


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_eight_note_chord_at_velocity_100_stays_under_the_limiter(path):
    """Held 5 s (the drone's fade-in is 2.5 s), then released; struck together and strummed
    100 samples apart (the worst spacing found for keys, measured over 0-960 samples)."""
    worst = -math.inf
    for name, notes in VOICINGS.items():
        for stagger in (0, 100):
            ev = [note_on(k * stagger, n, 100 / 127) for k, n in enumerate(notes)]
            ev += [note_off(_at(5.0), n) for n in notes]
            out, engine = _render(path, ev, 7.0)
            peak = db(np.abs(out).max())
            assert engine.limiter_engaged_samples == 0, (name, stagger, peak)
            worst = max(worst, peak)
    print(f"\n{path.stem}: 8-note chords at velocity 100 peak at {worst:.1f} dBFS at most")
    assert worst < CHORD_MARGIN_DB


def _note_rms_db(path, velocity):
    note = 36 if path.stem == "bass" else 60
    out, _ = _render(path, [note_on(0, note, velocity / 127), note_off(_at(2.0), note)], 2.0)
    mono = out.mean(axis=1)
    return db(np.sqrt(np.mean(mono * mono)))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_velocity_30_to_120_spans_the_presets_range(path):
    got = _note_rms_db(path, 120) - _note_rms_db(path, 30)
    print(f"\n{path.stem}: velocity 30 -> 120: +{got:.1f} dB "
          f"(at least {VELOCITY_RANGE_DB[path.stem]})")
    assert got >= VELOCITY_RANGE_DB[path.stem]


def test_every_shipped_preset_has_a_velocity_range():
    assert sorted(VELOCITY_RANGE_DB) == [p.stem for p in PRESETS]


# ---- the VCA's velocity laws ----------------------------------------------------------------

def _sine_peak(vca, velocity):
    """Peak of a held sine (level 0.5) through a VCA with these parameter lines."""
    engine = make_engine(compile_toml(simple_toml("sine", vca=vca)))
    out = render(engine, 9600, [note_on(0, 69, velocity / 127)])
    return float(np.abs(out[4800:, 0]).max())


@pytest.mark.parametrize("range_db", [12.0, 30.0, 60.0])
def test_vca_db_velocity_law_puts_velocity_30_range_times_90_over_127_db_below_120(range_db):
    vca = f"gain = 1.0\nvelocity_amount = 0\nvelocity_range_db = {range_db}"
    top = _sine_peak(vca, 127)
    got = db(_sine_peak(vca, 120) / _sine_peak(vca, 30))
    assert got == pytest.approx(range_db * 90 / 127, abs=0.01)
    assert top == pytest.approx(0.5, rel=1e-4)  # velocity 127 passes the gain
    # Every velocity step is worth the same number of dB.
    steps = [db(_sine_peak(vca, v + 1) / _sine_peak(vca, v)) for v in (1, 64, 126)]
    assert np.allclose(steps, range_db / 127, atol=0.01)


def test_vca_without_velocity_range_keeps_the_linear_law_exactly():
    """velocity_range_db 0 (the default) multiplies by exactly 1.0: the kernel's output is
    in * cv * gain * (1 - amount + amount * velocity), bit for bit."""
    rng = np.random.default_rng(9)
    lanes = 8
    x, cv = rng.standard_normal((64, lanes)), rng.uniform(0.0, 1.0, (64, lanes))
    gain = rng.uniform(0.0, 2.0, (64, lanes))
    amount = rng.uniform(0.0, 1.0, (64, lanes))
    velocity = np.array([1, 30, 64, 100, 120, 127, 0, 90]) / 127
    bufs = np.zeros((N_RESERVED_ROWS + 3, 64, lanes))
    io = np.arange(N_RESERVED_ROWS, N_RESERVED_ROWS + 3)
    bufs[io[0]], bufs[io[1]] = x, cv
    P = np.stack([gain, amount, np.zeros((64, lanes))])
    st = np.zeros((Vca.prepare(SR, 64), lanes))
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = SR
    ctx[CTX_VELOCITY] = velocity
    for s0, s1 in ((0, 1), (1, 20), (20, 64)):
        Vca.kernel(bufs, io, P, np.arange(3), st, ctx, s0, s1, lanes)
    assert np.array_equal(bufs[io[2]], x * cv * gain * (1.0 - amount + amount * velocity))


def test_vca_laws_multiply():
    both = "gain = 1.0\nvelocity_amount = 0.5\nvelocity_range_db = 20"
    v = 64 / 127
    want = 0.5 * (0.5 + 0.5 * v) * 10 ** (-20 * (1 - v) / 20)
    assert _sine_peak(both, 64) == pytest.approx(want, rel=1e-4)


# ---- the DC blockers of the ladder and the drive --------------------------------------------

def _saw(n, f0=65.40639, amplitude=0.5):
    t = np.arange(n) / SR
    return amplitude * (2.0 * ((f0 * t) % 1.0) - 1.0)


def test_ladder_dc_block_matches_reference():
    x = 0.5 * np.random.default_rng(3).standard_normal((40 * 64, 2))
    params = dict(cutoff_hz=np.array([300.0, 2000.0]), resonance=0.6, drive_db=12.0,
                  dc_block_hz=np.array([5.0, 20.0]))
    out = run(Ladder, x, params, segments=(0, 1, 5, 33))
    for v, corner in enumerate((5.0, 20.0)):
        ref = np.array(nf.ladder(x[:, v], params["cutoff_hz"][v], 0.6, SR, 12.0,
                                 dc_block_hz=corner))
        assert np.max(np.abs(out[:, v] - ref)) < 5e-5 * max(1.0, np.abs(ref).max())


def test_ladder_dc_block_response_is_the_ladders_times_a_one_pole_high_pass():
    n = 1 << 18
    x = np.zeros((n, 1))
    x[0, 0] = 1e-6
    ir = run(Ladder, x, dict(cutoff_hz=1000.0, resonance=0.5, dc_block_hz=5.0))[:, 0] / 1e-6
    f = np.fft.rfftfreq(n, 1.0 / SR)
    band = (f > 0.0) & (f < 0.4 * SR)
    h = np.abs(np.fft.rfft(ir))[band]
    a = np.abs(np.array([nf.ladder_response(fr, 1000.0, 0.5, SR, dc_block_hz=5.0)
                         for fr in f[band]]))
    keep = a > 1e-4
    err = np.max(np.abs(20 * np.log10(h[keep] / a[keep])))
    print(f"\nladder with dc_block_hz 5: max |error| {err:.2e} dB against the analytic response")
    assert err < 0.5
    at_a0 = 20 * math.log10(abs(nf.onepole_response(27.5, 5.0, SR, "highpass")))
    assert -0.15 < at_a0 < -0.13  # A0 loses 0.14 dB (the module docstring's figure)


def test_ladder_dc_block_removes_the_dc_resonance_and_drive_make():
    """A C2 saw at resonance 0.45, drive 6 dB (the bass preset's ladder): the output's steady
    mean, without and with a 5 Hz blocker; and the price, the saturation bound overshot."""
    x = _saw(4 * SR)[:, None]
    params = dict(cutoff_hz=250.0, resonance=0.45, drive_db=6.0)
    plain = run(Ladder, x, params)[SR:, :]
    blocked = run(Ladder, x, dict(params, dc_block_hz=5.0))[SR:, :]
    off, on = steady_mean_db(plain), steady_mean_db(blocked)
    print(f"\nladder C2 saw: mean {off:.1f} dBFS, with dc_block_hz 5 {on:.1f} dBFS")
    assert off > -50.0 and on < -120.0
    t = np.arange(24000) / SR
    saw = (4.0 * ((110.0 * t) % 1.0) - 2.0)[:, None]
    ratios = []
    for drive_db in (0.0, 12.0, 24.0):
        for resonance in (0.0, 0.5, 1.0):
            out = run(Ladder, saw, dict(cutoff_hz=3000.0, resonance=resonance,
                                        drive_db=drive_db, dc_block_hz=5.0))
            bound = (1.0 + nf.LADDER_K_MAX * resonance) / math.sqrt(10.0 ** (drive_db / 20.0))
            ratios.append(np.abs(out).max() / bound)
    print(f"ladder with dc_block_hz 5: peak / saturation bound up to {max(ratios):.3f}")
    assert 1.07 < max(ratios) < 1.12


def test_drive_dc_block_matches_reference():
    n = 5000
    rng = np.random.default_rng(5)
    xl, xr = 0.5 * rng.standard_normal(n) + 0.2, 0.5 * rng.standard_normal(n) - 0.1
    mix = np.linspace(0.2, 1.0, n)
    corner = np.where(np.arange(n) < 2560, 5.0, 12.0)  # changes on a block edge
    left, right = run_fx(Drive, xl, xr, segments=(0, 17, 40), drive_db=12.0, mix=mix,
                         output_db=-3.0, dc_block_hz=corner)
    for got, x in ((left, xl), (right, xr)):
        ref = naive_effects.drive(x, [12.0] * n, mix, [-3.0] * n, dc_block_hz=corner)
        assert np.max(np.abs(got - np.array(ref))) < 1e-10


def test_drive_dc_block_removes_the_mean_saturation_gives_an_asymmetric_wave():
    """A DC-free but asymmetric wave (a C2 saw through the bass preset's ladder) driven 8 dB:
    the symmetric tanh gives it a mean; the blocker at 5 Hz takes it out."""
    x = run(Ladder, _saw(4 * SR)[:, None], dict(cutoff_hz=250.0, resonance=0.45,
                                                drive_db=6.0, dc_block_hz=5.0))[:, 0]
    plain, _ = run_fx(Drive, x, drive_db=8.0, mix=1.0)
    blocked, _ = run_fx(Drive, x, drive_db=8.0, mix=1.0, dc_block_hz=5.0)
    into = steady_mean_db(x[SR:, None])
    off = steady_mean_db(plain[SR:, None])
    on = steady_mean_db(blocked[SR:, None])
    print(f"\ndrive 8 dB: input mean {into:.1f} dBFS, output {off:.1f} dBFS, "
          f"with dc_block_hz 5 {on:.1f} dBFS")
    assert into < -120.0 and off > -50.0 and on < -120.0
