"""The engine measured from its output: pitch, sample accuracy, graph features, plan swaps,
safety (limiter, non-finite guard, bad events) and determinism. Everything renders offline
through ``Engine.process_block``; nothing is mocked."""

import math

import numpy as np
import pytest

from helpers import (
    RATES, bend, cents, compile_toml, fft_pitch, make_engine, midi_hz, note_off,
    note_on, param, render, rms, simple_toml, spectral_centroid, test_registry,
)
from instrument.engine.engine import DEFAULT_CROSSFADE_MS
from instrument.engine.events import CC, CC_SUSTAIN, NOTE_ON, PARAM
from instrument.engine.output_stage import CEILING
from instrument.layout import CFG_MONO_VOICE
from instrument.modules.registry import check_module

SR = 48000
BLOCK = 64


def _steady(out, sample_rate, start_s=0.1, length_s=1.0):
    a = int(start_s * sample_rate)
    return out[a:a + int(length_s * sample_rate), 0]


# ---- pitch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", RATES)
def test_sine_note_69_is_440_hz_within_a_tenth_of_a_cent(sample_rate):
    engine = make_engine(compile_toml(simple_toml("sine"), sample_rate, BLOCK))
    out = render(engine, int(1.2 * sample_rate), [note_on(0, 69)])
    f = fft_pitch(_steady(out, sample_rate), sample_rate)
    assert abs(cents(f, 440.0)) < 0.1, f


@pytest.mark.parametrize("sample_rate", RATES)
def test_saw_note_69_is_440_hz_within_one_cent(sample_rate):
    engine = make_engine(compile_toml(simple_toml("saw"), sample_rate, BLOCK))
    out = render(engine, int(1.2 * sample_rate), [note_on(0, 69)])
    f = fft_pitch(_steady(out, sample_rate), sample_rate)
    assert abs(cents(f, 440.0)) < 1.0, f


@pytest.mark.parametrize("osc, tolerance_cents", [("sine", 0.1), ("saw", 1.0)])
def test_note_60_is_261_63_hz(osc, tolerance_cents):
    engine = make_engine(compile_toml(simple_toml(osc), SR, BLOCK))
    out = render(engine, int(1.2 * SR), [note_on(0, 60)])
    f = fft_pitch(_steady(out, SR), SR)
    assert f == pytest.approx(261.63, abs=0.01)
    assert abs(cents(f, midi_hz(60))) < tolerance_cents, f


@pytest.mark.parametrize("transpose_st, detune_cents", [(7, 0.0), (-12, 0.0), (0, 37.5),
                                                         (0, -100.0), (5, -20.0)])
def test_transpose_and_detune_shift_pitch_by_their_ratio(transpose_st, detune_cents):
    toml = simple_toml("sine", osc_params=f"level = 0.5\ntranspose_st = {transpose_st}\n"
                                          f"detune_cents = {detune_cents}")
    engine = make_engine(compile_toml(toml, SR, BLOCK))
    out = render(engine, int(1.2 * SR), [note_on(0, 69)])
    f = fft_pitch(_steady(out, SR), SR)
    expected = 440.0 * 2.0 ** ((transpose_st + detune_cents / 100.0) / 12.0)
    assert abs(cents(f, expected)) < 0.1, (f, expected)


@pytest.mark.parametrize("amount, range_st, shift_st", [(1.0, 2.0, 2.0), (-1.0, 2.0, -2.0),
                                                        (0.5, 12.0, 6.0)])
def test_pitch_bend_shifts_pitch_by_amount_times_range_after_smoothing(amount, range_st,
                                                                       shift_st):
    engine = make_engine(compile_toml(simple_toml("sine", bend_range_st=range_st), SR, BLOCK))
    start = int(0.1 * SR)
    out = render(engine, int(1.2 * SR), [note_on(0, 69), bend(start, amount)])
    before = fft_pitch(out[int(0.02 * SR):start, 0], SR)
    after = fft_pitch(out[start + int(0.05 * SR):, 0], SR)  # 50 ms: far past the 5 ms smoothing
    assert abs(cents(before, 440.0)) < 1.0
    assert abs(cents(after, 440.0) - 100.0 * shift_st) < 0.1, after


# ---- sample accuracy ------------------------------------------------------------------------

ENV_DIRECT = """
format = 1
[voice]
polyphony = 4
connect = ["env.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.env]
type = "adsr"
attack_ms = 0
decay_ms = 0
sustain = 1
release_ms = 0
[voice.nodes.amp]
type = "vca"
gain = 0.5
velocity_amount = 0
[voice.nodes.out]
type = "output"
"""


@pytest.mark.parametrize("block_size", [16, 64, 256])
def test_note_on_at_offset_k_is_silent_before_k_and_sounds_from_k(block_size):
    """With a 0 ms attack the envelope is at full level on the note's own sample."""
    plan = compile_toml(ENV_DIRECT, SR, block_size)
    for k in sorted({0, 1, 5, block_size // 2, block_size - 1}):
        for first_block in (0, 3):  # in the first block and in a later one
            engine = make_engine(plan)
            frame = first_block * block_size + k
            out = render(engine, frame + 2 * block_size, [note_on(frame, 60)])
            assert np.all(out[:frame] == 0.0), (k, first_block)
            assert np.all(out[frame:] == np.float32(0.5)), (k, first_block, out[frame:frame + 3])


@pytest.mark.parametrize("block_size", [16, 64, 256])
def test_note_off_at_offset_k_silences_from_k_with_zero_release(block_size):
    plan = compile_toml(ENV_DIRECT, SR, block_size)
    for k in sorted({0, 3, block_size - 1}):
        engine = make_engine(plan)
        frame = 2 * block_size + k
        out = render(engine, frame + 2 * block_size, [note_on(0, 60), note_off(frame, 60)])
        assert np.all(out[:frame] == np.float32(0.5)), k
        assert np.all(out[frame:] == 0.0), k


@pytest.mark.parametrize("block_size", [16, 64, 256])
def test_saw_started_at_offset_k_is_the_offset_0_render_shifted_by_k(block_size):
    plan = compile_toml(simple_toml("saw", env="attack_ms = 2\nsustain = 0.8"), SR, block_size)
    n = 4 * block_size
    reference = render(make_engine(plan), n, [note_on(0, 57)])
    for k in sorted({1, 7, block_size // 2 + 1, block_size + 3}):
        out = render(make_engine(plan), n + k, [note_on(k, 57)])
        assert np.all(out[:k] == 0.0), k
        assert out[k + 1, 0] != 0.0
        np.testing.assert_allclose(out[k:k + n], reference[:n], atol=2e-7, err_msg=f"k={k}")


# ---- graph features -------------------------------------------------------------------------

FAN_IN = """
format = 1
[voice]
connect = ["osc1.out -> amp.in", "osc2.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.osc1]
type = "sine"
level = 0.2
[voice.nodes.osc2]
type = "sine"
level = 0.2
[voice.nodes.amp]
type = "vca"
gain = 1
velocity_amount = 0
[voice.nodes.out]
type = "output"
"""


def test_fan_in_of_two_equal_oscillators_doubles_the_level():
    single = render(make_engine(compile_toml(simple_toml("sine", osc_params="level = 0.2"),
                                             SR, BLOCK)), SR // 2, [note_on(0, 69)])
    double = render(make_engine(compile_toml(FAN_IN, SR, BLOCK)), SR // 2, [note_on(0, 69)])
    ratio = rms(double[:, 0]) / rms(single[:, 0])
    assert ratio == pytest.approx(2.0, rel=1e-4)
    np.testing.assert_allclose(double, 2.0 * single, atol=1e-6)


FILTER_ENV = """
format = 1
[voice]
connect = ["osc.out -> filt.in", "filt.out -> amp.in", "amp.out -> out.in" {mod}]
[voice.nodes.osc]
type = "saw"
level = 0.3
[voice.nodes.filt]
type = "svf_lowpass"
cutoff_hz = 200
resonance = 0.1
[voice.nodes.fenv]
type = "adsr"
attack_ms = 1
decay_ms = 300
sustain = 0
release_ms = 100
[voice.nodes.amp]
type = "vca"
gain = 1
velocity_amount = 0
[voice.nodes.out]
type = "output"
"""


def test_a_mono_voice_sounds_the_same_on_both_sides_and_a_panned_voice_keeps_its_sides():
    """A voice graph patching only the output's ``in`` is summed once (CFG_MONO_VOICE) into
    both sides; one that patches ``left``/``right`` is summed per side."""
    mono_plan = compile_toml(simple_toml("saw"), SR, BLOCK)
    assert mono_plan.cfg[CFG_MONO_VOICE] == 1
    out = render(make_engine(mono_plan), SR // 4, [note_on(0, 60), note_on(0, 67)])
    assert rms(out[:, 0]) > 0.05 and np.array_equal(out[:, 0], out[:, 1])
    panned = simple_toml("saw").replace('"amp.out -> out.in"', '"amp.out -> out.left"')
    stereo_plan = compile_toml(panned, SR, BLOCK)
    assert stereo_plan.cfg[CFG_MONO_VOICE] == 0
    out = render(make_engine(stereo_plan), SR // 4, [note_on(0, 60)])
    assert rms(out[:, 0]) > 0.05 and np.max(np.abs(out[:, 1])) == 0.0


def test_envelope_into_cutoff_raises_spectral_centroid_at_its_peak():
    def centroids(mod):
        engine = make_engine(compile_toml(FILTER_ENV.format(mod=mod), SR, BLOCK))
        out = render(engine, int(1.2 * SR), [note_on(0, 45)])[:, 0]
        peak = spectral_centroid(out[int(0.002 * SR):int(0.042 * SR)], SR)  # envelope near 1
        sustain = spectral_centroid(out[int(0.8 * SR):int(0.84 * SR)], SR)  # envelope at 0
        return peak, sustain

    peak, sustain = centroids(', "fenv.out -> filt.cutoff_hz * 0.6"')
    flat_peak, flat_sustain = centroids("")
    assert peak > 3.0 * sustain, (peak, sustain)
    assert flat_peak == pytest.approx(flat_sustain, rel=0.15)  # without the patch: no change
    assert sustain == pytest.approx(flat_sustain, rel=0.05)  # envelope at 0: base cutoff


MACRO_PRESET = simple_toml("sine", osc_params="level = 0.5", extra="""
[macros.tone]
label = "Tone"
targets = [
  { param = "osc.detune_cents", from = -50, to = 50 },
  { param = "amp.gain", from = 0.2, to = 1.0 },
]
""")


@pytest.mark.parametrize("macro", [0.0, 0.25, 0.75, 1.0])
def test_macro_moves_each_target_to_its_own_point_and_the_sound_follows(macro):
    engine = make_engine(compile_toml(MACRO_PRESET, SR, BLOCK))
    engine.set_macro("tone", macro)
    detune = -50.0 + 100.0 * macro
    gain = 0.2 + 0.8 * macro
    assert engine.get_param("osc.detune_cents") == pytest.approx(detune, abs=1e-9)
    assert engine.get_param("amp.gain") == pytest.approx(gain, abs=1e-9)
    out = render(engine, int(1.2 * SR), [note_on(0, 69)])
    steady = _steady(out, SR)
    assert cents(fft_pitch(steady, SR), 440.0) == pytest.approx(detune, abs=0.1)
    assert np.abs(steady).max() == pytest.approx(0.5 * gain, rel=1e-3)


def test_macro_on_log_and_exp_parameters_moves_in_normalized_units():
    """poly16's cutoff macro spans 80..4000 Hz on a log curve: the middle is the geometric
    mean; the attack macro moves two EXP-curve times, each within its own range."""
    from instrument.presets import compile_file
    from instrument.bench import PRESET_DIR

    plan = compile_file(PRESET_DIR / "poly16.toml", SR, BLOCK)
    engine = make_engine(plan)
    engine.set_macro("cutoff", 0.5)
    assert engine.get_param("filt.cutoff_hz") == pytest.approx(math.sqrt(80 * 4000), rel=1e-9)
    engine.set_macro("detune", 0.5)
    assert engine.get_param("osc1.detune_cents") == pytest.approx(-12.5, abs=1e-9)
    assert engine.get_param("osc2.detune_cents") == pytest.approx(12.5, abs=1e-9)
    for m in (0.0, 0.3, 1.0):
        engine.set_macro("attack", m)
        for path in ("aenv.attack_ms", "fenv.attack_ms"):
            spec = plan.params[plan.param_index(path)].spec
            lo, hi = spec.to_norm(1.0), spec.to_norm(1500.0)
            assert engine.get_param(path) == pytest.approx(spec.from_norm(lo + m * (hi - lo)))
    assert engine.get_param("aenv.attack_ms") == pytest.approx(1500.0)


# ---- plan swap ------------------------------------------------------------------------------

SWAP_A = simple_toml("saw", osc_params="level = 0.3",
                     env="attack_ms = 5\ndecay_ms = 100\nsustain = 0.7\nrelease_ms = 200",
                     vca="gain = 0.5\nvelocity_amount = 0")
SWAP_B = simple_toml("sine", osc_params="level = 0.4",
                     env="attack_ms = 5\ndecay_ms = 100\nsustain = 0.7\nrelease_ms = 200",
                     vca="gain = 0.5\nvelocity_amount = 0")
CHORD = (60, 64, 67)


def _max_step(x):
    return float(np.abs(np.diff(x.astype(np.float64))).max())


SMOOTH_A = SWAP_B.replace("level = 0.4", "level = 0.3")
SMOOTH_B = (SWAP_B.replace("osc.out", "tone.out")
            .replace("[voice.nodes.osc]", "[voice.nodes.tone]\ntranspose_st = 12"))


def test_swap_keeps_a_held_chord_sounding_without_a_jump():
    """Sine chord -> the same chord an octave up (a node of another name, so nothing carries
    over): smooth signals, so a click at the swap would stand out."""
    plan_a = compile_toml(SMOOTH_A, SR, BLOCK)
    plan_b = compile_toml(SMOOTH_B, SR, BLOCK)
    swap_block = int(0.5 * SR) // BLOCK
    s = swap_block * BLOCK
    fade = int(round(DEFAULT_CROSSFADE_MS * 0.001 * SR))

    def control(b, engine):
        if b == swap_block:
            engine.swap(plan_b)

    engine = make_engine(plan_a)
    out = render(engine, int(1.2 * SR), [note_on(0, n) for n in CHORD], on_block=control)[:, 0]
    assert engine.active_voices == len(CHORD)
    assert sorted(engine.current.voices[:3, 1]) == list(CHORD)
    # Keeps sounding: every 5 ms window across and after the swap holds a real level.
    window = int(0.005 * SR)
    level_before = rms(out[s - int(0.1 * SR):s])
    for a in range(s, s + int(0.3 * SR), window):
        assert rms(out[a:a + window]) > 0.3 * level_before, (a - s) / SR
    # No jump: across the fade the output is exactly the equal-power mix of the two plans'
    # own outputs (plan A going on, plan B struck at the swap): no transient of its own.
    ref_a = render(make_engine(plan_a), int(1.2 * SR),
                   [note_on(0, n) for n in CHORD])[:, 0].astype(np.float64)
    ref_b = render(make_engine(plan_b), int(0.6 * SR),
                   [note_on(0, n) for n in CHORD])[:, 0].astype(np.float64)
    t = np.arange(fade) / fade
    mix = np.cos(0.5 * np.pi * t) * ref_a[s:s + fade] + np.sin(0.5 * np.pi * t) * ref_b[:fade]
    np.testing.assert_allclose(out[s:s + fade], mix, atol=1e-6)
    # And the largest sample-to-sample step around the swap stays within what the two plans
    # do on their own over the same stretch (times sqrt 2: cos + sin peaks there mid-fade).
    around = _max_step(out[s - 256:s + fade + 256])
    normal = max(_max_step(ref_a[s - 256:s + fade + 256]), _max_step(ref_b[:fade + 256]))
    assert around <= math.sqrt(2.0) * normal, (around, normal)
    # After the crossfade only plan B sounds: exactly plan B with the chord struck at the swap.
    after = out[s + fade:s + fade + int(0.5 * SR)]
    np.testing.assert_allclose(after, ref_b[fade:fade + len(after)], atol=1e-6)


def test_hot_reload_swap_plays_the_edited_file_where_the_player_moved_nothing():
    """Saw -> sine with the same node names and osc.level 0.3 -> 0.4 in the file; nobody moved
    osc.level live, so after the crossfade the output is exactly plan B as written."""
    plan_a = compile_toml(SWAP_A, SR, BLOCK)
    plan_b = compile_toml(SWAP_B, SR, BLOCK)
    swap_block = int(0.5 * SR) // BLOCK
    s = swap_block * BLOCK
    fade = int(round(DEFAULT_CROSSFADE_MS * 0.001 * SR))

    def control(b, engine):
        if b == swap_block:
            engine.swap(plan_b)

    out = render(make_engine(plan_a), int(1.2 * SR), [note_on(0, n) for n in CHORD],
                 on_block=control)[:, 0]
    fresh = render(make_engine(compile_toml(SWAP_B, SR, BLOCK)), int(0.6 * SR),
                   [note_on(0, n) for n in CHORD])[:, 0]
    after = out[s + fade:s + fade + int(0.5 * SR)]
    np.testing.assert_allclose(after, fresh[fade:fade + len(after)], atol=1e-6)


def test_swap_crossfade_lasts_20_ms_then_the_old_plan_is_gone():
    """Swap to a silent plan: the output is the old plan times cos(pi/2 * t / 20 ms), then 0."""
    plan_a = compile_toml(SWAP_A, SR, BLOCK)
    silent = compile_toml(SWAP_A.replace("gain = 0.5", "gain = 0.0"), SR, BLOCK)
    swap_block = int(0.3 * SR) // BLOCK
    s = swap_block * BLOCK
    events = [note_on(0, n) for n in CHORD]

    def control(b, engine):
        if b == swap_block:
            engine.swap(silent, carry_params=False)

    engine = make_engine(plan_a)
    out = render(engine, int(0.6 * SR), events, on_block=control)[:, 0].astype(np.float64)
    ref = render(make_engine(plan_a), int(0.6 * SR), events)[:, 0].astype(np.float64)
    assert np.array_equal(out[:s], ref[:s])
    fade = engine.crossfade_frames
    assert fade == round(0.020 * SR)
    n = np.arange(fade)
    expected = ref[s:s + fade] * np.cos(0.5 * np.pi * n / fade)
    np.testing.assert_allclose(out[s:s + fade], expected, atol=1e-6)
    last_audible = s + int(np.flatnonzero(np.abs(out[s:]) > 1e-6)[-1])
    assert (last_audible - s) / SR * 1000 == pytest.approx(20.0, abs=0.5)
    assert np.all(np.abs(out[s + fade:]) < 1e-6)
    assert engine.old is None and len(engine.retired) == 1  # released on the control side
    engine.release_retired()
    assert engine.retired == []


@pytest.mark.parametrize("carry", [True, False])
def test_swap_carries_the_players_moves_by_name_only_when_asked(carry):
    plan_a = compile_toml(SWAP_A, SR, BLOCK)
    plan_b = compile_toml(SWAP_B, SR, BLOCK)  # same node names; amp.gain 0.5 in the preset
    engine = make_engine(plan_a)
    engine.set_param("amp.gain", 0.25)
    engine.set_param("env.sustain", 0.5)
    swap_block = int(0.3 * SR) // BLOCK

    def control(b, eng):
        if b == swap_block:
            eng.swap(plan_b, carry_params=carry)

    out = render(engine, int(1.0 * SR), [note_on(0, 69)], on_block=control)[:, 0]
    assert engine.current.plan is plan_b
    gain = 0.25 if carry else 0.5  # set live on plan A / plan B's preset value
    sustain = 0.5 if carry else 0.7
    level = 0.4  # never moved live: plan B's preset value either way
    assert engine.get_param("amp.gain") == pytest.approx(gain)
    assert engine.get_param("env.sustain") == pytest.approx(sustain)
    assert engine.get_param("osc.level") == pytest.approx(level)
    # The sound agrees: sine peak = level * sustain * gain.
    late = out[int(0.7 * SR):int(0.9 * SR)]
    assert np.abs(late).max() == pytest.approx(level * sustain * gain, rel=2e-3)


def test_swap_keeps_notes_held_by_the_sustain_pedal():
    """Keys up, pedal down: the chord still sounds for the player, and a preset reload must
    not cut it."""
    plan_a = compile_toml(SWAP_A, SR, BLOCK)
    plan_b = compile_toml(SWAP_B, SR, BLOCK)
    swap_block = int(0.5 * SR) // BLOCK
    s = swap_block * BLOCK
    events = [note_on(0, n) for n in CHORD] + [(100, CC, 0, CC_SUSTAIN, 1.0)]
    events += [note_off(int(0.2 * SR), n) for n in CHORD]

    def control(b, engine):
        if b == swap_block:
            engine.swap(plan_b)

    engine = make_engine(plan_a)
    out = render(engine, int(1.0 * SR), events, on_block=control)[:, 0]
    level_before = rms(out[s - int(0.1 * SR):s])
    assert level_before > 0.05
    late = out[s + int(0.2 * SR):s + int(0.4 * SR)]
    assert engine.active_voices == len(CHORD)
    assert rms(late) > 0.5 * level_before, (rms(late), level_before)


# ---- safety ---------------------------------------------------------------------------------

LOUD = """
format = 1
[voice]
polyphony = 16
connect = ["osc.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.osc]
type = "saw"
level = 1
[voice.nodes.amp]
type = "vca"
gain = 2
velocity_amount = 0
[voice.nodes.out]
type = "output"
[global]
connect = ["voices.left -> boost.in", "boost.out -> main.left", "voices.right -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.boost]
type = "gain"
gain_db = 12
[global.nodes.main]
type = "output"
"""


def test_many_loud_voices_never_exceed_the_limiter_ceiling():
    plan = compile_toml(LOUD, SR, BLOCK)
    engine = make_engine(plan)
    events = [note_on(j * 7, 36 + 5 * j) for j in range(16)]
    events += [note_off(int(0.4 * SR), 36 + 5 * j) for j in range(0, 16, 2)]
    swap_block = int(0.6 * SR) // BLOCK

    def control(b, eng):
        if b == swap_block:  # two loud plans summed during the crossfade, too
            eng.swap(compile_toml(LOUD, SR, BLOCK))

    out = render(engine, int(1.0 * SR), events, on_block=control)
    peak = float(np.abs(out).max())
    assert 20 * math.log10(peak) <= -0.3 + 1e-5, peak
    assert peak > 0.9 * CEILING  # the test did drive it to the ceiling
    assert engine.limiter_engaged_samples > 0
    assert np.all(np.isfinite(out))


UNSTABLE = """
format = 1
[voice]
polyphony = 4
connect = ["osc.out -> boom.in", "boom.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.osc]
type = "sine"
level = 0.3
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


def test_a_blown_up_graph_gives_silence_is_reset_and_recovers():
    from helpers import Blowup

    assert check_module(Blowup, run_kernel=False) == ""
    plan = compile_toml(UNSTABLE, SR, BLOCK, registry=test_registry())
    growth = plan.param_index("boom.growth")
    stable, unstable = plan.params[growth].spec.to_norm(0.5), plan.params[growth].spec.to_norm(2)
    blow = int(0.1 * SR)
    second = int(0.3 * SR)
    events = [note_on(0, 69), param(blow, growth, unstable),
              param(second - BLOCK, growth, stable), note_on(second, 69)]
    engine = make_engine(plan)
    out = render(engine, int(0.8 * SR), events)
    assert np.all(np.isfinite(out))
    assert float(np.abs(out).max()) <= CEILING + 1e-6
    assert engine.nonfinite_resets >= 1
    resets = engine.nonfinite_resets
    # Within 2 048 samples (growth 2: overflow after ~1 030) the guard trips and the output
    # is exact silence until the next note.
    silent_from = blow + 2048 + BLOCK
    assert np.all(out[silent_from:second] == 0.0)
    assert engine.active_voices == 1  # the second note plays on a fresh voice
    # Recovered: the second note sounds, and no further reset happened.
    assert engine.nonfinite_resets == resets
    later = slice(second + int(0.1 * SR), second + int(0.3 * SR))
    assert rms(out[later, 0]) > 0.1


def test_after_a_blow_up_the_next_note_plays_at_full_level_within_10_ms():
    """The guard resets the plan; the limiter must not stay slammed by the huge (finite)
    samples that came just before the overflow."""
    plan = compile_toml(UNSTABLE, SR, BLOCK, registry=test_registry())
    growth = plan.param_index("boom.growth")
    spec = plan.params[growth].spec
    blow = int(0.1 * SR)
    second = int(0.3 * SR)
    events = [note_on(0, 69), param(blow, growth, spec.to_norm(2.0)),
              param(second - BLOCK, growth, spec.to_norm(0.5)), note_on(second, 69)]
    out = render(make_engine(plan), int(0.5 * SR), events)[:, 0]
    fresh = render(make_engine(plan), int(0.2 * SR), [note_on(0, 69)])[:, 0]
    a = int(0.010 * SR)
    window = slice(a, a + int(0.05 * SR))
    ratio = rms(out[second:][window]) / rms(fresh[window])
    assert ratio > 0.9, ratio


def test_a_slowly_running_away_graph_does_not_blast_full_scale_for_long():
    """A filter that blows up slowly (growth 1.01 per sample) takes ~1.5 s to overflow to inf;
    until then only the limiter stands between it and the speakers. The guard should treat a
    mix far above any sane level as blown up too, so the full-scale burst stays short."""
    plan = compile_toml(UNSTABLE, SR, BLOCK, registry=test_registry())
    growth = plan.param_index("boom.growth")
    blow = int(0.1 * SR)
    engine = make_engine(plan)
    events = [note_on(0, 69), param(blow, growth, plan.params[growth].spec.to_norm(1.01))]
    out = render(engine, int(2.0 * SR), events)[:, 0]
    assert np.all(np.isfinite(out))
    loud_ms = np.count_nonzero(np.abs(out[blow:]) > 0.7) / SR * 1000  # base level is 0.6
    assert engine.nonfinite_resets >= 1
    assert loud_ms < 100.0, f"{loud_ms:.0f} ms at full scale before the guard tripped"


def test_bad_events_are_counted_and_change_nothing_else():
    plan = compile_toml(simple_toml("saw"), SR, BLOCK)
    n_params = len(plan.params)
    good = [note_on(0, 60), note_on(10, 64)]
    bad = [(5, NOTE_ON, 0, math.nan, 1.0), (6, NOTE_ON, 0, 62, math.nan),
           (7, NOTE_ON, 0, 200, 1.0), (8, NOTE_ON, 0, -1, 1.0), (9, NOTE_ON, 0, math.inf, 1.0),
           (11, PARAM, 0, n_params + 5, 0.5), (12, PARAM, 0, -1, 0.5),
           (13, PARAM, 0, 0, math.nan), (14, PARAM, 0, 99999, 0.5),
           (15, 2, 0, 300, 0.0)]  # NOTE_OFF of note 300
    engine = make_engine(plan)
    out = render(engine, 4 * BLOCK, good + bad)
    assert engine.bad_events == len(bad)
    ref = render(make_engine(plan), 4 * BLOCK, good)
    assert np.array_equal(out, ref)
    assert engine.active_voices == 2


@pytest.mark.parametrize("offset", [math.nan, -math.inf, math.inf, -5.0, 1e30])
def test_an_event_with_a_non_finite_or_out_of_block_offset_does_not_raise(offset):
    """process_block raises nothing for anything the outside world sends (engine docstring)."""
    plan = compile_toml(simple_toml("saw"), SR, BLOCK)
    engine = make_engine(plan)
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    events = np.array([[offset, NOTE_ON, 0, 60, 1.0]], dtype=np.float64)
    engine.process_block(events, 1, out)  # must not raise
    assert np.all(np.isfinite(out))
    ok = np.array([[0.0, NOTE_ON, 0, 64, 1.0]])
    engine.process_block(ok, 1, out)  # and the engine goes on working
    assert np.abs(out).max() > 0.0


def test_a_free_lfo_starts_at_phase_0_after_every_voice_ended_beside_idle_lanes():
    """A free-running LFO joins the phase of a running voice, and with none running starts
    at phase 0. 5 notes run on 8 lanes (``kernel_lanes``): the 3 idle ones start their LFO
    too, and are made fresh again when the voices end (``lanes.free_lane``), so a later chord
    starts at phase 0, not at the phase the idle lanes stopped at (0.5 Hz: a quarter cycle
    after the first chord's 0.52 s)."""
    text = simple_toml("lfo", osc_params="shape = 0\nrate_hz = 0.5\ndepth = 1.0",
                       env="attack_ms = 0.2\ndecay_ms = 10\nsustain = 1.0\nrelease_ms = 5",
                       vca="gain = 0.1\nvelocity_amount = 0.0")
    plan = compile_toml(text)
    keys = (60, 62, 64, 65, 67)
    second = SR  # the second chord, long after every voice of the first ended
    events = [note_on(0, k) for k in keys] + [note_off(SR // 2, k) for k in keys]
    events += [note_on(second, k) for k in keys]
    active = []
    out = render(make_engine(plan), second + 10 * BLOCK, events,
                 on_block=lambda b, e: active.append(e.active_voices))
    assert max(active) == 5 and active[second // BLOCK - 1] == 0
    expected = 5 * 0.1 * np.sin(2 * np.pi * 0.5 * np.arange(10 * BLOCK) / SR)
    np.testing.assert_allclose(out[second + 64:, 0], expected[64:], atol=2e-4)


# ---- determinism ----------------------------------------------------------------------------

def test_same_events_give_bit_identical_output_on_fresh_engines():
    from instrument.bench import PRESET_DIR, chord_events
    from instrument.presets import compile_file

    plan = compile_file(PRESET_DIR / "poly16.toml", SR, BLOCK)
    cutoff = plan.param_index("filt.cutoff_hz")
    extra = [bend(9000, 0.7), bend(30000, -0.2), (20000, CC, 0, 1, 0.8),
             param(40000, cutoff, 0.3), (50000, CC, 0, CC_SUSTAIN, 1.0)]
    events = [tuple(r) for r in chord_events(2, SR, 20)] + extra
    runs = [render(make_engine(plan), 2 * SR, events) for _ in range(2)]
    assert np.abs(runs[0]).max() > 0.05
    assert runs[0].tobytes() == runs[1].tobytes()


def test_idle_lanes_run_beside_the_active_voices_are_not_heard():
    """poly16 runs 8 lanes for 5 notes (``kernel_lanes``), the idle ones fresh silent
    voices; a note alone runs on its own lane. Through notes released, freed (their lanes made
    fresh) and new notes taking those lanes, the chord is the sum of its notes played alone
    (poly16 is linear after its voices, and far below the limiter here)."""
    from instrument.bench import PRESET_DIR
    from instrument.presets import compile_file

    notes = [(0, 48, 0.9, 70000), (500, 55, 0.7, 12000), (1000, 60, 0.8, 70000),
             (1500, 64, 0.5, 200000), (2000, 67, 0.6, 200000), (60000, 71, 1.0, 200000),
             (110000, 72, 0.6, 200000)]
    plan = compile_file(PRESET_DIR / "poly16.toml", SR, BLOCK)

    def play(chosen):
        events = [bend(20000, 0.3)]
        for on, key, velocity, off in chosen:
            events += [note_on(on, key, velocity), note_off(off, key)]
        seen = []
        out = render(make_engine(plan), 3 * SR, events,
                     on_block=lambda b, e: seen.append(e.active_voices))
        return out, seen

    chord, active = play(notes)
    assert max(active) == 5 and min(active[1000:]) < 4  # 5 sounding, freed, taken again
    alone = sum(play([note])[0].astype(np.float64) for note in notes)
    assert np.abs(chord).max() > 0.05
    np.testing.assert_allclose(chord, alone, rtol=0, atol=1e-6)
