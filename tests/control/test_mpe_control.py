"""MPE on the control side: the MCM read from a port's raw MIDI bytes, the host's view of the
zones (which channels' CC74 are notes' timbres), and the player state replayed into a restarted
audio process (zones, member bend range, per-channel bend, pressure and timbre)."""

import pytest

from instrument.cli.main import main
from instrument.control.mapping import parse_mapping
from instrument.control.midi_messages import MidiPort, dispatch_midi
from instrument.control.mpe import McmDecoder, MpeZones
from instrument.engine.events import (
    BEND_RANGE, CC, CC_TIMBRE, CHANNEL_PRESSURE, MPE_ZONE, NOTE_ON, PITCH_BEND,
)
from instrument.runtime.player_state import PlayerState

MAPPING = 'format = 1\nname = "seaboard"\n[[cc]]\ncc = 20\ntarget = "macro#1"\n'


def mcm(channel: int, members: int) -> list[list[int]]:
    """The MPE Configuration Message as a controller sends it: RPN 6, data entry MSB."""
    return [[0xB0 | channel, 101, 0], [0xB0 | channel, 100, 6], [0xB0 | channel, 6, members]]


class _Host:
    def __init__(self):
        self.calls = []

    def mpe_zone(self, channel, members):
        self.calls.append(("mpe_zone", channel, members))

    def control_change(self, channel, cc, value, t=None, mapping=None):
        self.calls.append(("cc", channel, cc, value))


def test_a_port_reads_the_mcm_on_channel_1_and_16_only():
    host = _Host()
    port = MidiPort(host, "seaboard")
    for message in mcm(0, 15) + mcm(15, 3) + mcm(4, 7):
        assert dispatch_midi(message, port, 0.0)
    assert [c for c in host.calls if c[0] == "mpe_zone"] == [("mpe_zone", 0, 15),
                                                            ("mpe_zone", 15, 3)]
    assert sum(c[0] == "cc" for c in host.calls) == 9  # the mapping still sees every CC


def test_an_nrpn_or_another_rpn_selected_in_between_is_no_mcm():
    decoder = McmDecoder()
    assert decoder.feed(0, 101, 0) is None and decoder.feed(0, 100, 6) is None
    assert decoder.feed(0, 99, 1) is None  # NRPN selected now
    assert decoder.feed(0, 6, 15) is None
    decoder.feed(0, 101, 0)
    decoder.feed(0, 100, 0)  # RPN 0: bend range, not MCM
    assert decoder.feed(0, 6, 12) is None
    decoder.feed(0, 100, 6)
    assert decoder.feed(0, 6, 127) == 15  # clamped to the 15 channels there are


def test_zones_follow_the_spec_and_name_their_channels():
    zones = MpeZones()
    assert not zones.on and zones.describe() == "off"
    zones.set(0, 7)
    zones.set(15, 7)
    assert (zones.lower, zones.upper) == (7, 7)
    assert [c for c in range(16) if zones.is_member(c)] == [1, 2, 3, 4, 5, 6, 7,
                                                            8, 9, 10, 11, 12, 13, 14]
    zones.set(0, 10)  # overlaps: the upper zone shrinks
    assert (zones.lower, zones.upper) == (10, 4)
    assert zones.describe() == ("lower zone: master channel 1, members 2-11; "
                                "upper zone: master channel 16, members 12-15")
    assert not zones.is_member(0) and not zones.is_member(15)


def test_restore_replays_zones_member_range_and_each_channels_expression_before_notes():
    state = PlayerState()
    state.note(MPE_ZONE, 0, 15, 0.0)
    state.note(BEND_RANGE, 3, 24.0, 0.0)  # RPN 0 on a member channel: the zone's range
    state.note(BEND_RANGE, 0, 12.0, 0.0)  # on the master channel: the engine's own range
    state.note(PITCH_BEND, 2, 0.25, 0.0)
    state.note(CHANNEL_PRESSURE, 2, 0.5, 0.0)
    state.note(CC, 2, CC_TIMBRE, 0.75)
    state.note(NOTE_ON, 2, 60, 0.8)
    events = state.restore_events()
    assert events[:3] == [(MPE_ZONE, 0, 15.0, 0.0), (BEND_RANGE, 1, 24.0, 0.0),
                          (BEND_RANGE, 0, 12.0, 0.0)]
    assert events[3:] == [(PITCH_BEND, 2, 0.25, 0.0), (CHANNEL_PRESSURE, 2, 0.5, 0.0),
                          (CC, 2, float(CC_TIMBRE), 0.75), (NOTE_ON, 2, 60.0, 0.8)]
    state.preset_loaded()  # the preset's range again; the zone's member range stays
    assert (BEND_RANGE, 0, 12.0, 0.0) not in state.restore_events()
    assert (BEND_RANGE, 1, 24.0, 0.0) in state.restore_events()
    state.note(MPE_ZONE, 0, 0, 0.0)  # zone off: nothing of MPE is replayed
    assert all(e[0] not in (MPE_ZONE, BEND_RANGE) for e in state.restore_events())


def test_without_mpe_the_replay_has_no_mpe_events():
    state = PlayerState()
    state.note(BEND_RANGE, 0, 12.0, 0.0)
    state.note(PITCH_BEND, 0, 0.5, 0.0)
    state.note(NOTE_ON, 0, 60, 0.8)
    assert state.restore_events() == [(BEND_RANGE, 0, 12.0, 0.0), (PITCH_BEND, 0, 0.5, 0.0),
                                      (NOTE_ON, 0, 60.0, 0.8)]


@pytest.mark.parametrize("table, message", [
    ("[mpe]\nlower = 16", "mpe.lower: lower = 16 is not a number of member channels"),
    ("[mpe]\nupper = true", "mpe.upper: upper = True is not a number of member channels"),
    ("[mpe]\nlower = 8\nupper = 7", "mpe: lower = 8 and upper = 7 overlap"),
    ("[mpe]\nlower = 0", "mpe: no zone"),
    ("[mpe]\nlowr = 3", "mpe.lowr: unknown key 'lowr'"),
])
def test_a_bad_mpe_table_is_one_line_from_instrument_check(tmp_path, capsys, table, message):
    path = tmp_path / "seaboard.toml"
    path.write_text(MAPPING + table + "\n")
    assert main(["check", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0], err


def test_a_mappings_mpe_table_gives_its_zones():
    assert parse_mapping(MAPPING + "[mpe]\nlower = 15\n").mpe == (15, 0)
    assert parse_mapping(MAPPING + "[mpe]\nlower = 7\nupper = 7\n").mpe == (7, 7)
    assert parse_mapping(MAPPING).mpe is None
