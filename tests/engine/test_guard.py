"""The non-finite guard resets what blew up, not the whole instrument (engine/guard.py).

Measured against reference renders in which nothing blew up: once the guard has muted the
block that went bad, the voices and effects that stayed finite play on sample for sample.
"""

import numpy as np

from helpers import (
    ONE_VOICE_BLOWS, QUIET_VELOCITY, compile_toml, make_engine, note_on, param, render, test_registry,
)

SR = 48000
BLOCK = 64

# ONE_VOICE_BLOWS: growth follows velocity; a note at velocity 1 blows up (growth 2.5), quiet
# notes (velocity QUIET_VELOCITY) stay stable.
QUIET = QUIET_VELOCITY


def _first_muted_block(out, reference):
    """Index of the first block that is exact silence in ``out`` but not in ``reference``."""
    for b in range(len(out) // BLOCK):
        part = slice(b * BLOCK, (b + 1) * BLOCK)
        if not out[part].any() and reference[part].any():
            return b
    raise AssertionError("the guard never muted a block")


def test_a_blown_voice_is_freed_and_the_rest_of_the_chord_plays_on_unchanged():
    plan = compile_toml(ONE_VOICE_BLOWS, SR, BLOCK, registry=test_registry())
    quiet = [note_on(0, 60, QUIET), note_on(0, 64, QUIET)]
    engine = make_engine(plan)
    out = render(engine, int(0.5 * SR), quiet + [note_on(0, 67, 1.0)])
    reference = render(make_engine(plan), int(0.5 * SR), quiet)
    assert np.all(np.isfinite(out))
    muted = _first_muted_block(out, reference)
    assert engine.nonfinite_resets == 1  # the blown voice is gone: it cannot blow up again
    assert engine.active_voices == 2
    stateful = int(np.count_nonzero(plan.vlayout[:, 1] > plan.vlayout[:, 0]))
    assert engine.modules_reset == stateful
    after = slice((muted + 1) * BLOCK, None)
    assert np.max(np.abs(out[after] - reference[after])) < 1e-6
    assert np.sqrt(np.mean(reference[after] ** 2)) > 0.01  # the two notes do sound
    assert np.abs(reference).max() < 0.9  # ...below the limiter, which would colour the match


GLOBAL_BLOWS = """
format = 1
[voice]
polyphony = 4
connect = ["osc.out -> amp.in", "amp.out -> out.in"]
[voice.nodes.osc]
type = "sine"
level = 0.04
[voice.nodes.amp]
type = "vca"
gain = 1
velocity_amount = 0
[voice.nodes.out]
type = "output"

[global]
connect = ["voices.left -> rev.left", "voices.right -> rev.right", "voices.left -> boom.in",
           "rev.out_left -> main.left", "boom.out -> main.left", "rev.out_right -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.rev]
type = "reverb"
decay_s = 3
mix = 0.5
[global.nodes.boom]
type = "blowup"
growth = 0.5
[global.nodes.main]
type = "output"
"""


def _global_case(growth_now, growth_later, blow, calm, n):
    plan = compile_toml(GLOBAL_BLOWS, SR, BLOCK, registry=test_registry())
    growth = plan.param_index("boom.growth")
    spec = plan.params[growth].spec
    chord = [note_on(0, 60), note_on(0, 64), note_on(0, 67)]
    engine = make_engine(plan)
    out = render(engine, n, chord + [param(blow, growth, spec.to_norm(growth_now)),
                                     param(calm, growth, spec.to_norm(growth_later))])
    reference = render(make_engine(plan), n, chord)
    assert np.all(np.isfinite(out))
    assert np.abs(reference).max() < 0.9  # below the limiter, which would colour the match
    return engine, out, reference


def test_a_nan_effect_is_reset_while_the_voices_and_the_reverb_beside_it_play_on():
    block = int(0.3 * SR) // BLOCK
    blow, calm = block * BLOCK + 10, (block + 1) * BLOCK  # NaN from sample 10 of one block
    engine, out, reference = _global_case(4.0, 0.5, blow, calm, int(0.8 * SR))
    assert _first_muted_block(out, reference) == block
    assert engine.nonfinite_resets == 1
    assert engine.modules_reset == 1  # boom alone: the reverb's state stayed finite
    assert engine.active_voices == 3
    # From the block after the muted one, voices and reverb play exactly as if nothing had
    # happened: boom restarts from silence, and its y = x + 0.5 y' forgets that within a block.
    after = slice((block + 2) * BLOCK, None)
    assert np.max(np.abs(out[after] - reference[after])) < 1e-6


def test_a_finite_runaway_in_the_effects_resets_them_and_the_voices_play_on():
    block = int(0.3 * SR) // BLOCK
    blow, calm = block * BLOCK + 10, (block + 1) * BLOCK  # growth 2: +60 dBFS within 20 samples
    engine, out, reference = _global_case(2.0, 0.5, blow, calm, int(0.8 * SR))
    assert _first_muted_block(out, reference) == block
    assert engine.nonfinite_resets == 1
    assert engine.modules_reset == 2  # no NaN to blame: boom and the reverb start afresh
    assert engine.active_voices == 3
    # The voices sound on through boom at once (the reverb's tail starts again).
    after = slice(calm + BLOCK, None)
    assert np.sqrt(np.mean(out[after, 0] ** 2)) > 0.5 * np.sqrt(np.mean(reference[after, 0] ** 2))
