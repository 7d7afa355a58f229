"""High-resolution controls, relative encoders and scale takeover (``CcRouter`` unit tests),
and one live test through JACK MIDI with ``instrument run`` read back over OSC ``/q``."""

from __future__ import annotations

import time

import pytest

from instrument.control.cc_router import ACCEL_MAX, CcRouter, relative_ticks
from instrument.control.mapping import MappingError, parse_mapping
from instrument.graph.plan import MacroSlot, ParamSlot
from instrument.params import Curve, ParamSpec

SPECS = [
    ("filt.cutoff_hz", ParamSpec("cutoff_hz", "Cutoff", "Hz", 20, 20000, 1000, curve=Curve.LOG)),
    ("filt.resonance", ParamSpec("resonance", "Resonance", "", 0, 1, 0.5)),
    ("osc.transpose_st", ParamSpec.integer("transpose_st", "Transpose", "st", -48, 48, 0)),
]
PARAMS = tuple(ParamSlot(i, path, path.split(".")[0], spec, spec.default_norm)
               for i, (path, spec) in enumerate(SPECS))
CUTOFF, RES, TRANSPOSE = range(len(PARAMS))
MACROS = (MacroSlot(0, "cutoff", "Cutoff", ((CUTOFF, 0.0, 1.0),), 0.5),)


def toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def mapping_text(*controls: dict) -> str:
    return "format = 1\n" + "".join(
        "\n[[cc]]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in c.items()) for c in controls)


class Rig:
    def __init__(self, *controls: dict, table=None):
        self.mapping = parse_mapping(mapping_text(*controls), "rig.toml")
        self.table = list(table) if table else [p.initial_norm for p in PARAMS]
        self.bends: list[tuple[int, float]] = []
        self.router = CcRouter(self.mapping, PARAMS, MACROS, self.table.__getitem__,
                               lambda ch, st: self.bends.append((ch, st)), 2.0)
        self.t = 100.0

    def send(self, cc, value, channel=0, dt=1.0):
        self.t += dt
        pairs = self.router.handle(channel, cc, value, self.t)
        for index, norm in pairs:
            self.table[index] = norm
        return pairs


# -- 14-bit ---------------------------------------------------------------------------------------

def test_14bit_reaches_all_16384_values():
    rig = Rig({"cc": 1 + 4, "mode": "14bit", "target": "filt.resonance", "takeover": "jump"})
    seen = set()
    for msb in range(128):
        for lsb in range(128):
            rig.send(5, msb, dt=0.0)
            rig.send(37, lsb, dt=0.0)
            seen.add(rig.table[RES])
            assert rig.table[RES] == pytest.approx((msb * 128 + lsb) / 16383, abs=1e-12)
    assert len(seen) == 16384
    assert min(seen) == 0.0 and max(seen) == 1.0


def test_14bit_lsb_alone_refines_the_last_msb_and_msb_resets_lsb():
    rig = Rig({"cc": 7, "mode": "14bit", "target": "filt.resonance", "takeover": "jump"})
    assert rig.send(39, 100) == []  # no MSB yet
    rig.send(7, 64)
    assert rig.table[RES] == 64 * 128 / 16383
    rig.send(39, 5)
    assert rig.table[RES] == (64 * 128 + 5) / 16383
    rig.send(39, 6)
    assert rig.table[RES] == (64 * 128 + 6) / 16383
    rig.send(7, 65)
    assert rig.table[RES] == 65 * 128 / 16383


def test_14bit_mapping_errors():
    with pytest.raises(MappingError, match=r"cc\[0\].cc: cc 40 cannot be the MSB"):
        parse_mapping(mapping_text({"cc": 40, "mode": "14bit", "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[1\].cc: cc 39 on any channel is already"):
        parse_mapping(mapping_text({"cc": 7, "mode": "14bit", "target": "a.b"},
                                   {"cc": 39, "target": "a.c"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].mode: mode '14-bit' is unknown "
                                           r"\(did you mean '14bit'\?\)"):
        parse_mapping(mapping_text({"cc": 7, "mode": "14-bit", "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].stepz: unknown key 'stepz' "
                                           r"\(did you mean 'steps'\?\)"):
        parse_mapping(mapping_text({"cc": 7, "stepz": 3, "target": "a.b"}), "m.toml")


# -- NRPN / RPN -----------------------------------------------------------------------------------

def nrpn(rig, msb, lsb, channel=0):
    rig.send(99, msb, channel)
    rig.send(98, lsb, channel)


def test_nrpn_select_data_entry_increment_decrement_and_null():
    rig = Rig({"nrpn": [1, 20], "target": "filt.resonance", "takeover": "jump", "steps": 100},
              {"nrpn": 300, "target": "macro:cutoff", "takeover": "jump"})
    rig.send(6, 10)  # nothing selected
    assert rig.table[RES] == 0.5
    nrpn(rig, 1, 20)
    rig.send(6, 100)
    assert rig.table[RES] == 100 * 128 / 16383
    rig.send(38, 77)
    assert rig.table[RES] == (100 * 128 + 77) / 16383
    before = rig.table[RES]
    rig.send(96, 0)
    assert rig.table[RES] == pytest.approx(before + 0.01)
    rig.send(97, 0)
    rig.send(97, 0)
    assert rig.table[RES] == pytest.approx(before - 0.01)
    # another parameter number (300 = 2/44): the macro, full resolution
    nrpn(rig, 2, 44)
    rig.send(6, 127)
    rig.send(38, 127)
    assert rig.router.macro_value("cutoff") == 1.0
    assert rig.table[CUTOFF] == 1.0
    # null deselects: data entry does nothing
    nrpn(rig, 127, 127)
    value = rig.table[CUTOFF]
    rig.send(6, 0)
    rig.send(96, 0)
    assert rig.table[CUTOFF] == value


def test_nrpn_on_another_channel_and_unmapped_numbers_do_nothing():
    rig = Rig({"nrpn": 5, "channel": 2, "target": "filt.resonance", "takeover": "jump"})
    nrpn(rig, 0, 5, channel=1)
    rig.send(6, 0, channel=1)
    assert rig.table[RES] == 0.5
    nrpn(rig, 0, 6, channel=2)
    rig.send(6, 0, channel=2)
    assert rig.table[RES] == 0.5
    nrpn(rig, 0, 5, channel=2)
    rig.send(6, 0, channel=2)
    assert rig.table[RES] == 0.0


def test_rpn0_sets_the_bend_range_semitones_and_cents():
    rig = Rig({"cc": 20, "target": "macro#1"})
    rig.send(101, 0)
    rig.send(100, 0)
    rig.send(6, 12)
    assert rig.bends[-1] == (0, 12.0)
    rig.send(38, 50)
    assert rig.bends[-1] == (0, 12.5)
    rig.send(96, 0)
    assert rig.bends[-1] == (0, 13.5)
    rig.send(6, 100)  # beyond what a preset allows
    assert rig.bends[-1] == (0, 48.0)
    rig.send(101, 127)
    rig.send(100, 127)
    n = len(rig.bends)
    rig.send(6, 3)
    assert len(rig.bends) == n
    # an RPN never reaches an NRPN control of the same number
    rig2 = Rig({"nrpn": 0, "target": "filt.resonance", "takeover": "jump"})
    rig2.send(101, 0)
    rig2.send(100, 0)
    rig2.send(6, 0)
    assert rig2.table[RES] == 0.5 and rig2.bends == [(0, 0.0)]


def test_nrpn_mapping_errors():
    with pytest.raises(MappingError, match=r"cc\[0\].rpn: rpn 0 .* is built in"):
        parse_mapping(mapping_text({"rpn": 0, "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].nrpn: nrpn = \[1, 200\] is not"):
        parse_mapping(mapping_text({"nrpn": [1, 200], "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].nrpn: control has both cc and nrpn"):
        parse_mapping(mapping_text({"cc": 3, "nrpn": 5, "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[1\].cc: .*data entry"):
        parse_mapping(mapping_text({"nrpn": 5, "target": "a.b"},
                                   {"cc": 6, "target": "a.c"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[1\].nrpn: nrpn 0/5 on any channel is already"):
        parse_mapping(mapping_text({"nrpn": 5, "target": "a.b"},
                                   {"nrpn": [0, 5], "target": "a.c"}), "m.toml")


def test_plain_cc6_mapping_keeps_working_without_nrpn():
    rig = Rig({"cc": 6, "target": "filt.resonance", "takeover": "jump"})
    rig.send(101, 0)
    rig.send(100, 0)
    rig.send(6, 127)
    assert rig.table[RES] == 1.0 and rig.bends == []


# -- relative encoders ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode, ups, downs", [
    ("relative_twos", {1: 1, 5: 5, 63: 63}, {127: -1, 123: -5, 65: -63}),
    ("relative_signed", {1: 1, 5: 5, 63: 63}, {65: -1, 69: -5, 127: -63}),
    ("relative_offset", {65: 1, 69: 5, 127: 63}, {63: -1, 59: -5, 1: -63}),
])
def test_relative_encodings_up_and_down(mode, ups, downs):
    for value, ticks in {**ups, **downs}.items():
        assert relative_ticks(mode, value) == ticks
    assert relative_ticks(mode, 64 if mode != "relative_twos" else 0) == 0
    rig = Rig({"cc": 30, "mode": mode, "target": "filt.resonance", "accel": False})
    up, down = min(ups, key=ups.get), min(downs, key=lambda v: -downs[v])
    rig.send(30, up)
    assert rig.table[RES] == pytest.approx(0.5 + 1 / 128)
    rig.send(30, down)
    rig.send(30, down)
    assert rig.table[RES] == pytest.approx(0.5 - 1 / 128)
    big_up = max(ups, key=ups.get)
    rig.send(30, big_up)
    assert rig.table[RES] == pytest.approx(0.5 - 1 / 128 + 63 / 128)
    rig.send(30, big_up)
    assert rig.table[RES] == 1.0  # clamped at the end
    assert rig.send(30, big_up) == []


def test_relative_steps_and_from_to():
    rig = Rig({"cc": 30, "mode": "relative_twos", "target": "osc.transpose_st", "steps": 96,
               "from": -48, "to": 48, "accel": False})
    spec = PARAMS[TRANSPOSE].spec
    values = []
    for _ in range(5):
        rig.send(30, 1)
        values.append(spec.from_norm(rig.table[TRANSPOSE]))
    assert values == [1, 2, 3, 4, 5]
    for _ in range(2):
        rig.send(30, 127)
    assert spec.from_norm(rig.table[TRANSPOSE]) == 3


def test_relative_acceleration_doubles_under_20ms_up_to_x8():
    rig = Rig({"cc": 30, "mode": "relative_twos", "target": "filt.resonance", "steps": 1024},
              table=[0.5, 0.0, 0.5])
    deltas = []
    for dt in (1.0, 0.010, 0.010, 0.010, 0.010, 0.019, 0.5, 0.010):
        before = rig.table[RES]
        rig.send(30, 1, dt=dt)
        deltas.append(round((rig.table[RES] - before) * 1024, 6))
    assert deltas == [1, 2, 4, 8, 8, ACCEL_MAX, 1, 2]
    rig.send(30, 127, dt=0.005)  # down, fast: x4
    assert rig.table[RES] == pytest.approx((1 + 2 + 4 + 8 + 8 + 8 + 1 + 2 - 4) / 1024)


def test_relative_follows_a_value_something_else_moved():
    rig = Rig({"cc": 30, "mode": "relative_offset", "target": "filt.resonance", "accel": False})
    rig.send(30, 65)
    rig.table[RES] = 0.25  # OSC moved it
    rig.send(30, 65)
    assert rig.table[RES] == pytest.approx(0.25 + 1 / 128)


def test_relative_mapping_errors():
    with pytest.raises(MappingError, match=r"cc\[0\].takeover: takeover does not apply"):
        parse_mapping(mapping_text({"cc": 3, "mode": "relative_twos", "takeover": "jump",
                                    "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].steps: steps 0 is out of range"):
        parse_mapping(mapping_text({"cc": 3, "mode": "relative_twos", "steps": 0,
                                    "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].accel: accel does not apply"):
        parse_mapping(mapping_text({"cc": 3, "accel": True, "target": "a.b"}), "m.toml")
    with pytest.raises(MappingError, match=r"cc\[0\].mode: mode 'relative' is unknown "
                                           r"\(did you mean"):
        parse_mapping(mapping_text({"cc": 3, "mode": "relative", "target": "a.b"}), "m.toml")


@pytest.mark.parametrize("control, message", [
    ({"cc": 5, "mode": "relative_two", "target": "a.b"},
     "cc[0].mode: mode 'relative_two' is unknown (did you mean 'relative_twos'?)"),
    ({"nrpn": 16383, "target": "a.b"},
     "cc[0].nrpn: nrpn 127/127 is the null parameter number (use another number: 127/127 "
     "deselects)"),
    ({"cc": 5, "takeover": "scaled", "target": "a.b"},
     "cc[0].takeover: takeover 'scaled' is unknown (did you mean 'scale'?)"),
])
def test_instrument_check_validates_the_new_keys(capsys, tmp_path, control, message):
    from instrument.cli.main import main

    path = tmp_path / "map.toml"
    path.write_text(mapping_text(control))
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {path}: {message}"]
    path.write_text(mapping_text({"cc": 7, "mode": "14bit", "target": "a.b"},
                                 {"rpn": 5, "channel": 3, "target": "macro#2"},
                                 {"cc": 30, "mode": "relative_offset", "steps": 64,
                                  "accel": False, "target": "macro:x"}))
    assert main(["check", str(path)]) == 0


def test_bend_range_event_rescales_the_held_bend():
    import numpy as np

    from instrument.engine.events import BEND_RANGE, PITCH_BEND
    from instrument.layout import E_BAD_EVENTS, E_BEND_RANGE_ST, E_BEND_TARGET
    from instrument.engine.voicing import apply_event

    eng = np.zeros(64)
    eng[E_BEND_RANGE_ST] = 2.0
    z = np.zeros((1, 1))

    def apply(kind, a):  # the plain Python function: only eng is touched by these kinds
        apply_event.py_func(kind, a, 0.0, np.zeros(8, dtype=np.int64), z, z, z, z, z,
                            np.zeros(1), eng, np.zeros(128), np.zeros(1))

    apply(PITCH_BEND, 0.5)
    assert eng[E_BEND_TARGET] == 1.0  # half a bend up, range 2
    apply(BEND_RANGE, 12.0)
    assert eng[E_BEND_RANGE_ST] == 12.0 and eng[E_BEND_TARGET] == 6.0
    apply(BEND_RANGE, 60.0)
    assert eng[E_BEND_RANGE_ST] == 12.0 and eng[E_BAD_EVENTS] == 1.0


# -- scale takeover -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, sweep", [
    (0.8, range(0, 128)),            # knob far below, moving up
    (0.2, range(127, -1, -1)),       # knob far above, moving down
    (0.3, range(100, 128)),          # knob above the value, moving up: follows, slower
])
def test_scale_takeover_never_jumps_and_meets_at_the_end(value, sweep):
    rig = Rig({"cc": 40, "target": "filt.resonance", "takeover": "scale"},
              table=[0.5, value, 0.5])
    prev_knob = None
    for position in sweep:
        before = rig.table[RES]
        rig.send(40, position)
        knob = position / 127
        if prev_knob is not None:
            assert abs(rig.table[RES] - before) <= abs(knob - prev_knob) + 1e-12
            assert (rig.table[RES] - before) * (knob - prev_knob) >= 0  # same direction
        prev_knob = knob
    end = sweep[-1] / 127
    if end in (0.0, 1.0) and (value - sweep[0] / 127) * (end - sweep[0] / 127) > 0:
        assert rig.table[RES] == end  # they met at the end of the travel
    # once met the knob follows exactly, both ways
    for position in (sweep[-1], 64, 65, 10):
        rig.send(40, position)
    if rig.router._bindings[0].engaged:
        assert rig.table[RES] == 10 / 127


def test_scale_takeover_sweep_up_meets_at_the_top_then_follows():
    rig = Rig({"cc": 40, "target": "filt.resonance", "takeover": "scale"}, table=[0.5, 0.9, 0.5])
    for position in range(0, 128):
        rig.send(40, position)
    assert rig.table[RES] == 1.0
    rig.send(40, 64)
    assert rig.table[RES] == 64 / 127


def test_scale_takeover_again_after_something_else_moved_it():
    rig = Rig({"cc": 40, "target": "filt.resonance", "takeover": "scale"}, table=[0.5, 0.5, 0.5])
    rig.send(40, 64)
    rig.send(40, 63)
    assert rig.table[RES] == 63 / 127  # met (crossed) at once: follows
    rig.table[RES] = 0.9  # OSC moved it
    rig.send(40, 70)
    assert 0.9 < rig.table[RES] < 0.9 + 7 / 127  # scaled toward the top, not a jump


def test_str_lists_the_new_modes():
    rig = Rig({"cc": 7, "mode": "14bit", "target": "filt.resonance"},
              {"nrpn": [1, 2], "target": "macro#1", "takeover": "scale"},
              {"cc": 30, "mode": "relative_signed", "target": "filt.cutoff_hz"})
    text = str(rig.router)
    assert "cc 7/39 ch any -> filt.resonance" in text and "14-bit, pickup" in text
    assert "nrpn 1/2 ch any -> macro#1" in text and "scale" in text
    assert "relative_signed" in text


def test_handle_stays_cheap_for_every_mode():
    rig = Rig({"cc": 7, "mode": "14bit", "target": "filt.resonance", "takeover": "jump"},
              {"cc": 30, "mode": "relative_twos", "target": "filt.cutoff_hz"})
    handle = rig.router.handle
    n = 20000
    start = time.perf_counter()
    for i in range(n):
        handle(0, 7, i & 127, 1.0)
        handle(0, 30, 1 if i & 1 else 127, float(i))
    per = (time.perf_counter() - start) / (2 * n)
    assert per < 20e-6


# -- live: JACK MIDI into ``instrument run``, values read back over OSC ---------------------------

RES_ADDRESS = "/param/filt/resonance"


def _query(client, address: str, want: float, timeout_s: float = 5.0) -> float:
    """The value ``/q`` answers for ``address``, polled until it is ``want`` (or time out)."""
    end = time.monotonic() + timeout_s
    value = float("nan")
    while time.monotonic() < end:
        client.send("/q", address)
        for addr, args in client.receive(0.2):
            if addr == address and args:
                value = float(args[0])
        if value == pytest.approx(want, abs=2e-6):
            break
    return value


@pytest.mark.integration
def test_live_14bit_nrpn_and_relative_encoder(jack_server, tmp_path):
    from live import JackMidiOut, LiveInstrument, wait_status
    from test_osc_feedback import Client

    mapping_file = tmp_path / "hires.toml"
    mapping_file.write_text(mapping_text(
        {"cc": 5, "mode": "14bit", "target": "filt.resonance", "takeover": "jump"},
        {"nrpn": [1, 20], "target": "filt.resonance", "takeover": "jump"},
        {"cc": 30, "mode": "relative_twos", "target": "filt.resonance", "accel": False}))
    inst = LiveInstrument(jack_server.env, "presets/poly16.toml", "--mapping", str(mapping_file))
    try:
        inst.wait_ports()
        wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, 30)
        client = Client(inst.osc_port)
        keys = JackMidiOut()
        # 14-bit fader: MSB 100, LSB 77
        keys.send(0xB0, 5, 100)
        keys.send(0xB0, 37, 77)
        want = (100 * 128 + 77) / 16383
        assert _query(client, RES_ADDRESS, want) == pytest.approx(want, abs=2e-6)
        # NRPN 1/20 = MSB 20, LSB 3
        for cc, value in ((99, 1), (98, 20), (6, 20), (38, 3)):
            keys.send(0xB0, cc, value)
        want = (20 * 128 + 3) / 16383
        assert _query(client, RES_ADDRESS, want) == pytest.approx(want, abs=2e-6)
        # relative encoder: three ticks up, one down
        for value in (1, 1, 1, 127):
            keys.send(0xB0, 30, value)
            time.sleep(0.03)
        want += 2 / 128
        assert _query(client, RES_ADDRESS, want) == pytest.approx(want, abs=2e-6)
        keys.close()
        client.close()
    finally:
        assert inst.stop() == 0, inst.output()
