"""Velocity curves (``instrument.control.velocity``): the curves' values, the ``[velocity]``
table of mappings and profiles with its one-line errors, the curve applied per MIDI port, and
the loudness it makes measured on rendered audio."""

import numpy as np
import pytest

from helpers import compile_toml, make_engine, note_on, render, rms, simple_toml
from instrument.cli.main import main
from instrument.control.mapping import MappingError, parse_mapping
from instrument.control.midi_messages import MidiPort, dispatch_midi
from instrument.control.profiles import ProfilesError, load_profiles, port_velocity
from instrument.control.velocity import curve_from_points, curve_named

MAPPING = 'format = 1\nname = "keys"\n[[cc]]\ncc = 20\ntarget = "macro#1"\n'


class _Host:
    def __init__(self):
        self.velocities = []

    def note_on(self, note, velocity, channel=0, t=None):
        self.velocities.append(velocity)


def _sent(curve, midi_velocity):
    host = _Host()
    port = MidiPort(host, "keys", velocity=curve)
    assert dispatch_midi([0x90, 60, midi_velocity], port, 0.0)
    return host.velocities[0]


def test_linear_passes_the_velocity_untouched_and_is_the_default():
    assert parse_mapping(MAPPING).velocity is None
    assert parse_mapping(MAPPING + '[velocity]\ncurve = "linear"\n').velocity is None
    assert [_sent(None, v) for v in (1, 40, 127)] == [1 / 127, 40 / 127, 1.0]
    linear = curve_named("linear")
    assert all(linear.midi(v) == pytest.approx(max(v, 1)) for v in range(128))


def test_soft_plays_40_at_half_force_and_hard_plays_80_as_61():
    assert curve_named("soft").midi(40) == pytest.approx(63.5, abs=0.05)
    assert curve_named("hard").midi(80) == pytest.approx(60.6, abs=0.05)
    soft = parse_mapping(MAPPING + '[velocity]\ncurve = "soft"\n').velocity
    hard = parse_mapping(MAPPING + '[velocity]\ncurve = "hard"\n').velocity
    assert _sent(soft, 40) > _sent(None, 40) > _sent(hard, 40)
    assert _sent(soft, 127) == _sent(hard, 127) == 1.0  # full force stays full


def test_fixed_plays_every_note_at_its_value():
    fixed = parse_mapping(MAPPING + '[velocity]\ncurve = "fixed"\nfixed_value = 90\n').velocity
    assert {_sent(fixed, v) for v in (1, 50, 127)} == {90 / 127}
    default = parse_mapping(MAPPING + '[velocity]\ncurve = "fixed"\n').velocity
    assert _sent(default, 3) == 100 / 127


def test_a_table_is_straight_lines_between_its_points():
    curve = parse_mapping(MAPPING + '[velocity]\ntable = [[20, 40], [60, 100], [127, 110]]\n'
                          ).velocity
    assert curve.midi(10) == pytest.approx(40)  # below the first point: its output
    assert curve.midi(40) == pytest.approx(70)  # halfway between 20->40 and 60->100
    assert curve.midi(127) == pytest.approx(110)


def test_a_curve_never_makes_a_note_on_silent():
    assert curve_from_points([(0, 0), (127, 0)]).midi(100) == pytest.approx(1.0)
    assert _sent(curve_named("hard"), 1) > 0.0


@pytest.mark.parametrize("table, message", [
    ('velocity = "soft"', "velocity: velocity must be a table"),
    ('[velocity]\ncurve = "sfot"', "velocity.curve: curve = 'sfot' is not a velocity curve"),
    ('[velocity]\ncurve = "soft"\nfixed_value = 9', "velocity.fixed_value: fixed_value is only"),
    ('[velocity]\ncurve = "fixed"\nfixed_value = 0', "fixed_value = 0 is not a MIDI velocity"),
    ('[velocity]\ncurve = "fixed"\nfixed_value = 128', "fixed_value = 128 is not a MIDI"),
    ('[velocity]\ntable = [[0, 0]]', "table needs at least two [in, out] points"),
    ('[velocity]\ntable = [[0, 0], [0, 9]]', "point 2 input 0 does not rise above 0"),
    ('[velocity]\ntable = [[0, 0], [130, 9]]', "point 2 = [130, 9] is not [in, out]"),
    ('[velocity]\ntable = [[0, 0], [9, nan]]', "point 2 = [9, nan] is not [in, out]"),
    ('[velocity]\ncurve = "soft"\ntable = [[0, 0], [1, 1]]', "has both curve and table"),
    ('[velocity]\ncurv = "soft"', "velocity.curv: unknown key 'curv'"),
    ('[velocity]\nfixed_value = 3', "velocity: curve is missing"),
])
def test_a_bad_velocity_table_is_one_line_from_instrument_check(tmp_path, capsys, table,
                                                                message):
    path = tmp_path / "keys.toml"
    top = table.startswith("velocity =")  # a plain key must come before the [[cc]] tables
    path.write_text(table + "\n" + MAPPING if top else MAPPING + table + "\n")
    with pytest.raises(MappingError):
        parse_mapping(path.read_text(), str(path))
    assert main(["check", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0], err


def test_a_profile_velocity_overrides_its_mappings(tmp_path, capsys):
    (tmp_path / "keys.toml").write_text(MAPPING + '[velocity]\ncurve = "hard"\n')
    path = tmp_path / "profiles.toml"
    path.write_text('[[profile]]\nfile = "keys.toml"\nports = ["Soft keys"]\n'
                    'velocity = { curve = "soft" }\n'
                    '[[profile]]\nfile = "keys.toml"\nports = ["Other"]\n')
    soft_profile, plain_profile = load_profiles(path)
    mapping = parse_mapping((tmp_path / "keys.toml").read_text())
    assert port_velocity(soft_profile, mapping).name == "soft"
    assert port_velocity(plain_profile, mapping).name == "hard"
    assert port_velocity(None, None) is None
    assert main(["check", str(path)]) == 0
    path.write_text('[[profile]]\nfile = "keys.toml"\nports = ["x"]\n'
                    'velocity = { curve = "loud" }\n')
    with pytest.raises(ProfilesError):
        load_profiles(path)
    capsys.readouterr()
    assert main(["check", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "profile[1].velocity.curve" in err[0], err


def test_soft_curve_makes_velocity_40_louder_than_linear_in_the_audio():
    """Through the engine (vca velocity_amount 1: level proportional to velocity): velocity
    40 through the soft curve plays at 63.5/127, 4.0 dB above the linear 40/127."""
    plan = compile_toml(simple_toml("sine", vca="gain = 1.0\nvelocity_amount = 1.0"), 48000, 64)

    def level(velocity):
        out = render(make_engine(plan), 24000, [note_on(0, 69, velocity)])[:, 0]
        return rms(out[4800:])

    linear, soft = level(_sent(None, 40)), level(_sent(curve_named("soft"), 40))
    gain_db = 20 * np.log10(soft / linear)
    assert gain_db == pytest.approx(20 * np.log10(curve_named("soft").midi(40) / 40), abs=0.01)
    assert gain_db > 3.9
