"""Controller mappings: the file format's one-line errors, ``CcRouter`` resolution, CC -> value
math, soft takeover, the shipped ``generic.toml`` against the shipped presets, and
``instrument check`` on mapping files.

Routing tests use a small hand-built parameter list (one of each kind and curve) so the
expected numbers come from the ``ParamSpec`` alone; the shipped-preset tests compile the real
presets with the declared (not self-tested) modules, as ``test_check_cli.py`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from instrument.cli.main import main
from instrument.control.cc_router import CcRouter
from instrument.control.mapping import (
    CcControl, Mapping, MappingError, TargetKind, load_mapping, parse_mapping,
)
from instrument.graph.plan import MacroSlot, ParamSlot
from instrument.modules import registry as registry_module
from instrument.params import Curve, ParamSpec
from instrument.presets import compile_file
from live import REPO

GENERIC = REPO / "mappings" / "generic.toml"
PRESETS = sorted((REPO / "presets").glob("*.toml"))
SOURCE = "test.toml"

GOOD = """\
format = 1
name = "Test"

[[cc]]
cc = 74
target = "macro:cutoff"

[[cc]]
cc = 5
channel = 0
target = "filt.cutoff_hz"
from = 100
to = 8000
curve = "exp"
takeover = "jump"
"""


def edit(old: str, new: str, text: str = GOOD) -> str:
    """``text`` with one exact edit (fails loudly if ``old`` does not occur exactly once)."""
    assert text.count(old) == 1, f"fixture edit {old!r} matches {text.count(old)} times"
    return text.replace(old, new)


def control(**keys) -> str:
    """GOOD plus one more [[cc]] table (cc[2]) with ``keys``, written as TOML."""
    def toml(v):
        return f'"{v}"' if isinstance(v, str) else repr(v)
    return GOOD + "\n[[cc]]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in keys.items())


@pytest.fixture(scope="module")
def declared_modules():
    return registry_module.discover(validate=False)


@pytest.fixture(autouse=True)
def _use_declared_modules(monkeypatch, declared_modules):
    monkeypatch.setattr(registry_module, "_default", declared_modules)


# -- the file format: every load error is one line naming file, key and fix ----------------------

MESSAGES = [
    # file
    ("format-missing", edit("format = 1\n", ""),
     "format: format is missing (write format = 1 at the top of the file)"),
    ("format-wrong-version", edit("format = 1", "format = 2"),
     "format: format = 2 is not supported (write format = 1 at the top of the file)"),
    ("format-a-string", edit("format = 1", 'format = "1"'),
     "format: format = '1' is not supported (write format = 1 at the top of the file)"),
    ("unknown-top-level-key", edit('name = "Test"', 'nmae = "Test"'),
     "nmae: unknown key 'nmae' (did you mean 'name'?)"),
    ("unknown-top-level-key-no-match", edit('name = "Test"', 'zzz = "Test"'),
     "zzz: unknown key 'zzz' (valid: cc, doc, feedback, format, learn, name)"),
    ("name-not-a-string", edit('name = "Test"', "name = 3"),
     'name: name must be a string (write name = "My controller")'),
    ("cc-not-a-list", "format = 1\ncc = 74\n",
     "cc: cc must be a list of [[cc]] tables "
     "(write each control as a [[cc]] table with cc and target)"),
    ("cc-empty", "format = 1\ncc = []\n",
     'cc: the mapping has no controls (add a [[cc]] table, like cc = 74 and target = '
     '"macro:cutoff")'),
    ("control-not-a-table", "format = 1\ncc = [74]\n",
     "cc[0]: a control must be a table (write it as [[cc]] with cc = ... and target = ...)"),
    ("unknown-control-key", edit("channel = 0", "chanel = 0"),
     "cc[1].chanel: unknown key 'chanel' (did you mean 'channel'?)"),
    ("unknown-control-key-no-match", edit("channel = 0", "zzz = 0"),
     "cc[1].zzz: unknown key 'zzz' (valid: cc, channel, curve, from, takeover, target, to)"),
    # cc
    ("cc-missing", edit("cc = 74\n", ""),
     "cc[0]: control has no cc (add cc = 74, the controller number 0..119)"),
    ("cc-not-whole", edit("cc = 74", "cc = 74.5"),
     "cc[0].cc: cc = 74.5 is not a whole number (use a controller number 0..119)"),
    ("cc-a-string", edit("cc = 74", 'cc = "74"'),
     "cc[0].cc: cc = '74' is not a whole number (use a controller number 0..119)"),
    ("cc-a-bool", edit("cc = 74", "cc = true"),
     "cc[0].cc: cc = True is not a whole number (use a controller number 0..119)"),
    ("cc-above-127", edit("cc = 74", "cc = 128"),
     "cc[0].cc: cc 128 is out of range (use 0 to 119)"),
    ("cc-negative", edit("cc = 74", "cc = -1"),
     "cc[0].cc: cc -1 is out of range (use 0 to 119)"),
    ("cc-channel-mode-message", edit("cc = 74", "cc = 123"),
     "cc[0].cc: cc 123 is a channel mode message (All Notes Off), not a control (use 0 to 119)"),
    # channel
    ("channel-16", edit("channel = 0", "channel = 16"),
     "cc[1].channel: channel 16 is out of range "
     "(use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel)"),
    ("channel-negative", edit("channel = 0", "channel = -1"),
     "cc[1].channel: channel -1 is out of range "
     "(use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel)"),
    ("channel-not-whole", edit("channel = 0", "channel = 1.0"),
     "cc[1].channel: channel = 1.0 is not a whole number "
     "(use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel)"),
    # target
    ("target-missing", edit('target = "macro:cutoff"\n', ""),
     'cc[0]: control has no target (add target = "node.param", "macro:NAME" or "macro#N")'),
    ("target-not-a-string", edit('target = "macro:cutoff"', "target = 5"),
     'cc[0].target: target = 5 is not a string (write "node.param", "macro:NAME" or "macro#N")'),
    ("target-bare-name", edit('"macro:cutoff"', '"cutoff"'),
     "cc[0].target: cannot read target 'cutoff' "
     '(write "node.param", "macro:NAME" or "macro#N")'),
    ("target-three-parts", edit('"filt.cutoff_hz"', '"filt.cutoff.hz"'),
     "cc[1].target: cannot read target 'filt.cutoff.hz' "
     '(write "node.param", "macro:NAME" or "macro#N")'),
    ("target-with-space", edit('"filt.cutoff_hz"', '"filt. cutoff_hz"'),
     "cc[1].target: cannot read target 'filt. cutoff_hz' "
     '(write "node.param", "macro:NAME" or "macro#N")'),
    ("target-macro-without-name", edit('"macro:cutoff"', '"macro:"'),
     "cc[0].target: cannot read target 'macro:' "
     "(name the macro right after the colon, like macro:cutoff)"),
    ("target-macro-zero", edit('"macro:cutoff"', '"macro#0"'),
     "cc[0].target: target 'macro#0': macros count from 1 "
     "(write macro#1 for the preset's first macro)"),
    ("target-macro-not-a-number", edit('"macro:cutoff"', '"macro#one"'),
     "cc[0].target: cannot read target 'macro#one' (number the macro from 1, like macro#1)"),
    ("target-macro-prefix-misspelled", edit('"macro:cutoff"', '"macros:cutoff"'),
     "cc[0].target: cannot read target 'macros:cutoff' (did you mean 'macro:cutoff'?)"),
    ("target-macro-prefix-capital", edit('"macro:cutoff"', '"Macro#2"'),
     "cc[0].target: cannot read target 'Macro#2' (did you mean 'macro#2'?)"),
    # from / to
    ("from-not-a-number", edit("from = 100", 'from = "low"'),
     "cc[1].from: from = 'low' is not a number "
     "(write a number: display units for a parameter, 0..1 for a macro)"),
    ("to-nan", edit("to = 8000", "to = nan"),
     "cc[1].to: to = nan is not a finite number "
     "(write a number: display units for a parameter, 0..1 for a macro)"),
    ("macro-to-above-1", control(cc=20, target="macro#1", to=2),
     "cc[2].to: to = 2 is out of range for a macro (use 0 to 1)"),
    ("macro-from-negative", control(cc=20, target="macro:x", **{"from": -0.5}),
     "cc[2].from: from = -0.5 is out of range for a macro (use 0 to 1)"),
    ("from-equals-to", edit("to = 8000", "to = 100"),
     "cc[1].to: from and to are both 100, so the knob would do nothing "
     "(make them differ, or omit both for the full range)"),
    # curve / takeover
    ("curve-misspelled", edit('"exp"', '"expo"'),
     "cc[1].curve: curve 'expo' is unknown (did you mean 'exp'?)"),
    ("curve-unknown", edit('"exp"', '"zzz"'),
     "cc[1].curve: curve 'zzz' is unknown (valid: exp, linear)"),
    ("curve-not-a-string", edit('"exp"', "2"),
     'cc[1].curve: curve = 2 is not a string (write one of "linear", "exp")'),
    ("takeover-misspelled", edit('"jump"', '"pick-up"'),
     "cc[1].takeover: takeover 'pick-up' is unknown (did you mean 'pickup'?)"),
    # duplicates
    ("duplicate-cc-any-channel", control(cc=74, target="macro#1"),
     "cc[2].cc: cc 74 on any channel is already mapped by cc[0] "
     "(give each control its own cc or channel)"),
    ("duplicate-cc-same-channel", control(cc=5, channel=0, target="macro#1"),
     "cc[2].cc: cc 5 on channel 0 is already mapped by cc[1] "
     "(give each control its own cc or channel)"),
    ("duplicate-cc-one-channel-under-any", control(cc=74, channel=3, target="macro#1"),
     "cc[2].cc: cc 74 on channel 3 is already mapped by cc[0], which listens on any channel "
     "(give each control its own cc or channel)"),
    ("duplicate-cc-any-over-one-channel", control(cc=5, target="macro#1"),
     "cc[2].cc: cc 5 on any channel is already mapped by cc[1], which listens on channel 0 "
     "(give each control its own cc or channel)"),
]


@pytest.mark.parametrize("text, message", [pytest.param(*c[1:], id=c[0]) for c in MESSAGES])
def test_load_error_is_one_line_naming_file_key_and_fix(text, message):
    with pytest.raises(MappingError) as info:
        parse_mapping(text, SOURCE)
    assert str(info.value) == f"{SOURCE}: {message}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, message", [pytest.param(*c[1:], id=c[0]) for c in MESSAGES])
def test_check_prints_the_same_line_for_a_mapping_file(capsys, tmp_path, text, message):
    path = tmp_path / "map.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"error: {path}: {message}"]


def test_toml_syntax_error_names_the_line():
    text = edit('target = "macro:cutoff"', "target = macro:cutoff")
    line = text.splitlines().index("target = macro:cutoff") + 1
    with pytest.raises(MappingError) as info:
        parse_mapping(text, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: not valid TOML: ")
    assert f"line {line}" in message and "\n" not in message
    assert message.endswith(
        "(fix the syntax at that line (strings need quotes, tables [brackets]))")


def test_file_errors(tmp_path):
    with pytest.raises(MappingError) as info:
        load_mapping(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: file not found (check the path)"
    with pytest.raises(MappingError) as info:
        load_mapping(tmp_path)
    assert str(info.value) == (f"{tmp_path}: is a directory, not a mapping file "
                               f"(name the .toml files in it, like {tmp_path}/*.toml)")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'format = 1\nname = "M\xfcnchen"\n')
    with pytest.raises(MappingError) as info:
        load_mapping(bad)
    assert str(info.value) == f"{bad}: not UTF-8 text (byte 20) (save the file as UTF-8)"


def test_good_file_parses_to_controls():
    mapping = parse_mapping(GOOD, SOURCE)
    assert mapping == Mapping("Test", (
        CcControl(74, None, "macro:cutoff", TargetKind.MACRO, "cutoff", 0, None, None,
                  "linear", None, "cc[0]"),
        CcControl(5, 0, "filt.cutoff_hz", TargetKind.PARAM, "filt.cutoff_hz", 0, 100.0, 8000.0,
                  "exp", "jump", "cc[1]"),
    ), SOURCE)
    extra = parse_mapping(control(cc=20, target="macro#3"), SOURCE).controls[2]
    assert (extra.kind, extra.number, extra.name) == (TargetKind.MACRO_NUMBER, 3, "")


def test_same_cc_on_different_channels_is_fine():
    text = control(cc=5, channel=1, target="macro#1") + '\n[[cc]]\ncc = 5\nchannel = 15\n' \
        'target = "macro#2"\n'
    assert [(c.channel, c.cc) for c in parse_mapping(text).controls] == \
        [(None, 74), (0, 5), (1, 5), (15, 5)]


# -- routing against a hand-built parameter list -------------------------------------------------

SPECS = [
    ("filt.cutoff_hz", ParamSpec("cutoff_hz", "Cutoff", "Hz", 20, 20000, 1000, curve=Curve.LOG)),
    ("filt.resonance", ParamSpec("resonance", "Resonance", "", 0, 1, 0.5)),
    ("osc.transpose_st", ParamSpec.integer("transpose_st", "Transpose", "st", -48, 48, 0)),
    ("osc.wave", ParamSpec.choice("wave", "Wave", ("Saw", "Square", "Triangle"))),
    ("osc.sync", ParamSpec.toggle("sync", "Sync")),
    ("env.attack_ms", ParamSpec("attack_ms", "Attack", "ms", 0, 20000, 5, curve=Curve.EXP,
                                skew=3.0)),
]
PARAMS = tuple(ParamSlot(i, path, path.split(".")[0], spec, spec.default_norm)
               for i, (path, spec) in enumerate(SPECS))
CUTOFF, RESONANCE, TRANSPOSE, WAVE, SYNC, ATTACK = range(len(PARAMS))
MACROS = (
    MacroSlot(0, "cutoff", "Cutoff", ((CUTOFF, 0.2, 0.8),), 0.5),
    MacroSlot(1, "space", "Space", ((RESONANCE, 0.0, 1.0), (ATTACK, 0.1, 0.6)), 0.25),
)


class Rig:
    """A router over PARAMS/MACROS and a parameter table it writes into, like the runtime."""

    def __init__(self, *controls: dict, table: list[float] | None = None):
        text = "format = 1\n" + "".join(
            "\n[[cc]]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in c.items())
            for c in controls)
        self.mapping = parse_mapping(text, "rig.toml")
        self.table = list(table) if table else [p.initial_norm for p in PARAMS]
        self.router = CcRouter(self.mapping, PARAMS, MACROS, self.table.__getitem__)

    def send(self, cc: int, value: int, channel: int = 0) -> list[tuple[int, float]]:
        pairs = self.router.handle(channel, cc, value)
        for index, norm in pairs:
            self.table[index] = norm
        return pairs

    def value(self, index: int) -> float:
        return PARAMS[index].spec.from_norm(self.table[index])


def test_linear_parameter_full_range_is_cc_over_127():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump"))
    for v in range(128):
        assert rig.send(1, v) == ([(RESONANCE, v / 127)] if v else [(RESONANCE, 0.0)])


def test_log_parameter_sweeps_evenly_in_octaves():
    rig = Rig(dict(cc=1, target="filt.cutoff_hz", takeover="jump"))
    for v in (0, 1, 32, 64, 100, 127):
        rig.send(1, v)
        assert rig.value(CUTOFF) == pytest.approx(20 * 1000 ** (v / 127), rel=1e-9)
    assert rig.send(1, 0) == [(CUTOFF, 0.0)] and rig.value(CUTOFF) == 20.0


def test_from_to_in_display_units_and_exact_ends():
    rig = Rig(dict(cc=1, target="filt.cutoff_hz", takeover="jump", **{"from": 100, "to": 8000}))
    spec = PARAMS[CUTOFF].spec
    assert rig.send(1, 0) == [(CUTOFF, spec.to_norm(100))]
    assert rig.send(1, 127) == [(CUTOFF, spec.to_norm(8000))]
    rig.send(1, 50)
    assert rig.value(CUTOFF) == pytest.approx(100 * 80 ** (50 / 127), rel=1e-9)


def test_exp_curve_is_x_squared():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump", curve="exp"),
              dict(cc=2, target="macro:cutoff", takeover="jump", curve="exp",
                   **{"from": 0.2, "to": 0.8}))
    for v in (1, 10, 64, 126):
        assert rig.send(1, v) == [(RESONANCE, pytest.approx((v / 127) ** 2, abs=1e-15))]
        rig.send(2, v)
        assert rig.router.macro_value("cutoff") == pytest.approx(0.2 + 0.6 * (v / 127) ** 2,
                                                                 abs=1e-15)


def test_from_above_to_turns_the_knob_around():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump", **{"from": 1, "to": 0}))
    assert rig.send(1, 0) == [(RESONANCE, 1.0)]
    assert rig.send(1, 127) == [(RESONANCE, 0.0)]
    rig.send(1, 32)
    assert rig.table[RESONANCE] == pytest.approx(1 - 32 / 127, abs=1e-15)


def test_macro_writes_every_target_of_the_macro():
    rig = Rig(dict(cc=7, target="macro:space", takeover="jump"))
    assert rig.send(7, 127) == [(RESONANCE, 1.0), (ATTACK, 0.6)]
    assert rig.router.macro_value("space") == 1.0
    assert rig.send(7, 0) == [(RESONANCE, 0.0), (ATTACK, 0.1)]


def test_channel_filter_and_any_channel():
    rig = Rig(dict(cc=1, channel=3, target="filt.resonance", takeover="jump"),
              dict(cc=2, target="filt.cutoff_hz", takeover="jump"))
    assert rig.send(1, 100, channel=0) == []
    assert rig.send(1, 100, channel=4) == []
    assert rig.send(1, 100, channel=3) == [(RESONANCE, 100 / 127)]
    for ch in range(16):
        assert rig.send(2, 127 - ch, channel=ch) == [(CUTOFF, pytest.approx((127 - ch) / 127))]


def test_unmapped_and_malformed_messages_write_nothing():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump"))
    assert rig.send(2, 64) == []
    for channel, cc, value in ((16, 1, 64), (-1, 1, 64), (0, 128, 64), (0, -1, 64),
                               (0, 1, 128), (0, 1, -1), (0, 1000, 0)):
        assert rig.router.handle(channel, cc, value) == []
    assert rig.table == [p.initial_norm for p in PARAMS]


def test_repeated_value_writes_once():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump"))
    assert rig.send(1, 90) == [(RESONANCE, 90 / 127)]
    assert rig.send(1, 90) == []


def zones(rig: Rig, cc: int, index: int) -> dict[float, list[int]]:
    """Display value -> the CC positions that give it."""
    found: dict[float, list[int]] = {}
    for v in range(128):
        rig.send(cc, v)
        found.setdefault(rig.value(index), []).append(v)
    return found


def test_discrete_parameters_divide_the_knob_into_equal_zones_of_exact_steps():
    rig = Rig(dict(cc=1, target="osc.transpose_st"), dict(cc=2, target="osc.wave"),
              dict(cc=3, target="osc.sync"),
              dict(cc=4, target="osc.transpose_st", **{"from": -12, "to": 12}))
    # every write is exactly a step's normalized position
    for cc, index in ((1, TRANSPOSE), (2, WAVE), (3, SYNC), (4, TRANSPOSE)):
        spec = PARAMS[index].spec
        for v in range(128):
            for i, norm in rig.send(cc, v):
                assert norm == spec.to_norm(spec.from_norm(norm))
    transpose = zones(rig, 1, TRANSPOSE)
    assert sorted(transpose) == [float(s) for s in range(-48, 49)]
    assert {len(z) for z in transpose.values()} <= {1, 2}
    assert zones(rig, 2, WAVE) == {0.0: list(range(0, 43)), 1.0: list(range(43, 85)),
                                   2.0: list(range(85, 128))}
    assert zones(rig, 3, SYNC) == {0.0: list(range(0, 64)), 1.0: list(range(64, 128))}
    narrow = zones(rig, 4, TRANSPOSE)
    assert sorted(narrow) == [float(s) for s in range(-12, 13)]
    assert {len(z) for z in narrow.values()} == {5, 6}


def test_discrete_parameters_jump_by_default_continuous_ones_pick_up():
    rig = Rig(dict(cc=1, target="osc.wave"), dict(cc=2, target="filt.resonance"))
    assert rig.send(1, 127) == [(WAVE, 1.0)]        # far from Saw, switches at once
    assert rig.send(2, 127) == []                    # far from 0.5: waits


# -- soft takeover ---------------------------------------------------------------------------------

def test_pickup_far_knob_does_nothing_until_it_crosses_then_follows_exactly():
    rig = Rig(dict(cc=1, target="filt.resonance"))   # resonance is at 0.5
    for v in (0, 20, 40, 60):                        # 60/127 = 0.472: 3.6 steps short
        assert rig.send(1, v) == []
    assert rig.table[RESONANCE] == 0.5
    assert rig.send(1, 66) == [(RESONANCE, 66 / 127)]  # crossed 0.5 between 60 and 66
    for v in (67, 90, 3, 127, 64):                     # in control: follows, even big jumps
        assert rig.send(1, v) == [(RESONANCE, v / 127)]


def test_pickup_crossing_downwards():
    rig = Rig(dict(cc=1, target="filt.resonance"))
    assert rig.send(1, 127) == [] and rig.send(1, 100) == []
    assert rig.send(1, 10) == [(RESONANCE, 10 / 127)]


def test_pickup_takes_over_within_two_steps():
    rig = Rig(dict(cc=1, target="filt.resonance"))      # 0.5 = 63.5 / 127
    assert rig.send(1, 66) == []                          # 2.5 steps away
    rig = Rig(dict(cc=1, target="filt.resonance"))
    assert rig.send(1, 65) == [(RESONANCE, 65 / 127)]     # 1.5 steps away: reached


def test_pickup_threshold_scales_with_the_controls_travel():
    # from 0.4 to 0.6: one CC step is 0.2/127 of resonance; 0.5 sits at position 63.5
    rig = Rig(dict(cc=1, target="filt.resonance", **{"from": 0.4, "to": 0.6}))
    assert rig.send(1, 60) == []
    assert rig.send(1, 65) == [(RESONANCE, pytest.approx(0.4 + 0.2 * 65 / 127))]


def test_jump_mode_sets_the_value_at_once():
    rig = Rig(dict(cc=1, target="filt.resonance", takeover="jump"))
    assert rig.send(1, 0) == [(RESONANCE, 0.0)]


def test_pickup_again_after_something_else_moved_the_parameter():
    rig = Rig(dict(cc=1, target="filt.resonance"))
    assert rig.send(1, 64) == [(RESONANCE, 64 / 127)]
    rig.table[RESONANCE] = 0.9                         # an OSC fader moved it
    assert rig.send(1, 70) == []
    assert rig.send(1, 100) == []                      # 0.787: still below 0.9
    assert rig.send(1, 113) == [(RESONANCE, 113 / 127)]  # 0.890: within two steps
    assert rig.send(1, 50) == [(RESONANCE, 50 / 127)]


def test_pickup_after_a_macro_moved_the_parameter():
    rig = Rig(dict(cc=1, target="filt.resonance"), dict(cc=2, target="macro:space",
                                                        takeover="jump"))
    assert rig.send(1, 64) == [(RESONANCE, 64 / 127)]
    rig.send(2, 0)                                     # the macro sets resonance to 0
    assert rig.send(1, 65) == []
    assert rig.send(1, 1) == [(RESONANCE, 1 / 127)]


def test_value_outside_the_knobs_range_is_picked_up_at_the_nearest_end():
    spec = PARAMS[CUTOFF].spec
    table = [p.initial_norm for p in PARAMS]
    table[CUTOFF] = spec.to_norm(5000.0)                # above this knob's 100..1000 Hz
    rig = Rig(dict(cc=1, target="filt.cutoff_hz", **{"from": 100, "to": 1000}), table=table)
    assert rig.send(1, 0) == [] and rig.send(1, 120) == []
    assert rig.send(1, 127) == [(CUTOFF, spec.to_norm(1000.0))]
    assert rig.send(1, 0) == [(CUTOFF, spec.to_norm(100.0))]


def test_a_new_router_after_a_preset_load_picks_up_again():
    rig = Rig(dict(cc=1, target="filt.resonance"))
    rig.send(1, 64)
    rig.send(1, 80)
    assert rig.table[RESONANCE] == 80 / 127
    rig.table[RESONANCE] = 0.2                         # the new preset's resonance
    rig.router = CcRouter(rig.mapping, PARAMS, MACROS, rig.table.__getitem__)
    assert rig.send(1, 81) == []
    assert rig.send(1, 26) == [(RESONANCE, 26 / 127)]  # 0.205: within two steps of 0.2


def test_macro_pickup_uses_the_macros_own_value():
    rig = Rig(dict(cc=1, target="macro:cutoff"))       # initial_norm 0.5
    assert rig.router.macro_value("cutoff") == 0.5
    assert rig.send(1, 0) == [] and rig.send(1, 50) == []
    assert rig.router.macro_value("cutoff") == 0.5
    assert rig.send(1, 70) == [(CUTOFF, pytest.approx(0.2 + 0.6 * 70 / 127))]
    assert rig.router.macro_value("cutoff") == 70 / 127
    assert rig.send(1, 10) == [(CUTOFF, pytest.approx(0.2 + 0.6 * 10 / 127))]


def test_two_knobs_on_one_macro_each_pick_up_after_the_other_moved_it():
    rig = Rig(dict(cc=1, target="macro:cutoff"), dict(cc=2, target="macro#1"))
    assert rig.send(1, 64) and rig.send(2, 64) == []   # both at 64: the second is in sync
    assert rig.send(2, 100) == [(CUTOFF, pytest.approx(0.2 + 0.6 * 100 / 127))]
    assert rig.send(1, 70) == []                       # knob 1 lost control to knob 2
    assert rig.send(1, 90) == []
    assert rig.send(1, 110) == [(CUTOFF, pytest.approx(0.2 + 0.6 * 110 / 127))]  # crossed 100
    assert rig.send(2, 105) == []                      # now knob 2 has to pick up


def test_set_macro_value_makes_knobs_pick_up():
    rig = Rig(dict(cc=1, target="macro:cutoff"))
    rig.send(1, 64)
    rig.router.set_macro_value("cutoff", 0.1)          # an OSC macro fader
    assert rig.router.macro_value("cutoff") == 0.1
    assert rig.send(1, 60) == []
    assert rig.send(1, 13) == [(CUTOFF, pytest.approx(0.2 + 0.6 * 13 / 127))]


# -- resolution ------------------------------------------------------------------------------------

def test_targets_missing_from_the_preset_are_listed_not_raised():
    rig = Rig(dict(cc=1, target="filt.cutof_hz"), dict(cc=2, target="macro:brightness"),
              dict(cc=3, target="macro#3"), dict(cc=4, target="filt.resonance"),
              dict(cc=5, target="filt.cutoff_hz", to=50000),
              dict(cc=6, target="osc.transpose_st", **{"from": 0.5}),
              dict(cc=7, target="zzz.zzz"))
    assert rig.router.unresolved == (
        "rig.toml: cc[0].target: this preset has no parameter 'filt.cutof_hz' "
        "(did you mean 'filt.cutoff_hz'?)",
        "rig.toml: cc[1].target: this preset has no macro 'brightness' (valid: cutoff, space)",
        "rig.toml: cc[2].target: this preset has no macro#3 (it has 2 macros)",
        "rig.toml: cc[4].to: to = 50000 is out of range for filt.cutoff_hz "
        "(use 20.0 Hz to 20.0 kHz)",
        "rig.toml: cc[5].from: from = 0.5 is not a whole step of osc.transpose_st "
        "(use a whole number)",
        "rig.toml: cc[6].target: this preset has no parameter 'zzz.zzz' (valid: env.attack_ms, "
        "filt.cutoff_hz, filt.resonance, osc.sync, osc.transpose_st, osc.wave)",
    )
    for cc in (1, 2, 3, 5, 6, 7):
        assert rig.send(cc, 127) == [] and rig.send(cc, 0) == []
    assert rig.send(4, 64) == [(RESONANCE, 64 / 127)]


def test_preset_without_macros():
    router = CcRouter(parse_mapping(control(cc=20, target="macro#1"), "m.toml"), PARAMS, (),
                      lambda i: 0.0)
    assert router.unresolved == (
        "m.toml: cc[0].target: this preset has no macro 'cutoff' (there is none)",
        "m.toml: cc[2].target: this preset has no macro#1 (it has no macros)",
    )


def test_router_prints_its_bindings():
    rig = Rig(dict(cc=74, target="macro:cutoff"), dict(cc=20, target="macro#2"),
              dict(cc=5, channel=2, target="filt.cutoff_hz", curve="exp", **{"from": 100}),
              dict(cc=9, target="osc.wave"), dict(cc=21, target="macro#9"))
    assert str(rig.router) == "\n".join([
        "rig (rig.toml)",
        "  cc 74  ch any -> macro:cutoff (Cutoff), linear, pickup",
        "  cc 20  ch any -> macro#2 = macro:space (Space), linear, pickup",
        "  cc 5   ch 2   -> filt.cutoff_hz 100 Hz..20.0 kHz, exp, pickup",
        "  cc 9   ch any -> osc.wave Saw..Triangle, linear, jump",
        "  unresolved: rig.toml: cc[4].target: this preset has no macro#9 (it has 2 macros)",
    ])


def test_many_controls_route_every_message_to_its_target():
    """40 CCs on one parameter and CC74 on a macro: 20 000 messages, the last value lands.
    (What a message costs: ``benchmarks/control_cost.py``; under 2 us on a laptop.)"""
    rig = Rig(*[dict(cc=cc, target="filt.resonance", takeover="jump") for cc in range(0, 40)],
              dict(cc=74, target="macro:space"))
    handle, n = rig.router.handle, 20000
    for i in range(n):
        handle(0, 74, i & 127)
    assert rig.router.macro_value("space") == pytest.approx(((n - 1) & 127) / 127, abs=1e-15)


# -- the shipped mapping against the shipped presets ----------------------------------------------

@pytest.fixture(scope="module")
def plans(declared_modules):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry_module, "_default", declared_modules)
        return {path.stem: compile_file(path, 48000, 64) for path in PRESETS}


def test_generic_mapping_loads():
    mapping = load_mapping(GENERIC)
    assert [(c.cc, c.channel, c.target) for c in mapping.controls] == [
        (71, None, "macro:resonance"), (72, None, "macro:release"), (73, None, "macro:attack"),
        (74, None, "macro:cutoff"),
    ] + [(20 + i, None, f"macro#{i + 1}") for i in range(8)]


@pytest.mark.parametrize("name", [p.stem for p in PRESETS])
def test_generic_mapping_resolves_against_shipped_preset(plans, name):
    plan = plans[name]
    n = len(plan.macros)
    assert 4 <= n <= 8
    table = [p.initial_norm for p in plan.params]
    router = CcRouter(load_mapping(GENERIC), plan.params, plan.macros, table.__getitem__)
    assert router.unresolved == tuple(
        f"{GENERIC}: cc[{4 + i - 1}].target: this preset has no macro#{i} (it has {n} macros)"
        for i in range(n + 1, 9))
    # the named sound controllers and every bank knob the preset fills move their macro's
    # targets: a full sweep passes the macro's value, so the knob takes over and ends at 1.0
    knobs = {71: "resonance", 72: "release", 73: "attack", 74: "cutoff"}
    knobs.update({20 + i: m.name for i, m in enumerate(plan.macros)})
    for cc, macro_name in knobs.items():
        macro = plan.macro(macro_name)
        last = []
        for v in range(128):
            pairs = router.handle(0, cc, v)
            for index, norm in pairs:
                table[index] = norm
            last = pairs or last
        assert router.macro_value(macro_name) == 1.0
        assert last == macro.targets_for(1.0)


def test_generic_bank_follows_the_presets_macro_order(plans):
    mapping = load_mapping(GENERIC)
    for name, plan in plans.items():
        router = CcRouter(mapping, plan.params, plan.macros, lambda i: 0.0)
        for i, macro in enumerate(plan.macros):
            assert f"macro#{i + 1} = macro:{macro.name} ({macro.label})" in str(router)


# -- instrument check on mapping files -----------------------------------------------------------

def test_check_generic_mapping_and_presets_together(capsys):
    paths = [str(GENERIC), *map(str, PRESETS)]
    assert main(["check", *paths]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"ok: {p}" for p in paths] and err == ""


def test_check_mapping_with_a_syntax_error_is_one_line(capsys, tmp_path):
    path = tmp_path / "map.toml"
    path.write_text("format = 1\n[[cc]\ncc = 74\n")
    assert main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert line.startswith(f"error: {path}: not valid TOML") and "line 2" in line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instrument.cli.main", "check", *args],
                          cwd=REPO, env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)


def test_cli_check_generic_mapping_exits_0():
    result = run_cli("mappings/generic.toml")
    assert (result.returncode, result.stdout, result.stderr) == \
        (0, "ok: mappings/generic.toml\n", "")


def test_cli_check_bad_mapping_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(edit("channel = 0", "channel = 16"))
    result = run_cli(str(path))
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {path}: cc[1].channel: channel 16 is out of range "
        "(use 0 to 15, where 0 is MIDI channel 1, or omit it for any channel)"]
