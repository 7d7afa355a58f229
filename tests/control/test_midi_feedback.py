"""MIDI feedback out (``control/midi_feedback.py``) and takeover ghosts (``CcRouter.ghosts``):
pure logic with a fake clock here; the live paths (JACK MIDI through a real ``instrument run``,
OSC over UDP) in ``test_midi_feedback_live.py``."""

import pytest

from instrument.control.cc_router import CcRouter
from instrument.control.mapping import MappingError, parse_mapping
from instrument.control.midi_feedback import (
    HOLD_S, MIN_INTERVAL_S, FeedbackSchedule, MidiFeedback, _Target, feedback_messages,
    pair_output, wire_value,
)
from instrument.presets import compile_file
from live import REPO


@pytest.fixture(scope="module")
def plan():
    return compile_file(REPO / "presets" / "poly16.toml", 48000, 64)


def _mapping(body: str, top: str = ""):
    return parse_mapping(f"format = 1\n{top}\n{body}", "fb.toml")


# ---- when to send ----------------------------------------------------------------------------

def test_a_changing_value_is_sent_at_most_every_interval_coalesced_to_the_latest():
    s = FeedbackSchedule()
    sent = []
    t = 0.0
    for i in range(100):  # the value changes every 1 ms for 0.1 s
        if s.due("k", i, t):
            sent.append((t, i))
        t += 0.001
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= MIN_INTERVAL_S - 1e-9
    assert len(sent) <= 0.1 / MIN_INTERVAL_S + 1
    assert s.due("k", 99, t + MIN_INTERVAL_S)  # the latest value goes out after the interval
    assert not s.due("k", 99, t + 1.0)  # ...once: the controller shows it


def test_nothing_is_sent_while_the_control_moves_then_the_differing_value_once():
    s = FeedbackSchedule()
    assert s.due("k", 64, 0.0)
    t = 1.0
    for value in range(0, 40):  # the knob moves (a pickup knob that does not take over)
        s.touched("k", t, value)
        assert not s.due("k", 64, t)  # the parameter stays 64: held back while it moves
        t += 0.01
    assert not s.due("k", 64, t - 0.01 + HOLD_S - 0.001)
    assert s.due("k", 64, t - 0.01 + HOLD_S)  # moved back to the value, once
    assert not s.due("k", 64, t + 1.0)


def test_a_value_the_knob_itself_set_is_not_sent_back():
    s = FeedbackSchedule()
    s.touched("k", 0.0, 100)
    assert not s.due("k", 100, 5.0)


def test_forget_sends_every_value_again():
    s = FeedbackSchedule()
    assert s.due("a", 10, 0.0) and s.due("b", 20, 0.0)
    assert not s.due("a", 10, 1.0)
    s.forget()  # a preset load, a new connection
    assert s.due("a", 10, 1.0) and s.due("b", 20, 1.0)


# ---- what is sent ------------------------------------------------------------------------------

def test_messages_are_the_controls_own_7_bit_14_bit_and_nrpn():
    m = _mapping('[[cc]]\ncc = 20\ntarget = "macro#1"\n'
                 '[[cc]]\ncc = 1\nmode = "14bit"\ntarget = "macro#2"\n'
                 '[[cc]]\nnrpn = [1, 20]\ntarget = "macro#3"\n'
                 '[[cc]]\nrpn = 5\ntarget = "macro#4"\n', "feedback = true")
    cc7, cc14, nrpn, rpn = m.controls
    assert wire_value(cc7, 0.5) == 64 and wire_value(cc14, 0.5) == 8192
    assert feedback_messages(cc7, 64, 2) == [[0xB2, 20, 64]]
    assert feedback_messages(cc14, 8193, 0) == [[0xB0, 1, 64], [0xB0, 33, 1]]
    assert feedback_messages(nrpn, 16383, 0) == [[0xB0, 99, 1], [0xB0, 98, 20],
                                                 [0xB0, 6, 127], [0xB0, 38, 127]]
    assert feedback_messages(rpn, 0, 15) == [[0xBF, 101, 0], [0xBF, 100, 5],
                                             [0xBF, 6, 0], [0xBF, 38, 0]]


def test_feedback_keys_in_a_mapping():
    m = _mapping('[[cc]]\ncc = 20\ntarget = "macro#1"\n'
                 '[[cc]]\ncc = 21\ntarget = "macro#2"\nfeedback = false\n'
                 '[[cc]]\ncc = 22\ntarget = "macro#3"\nmode = "relative_twos"\n'
                 '[[cc]]\ncc = 23\ntarget = "macro#4"\nmode = "relative_twos"\nfeedback = true\n',
                 "feedback = true")
    assert [c.feedback for c in m.controls] == [True, False, False, True]
    assert m.feedback
    assert not _mapping('[[cc]]\ncc = 20\ntarget = "macro#1"\n').feedback  # off by default
    with pytest.raises(MappingError) as info:
        _mapping('[[cc]]\ncc = 20\ntarget = "macro#1"\nfeedback = 1\n')
    assert str(info.value) == ("fb.toml: cc[0].feedback: feedback = 1 is not true or false "
                               "(write feedback = true or feedback = false)")


def test_a_value_a_knob_set_maps_back_to_that_knob_position(plan):
    m = _mapping('[[cc]]\ncc = 20\ntarget = "filt.cutoff_hz"\ntakeover = "jump"\n'
                 '[[cc]]\ncc = 21\ntarget = "filt.cutoff_hz"\nfrom = 100\nto = 5000\n'
                 'curve = "exp"\ntakeover = "jump"\n'
                 '[[cc]]\ncc = 1\nmode = "14bit"\ntarget = "macro:cutoff"\ntakeover = "jump"\n',
                 "feedback = true")
    values = [slot.initial_norm for slot in plan.params]
    router = CcRouter(m, plan.params, plan.macros, lambda i: values[i])
    index = next(s.index for s in plan.params if s.path == "filt.cutoff_hz")
    for cc in (20, 21):
        for knob in (0, 1, 37, 100, 127):
            for i, norm in router.handle(0, cc, knob):
                values[i] = norm
            positions = {c.cc: p for c, p, _, _ in router.positions(values, [0.0] * 8)}
            assert wire_value(next(c for c in m.controls if c.cc == cc), positions[cc]) == knob
    router.handle(0, 1, 77)
    router.handle(0, 33, 5)
    macros = [router.macro_value(mc.name) for mc in plan.macros]
    hires = next(c for c in m.controls if c.cc == 1)
    position = next(p for c, p, _, _ in router.positions(values, macros) if c is hires)
    assert wire_value(hires, position) == 77 * 128 + 5
    assert index >= 0


class _Out:
    def __init__(self):
        self.sent = []

    def send_message(self, message):
        self.sent.append(list(message))


class _Inputs:  # what MidiFeedback reads of MidiInputs
    rtmidi = api = jack_lsp = None
    client_name = "instrument"
    virtual_name = "instrument:in"
    ports: dict = {}
    connections: dict = {}


class _State:  # what it reads of the host
    def __init__(self, plan):
        self.plan = plan
        self.values = [slot.initial_norm for slot in plan.params]

    def plan_and_values(self):
        return self.plan, list(self.values)

    def macro_positions(self):
        return [m.initial_norm for m in self.plan.macros]


def test_the_sending_thread_on_connect_move_choice_zone_and_preset_load(plan):
    """``MidiFeedback.tick`` with a fake clock, a fake output and the real poly16 plan."""
    m = _mapping('[[cc]]\ncc = 20\ntarget = "filt.cutoff_hz"\n'
                 '[[cc]]\ncc = 21\ntarget = "osc1.transpose_st"\nfrom = 0\nto = 1\n',
                 "feedback = true")
    state, out = _State(plan), _Out()
    fb = MidiFeedback(state, _Inputs(), lambda name: m)
    fb.targets["ctl:out"] = _Target("ctl:in", out, m, 0.0)
    cutoff = next(s.index for s in plan.params if s.path == "filt.cutoff_hz")
    transpose = next(s for s in plan.params if s.path == "osc1.transpose_st")
    fb.tick(0.0)  # connected: every value
    assert out.sent == [[0xB0, 20, round(state.values[cutoff] * 127)], [0xB0, 21, 32]]
    out.sent.clear()
    fb.on_midi("ctl:out", [0xB1, 21, 127], 1.0)  # the choice knob turned up, on channel 2
    state.values[transpose.index] = transpose.spec.to_norm(1)  # (what the host's router does)
    fb.tick(1.0 + HOLD_S + 0.01)
    assert out.sent == []  # 127 is in the zone of 1 (64..127): the knob shows it already
    fb.on_midi("ctl:out", [0xB0, 20, 10], 2.0)  # the cutoff knob moves, OSC sets 0.5
    state.values[cutoff] = 0.5
    fb.tick(2.1)
    assert out.sent == []  # moving
    fb.tick(2.0 + HOLD_S + 0.001)
    assert out.sent == [[0xB0, 20, 64]]  # stopped away from the value: the value, once
    fb.tick(3.0)
    assert out.sent == [[0xB0, 20, 64]]
    out.sent.clear()
    state.plan = compile_file(REPO / "presets" / "poly16.toml", 48000, 64)  # a preset load
    fb.tick(4.0)
    assert [m[:2] for m in out.sent] == [[0xB0, 20], [0xB1, 21]]  # all again, its channel


# ---- pairing a controller's input with its output ----------------------------------------------

@pytest.mark.parametrize("name, outputs, expected", [
    ("X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0",  # ALSA: the same port, readable and writable
     ["Midi Through:Midi Through Port-0 14:0", "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0"],
     "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0"),
    ("a2j:X-TOUCH MINI [20] (capture): X-TOUCH MINI MIDI 1",  # JACK through a2jmidid
     ["a2j:Midi Through [14] (playback): Midi Through Port-0",
      "a2j:X-TOUCH MINI [20] (playback): X-TOUCH MINI MIDI 1"],
     "a2j:X-TOUCH MINI [20] (playback): X-TOUCH MINI MIDI 1"),
    ("fbctl:out", ["instrument:in", "fbctl-01:in", "other:in"], "fbctl-01:in"),  # JACK clients
    ("fbctl:out", ["fbctl-01:in", "fbctl-01:in2"], None),  # two candidates: none is clear
    ("keys:out", ["instrument:in", "synth:in"], None),  # a keyboard without MIDI in
    ("instrument-feedback:out", ["instrument:in"], None),  # never ourselves
])
def test_pair_output(name, outputs, expected):
    assert pair_output(name, outputs) == expected


# ---- takeover ghosts ---------------------------------------------------------------------------

def test_a_pickup_knob_away_from_the_value_is_a_ghost_until_it_takes_over(plan):
    m = _mapping('[[cc]]\ncc = 20\ntarget = "filt.cutoff_hz"\n'
                 '[[cc]]\ncc = 21\ntarget = "filt.resonance"\ntakeover = "jump"\n'
                 '[[cc]]\ncc = 22\ntarget = "macro:detune"\ntakeover = "scale"\n')
    values = [slot.initial_norm for slot in plan.params]
    router = CcRouter(m, plan.params, plan.macros, lambda i: values[i])
    cutoff = next(s.index for s in plan.params if s.path == "filt.cutoff_hz")
    values[cutoff] = 0.8
    assert router.ghosts() == {}  # no knob moved yet: nowhere known
    assert router.handle(0, 20, 10) == []  # far below 0.8: no takeover
    assert router.ghosts() == {("param", cutoff): pytest.approx(10 / 127)}
    for i, norm in router.handle(0, 21, 5):  # a jump knob takes over at once: no ghost
        values[i] = norm
    assert set(router.ghosts()) == {("param", cutoff)}
    for knob in (60, 110):  # crosses 0.8 (101.6): takes over
        for i, norm in router.handle(0, 20, knob):
            values[i] = norm
    assert router.ghosts() == {}
    values[cutoff] = 0.2  # something else (OSC) moves it: the knob is a ghost again
    assert router.ghosts() == {("param", cutoff): pytest.approx(110 / 127)}
    detune = next(mc.index for mc in plan.macros if mc.name == "detune")
    router.set_macro_value("detune", 0.9)
    router.handle(0, 22, 0)
    router.handle(0, 22, 10)  # scale: the value follows partway, the knob is elsewhere
    assert router.ghosts()[("macro", detune)] == pytest.approx(10 / 127)


def test_an_echoing_controller_does_not_loop(plan):
    """A controller that sends back each feedback message (MIDI thru), through the host's
    router: the value moves by at most half a knob step, once, and nothing more is sent."""
    m = _mapping('[[cc]]\ncc = 20\ntarget = "filt.cutoff_hz"\n', "feedback = true")
    state, out = _State(plan), _Out()
    router = CcRouter(m, plan.params, plan.macros, lambda i: state.values[i])
    fb = MidiFeedback(state, _Inputs(), lambda name: m)
    fb.targets["ctl:out"] = _Target("ctl:in", out, m, 0.0)
    cutoff = next(s.index for s in plan.params if s.path == "filt.cutoff_hz")
    state.values[cutoff] = 0.3  # OSC
    t, sent = 0.0, 0
    for _ in range(200):  # 2 s of ticks, each echo handled as the host does
        fb.tick(t)
        for message in out.sent[sent:]:
            fb.on_midi("ctl:out", message, t)
            for i, norm in router.handle(message[0] & 15, message[1], message[2], t):
                state.values[i] = norm
        sent = len(out.sent)
        t += 0.01
    assert out.sent == [[0xB0, 20, 38]]  # 0.3 * 127 = 38.1
    assert abs(state.values[cutoff] - 0.3) <= 0.5 / 127
