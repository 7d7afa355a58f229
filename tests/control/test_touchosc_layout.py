"""``instrument layout``: the TouchOSC document generated from a preset's metadata.

There is no TouchOSC here to open the file, so what is checked is what the instrument depends
on: the document decompresses and parses as the ``.tosc`` dialect (``<lexml version='6'>``, one
GROUP root, unique node IDs, every frame inside its parent), and every OSC binding it holds is an
address the instrument listens to (``OscAddressMap.for_plan`` plus the fixed and feedback
addresses), with the argument types and ranges the instrument reads: 0..1 for parameters and
macros, radios whose steps send exactly the normalized value of each choice, toggles 0/1, note
messages ``i f`` and ``i``, ``/panic`` without arguments.
"""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from instrument.cli.main import main
from instrument.control.osc import OscAddressMap, OscRouter
from instrument.control.osc_datagram import decode_datagram
from instrument.control.osc_feedback import OscFeedback
from instrument.control.touchosc_layout import (
    KEYBOARDS, LEXML_VERSION, NOTE_VELOCITY, layout_bytes, layout_xml, read_layout,
)
from instrument.params.curves import Kind
from instrument.presets import compile_file
from live import REPO

SHIPPED = sorted((REPO / "presets").glob("*.toml"))
FIXED = {"/note/on", "/note/off", "/panic"}
# Heard by the feedback side (control/osc_feedback.py OscFeedback.on_message), not the router.
FEEDBACK = {"/sync", "/q"}


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.stem)
def shipped(request):
    plan = compile_file(request.param, 48000, 64)
    data = layout_bytes(plan)
    return plan, data, read_layout(data)


def _address(slot) -> str:
    node, _, name = slot.path.partition(".")
    return f"/param/{node}/{name}"


def _main_binding(controls, address):
    """The one binding that sends ``address`` on a change of ``x``."""
    found = [c for c in controls
             if c.address == address and c.send and c.trigger == (("x", "ANY"),)]
    assert len(found) == 1, (address, found)
    return found[0]


# -- the document ------------------------------------------------------------------------------

def test_the_file_is_a_zlib_compressed_lexml_document(shipped):
    plan, data, controls = shipped
    text = zlib.decompress(data).decode("utf-8")
    assert text == layout_xml(plan)
    assert text.startswith("<?xml version='1.0' encoding='UTF-8'?><lexml version=")
    root = ET.fromstring(text)
    assert root.tag == "lexml" and root.get("version") == LEXML_VERSION
    nodes = root.findall("node")
    assert len(nodes) == 1 and nodes[0].get("type") == "GROUP"
    assert nodes[0].find("includes") is not None
    ids = [n.get("ID") for n in root.iter("node")]
    assert len(ids) == len(set(ids)), "node IDs repeat"
    assert controls, "no OSC bindings"


def test_every_frame_lies_inside_its_parent(shipped):
    _, data, _ = shipped

    def frame(node):
        for prop in node.findall("./properties/property"):
            if prop.findtext("key") == "frame":
                return [float(prop.find("value").findtext(k)) for k in "xywh"]
        raise AssertionError(f"{node.get('type')} without a frame")

    def walk(node):
        _, _, w, h = frame(node)
        for child in node.findall("./children/node"):
            x, y, cw, ch = frame(child)
            assert cw > 0 and ch > 0
            assert -1e-9 <= x and x + cw <= w + 1e-9 and -1e-9 <= y and y + ch <= h + 1e-9, \
                (child.get("type"), frame(child), (w, h))
            walk(child)

    walk(ET.fromstring(zlib.decompress(data)).find("node"))


def test_the_same_preset_gives_the_same_bytes():
    path = REPO / "presets" / "pad.toml"
    first = layout_bytes(compile_file(path, 48000, 64))
    assert layout_bytes(compile_file(path, 48000, 64)) == first
    assert read_layout(zlib.decompress(first)) == read_layout(first)  # XML reads the same


def test_read_layout_refuses_what_is_not_a_layout():
    for junk in (b"", b"not xml", zlib.compress(b"<other/>"), b"\x78\x9c broken"):
        with pytest.raises(ValueError):
            read_layout(junk)


# -- addresses and ranges ----------------------------------------------------------------------

def test_every_address_is_one_the_instrument_listens_to(shipped):
    plan, _, controls = shipped
    amap = OscAddressMap.for_plan(plan)
    listened = set(amap.params) | set(amap.macros)
    allowed = listened | FIXED | FEEDBACK | {a + "/touch" for a in listened}
    received = {a + "/text" for a in amap.params} | listened
    for c in controls:
        if c.send:
            assert c.address in allowed, c
        if c.receive:
            assert c.address in received, c
        if c.address == "/q":  # a query names a parameter of this preset
            assert [a.source for a in c.args] == ["CONSTANT"] and c.args[0].type == "s"
            assert c.args[0].value in amap.params


def test_every_parameter_and_macro_has_its_control_and_ranges_are_0_to_1(shipped):
    plan, _, controls = shipped
    for slot in plan.params:
        c = _main_binding(controls, _address(slot))
        assert c.receive, c  # feedback moves it
        assert len(c.args) == 1
        arg = c.args[0]
        assert (arg.type, arg.source, arg.value, arg.lo) == ("f", "VALUE", "x", 0.0)
        if slot.spec.kind == Kind.CHOICE:
            assert c.type == "RADIO" and c.steps == len(slot.spec.choices), c
        else:
            assert arg.hi == 1.0, c
    for macro in plan.macros:
        c = _main_binding(controls, f"/macro/{macro.name}")
        assert c.type == "FADER" and c.receive
        assert [(a.type, a.source, a.value, a.lo, a.hi) for a in c.args] == \
            [("f", "VALUE", "x", 0.0, 1.0)]


def test_controls_by_kind(shipped):
    plan, _, controls = shipped
    for slot in plan.params:
        c = _main_binding(controls, _address(slot))
        kind = slot.spec.kind
        if kind == Kind.BOOL:
            assert c.type == "BUTTON" and c.button_type in (1, 2), c  # a toggle
        elif kind == Kind.CHOICE:
            assert c.type == "RADIO", c
        else:
            assert c.type == "FADER", c


def test_each_radio_step_sends_the_normalized_value_of_its_choice(shipped):
    """TouchOSC sends ``lo + x * (hi - lo)`` with ``x`` the step index; the instrument maps a
    CHOICE's normalized value to round(norm * (n - 1)). Float32 on the wire included."""
    plan, _, controls = shipped
    choices = [s for s in plan.params if s.spec.kind == Kind.CHOICE]
    for slot in choices:
        c = _main_binding(controls, _address(slot))
        arg = c.args[0]
        for index in range(c.steps):
            sent = arg.lo + index * (arg.hi - arg.lo)
            on_the_wire = float(np.float32(sent))
            assert 0.0 <= on_the_wire <= 1.0
            assert slot.spec.from_norm(on_the_wire) == index, (slot.path, index, sent)
            assert math.isclose(sent, slot.spec.to_norm(index), abs_tol=1e-12)


def test_text_labels_and_touch_for_every_parameter(shipped):
    plan, _, controls = shipped
    addresses = [_address(s) for s in plan.params] + [f"/macro/{m.name}" for m in plan.macros]
    for address in addresses:
        touch = [c for c in controls if c.address == address + "/touch"]
        assert len(touch) == 1, address
        assert touch[0].trigger == (("touch", "ANY"),) and touch[0].send
        assert [(a.type, a.source, a.value, a.lo, a.hi) for a in touch[0].args] == \
            [("i", "VALUE", "touch", 0.0, 1.0)]
    for slot in plan.params:
        address = _address(slot)
        text = [c for c in controls if c.address == address + "/text"]
        assert len(text) == 1, address
        assert text[0].type == "LABEL" and text[0].receive and not text[0].send
        assert [(a.type, a.value) for a in text[0].args] == [("s", "text")]
        query = [c for c in controls if c.address == "/q" and c.args[0].value == address]
        assert len(query) == 1 and query[0].trigger == (("touch", "FALL"),)


# -- what TouchOSC would send, through the instrument's own receive path ---------------------

class _Host:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


class _State:
    def __init__(self, plan):
        self.plan = plan
        self.values = np.array([s.initial_norm for s in plan.params])

    def plan_and_values(self):
        return self.plan, self.values


class _Sock:
    def __init__(self):
        self.sent = []

    def sendto(self, data, target):
        self.sent.extend(decode_datagram(data))


def _touchosc_sends(control, x):
    """The datagram TouchOSC sends for ``control`` with its trigger value at ``x``: a VALUE
    argument is ``lo + x * (hi - lo)`` converted, a CONSTANT its text converted."""
    builder = OscMessageBuilder(control.address)
    for arg in control.args:
        number = arg.lo + x * (arg.hi - arg.lo) if arg.source == "VALUE" else None
        if arg.type == "f":
            builder.add_arg(float(arg.value) if number is None else number, "f")
        elif arg.type == "i":
            builder.add_arg(int(arg.value) if number is None else int(round(number)), "i")
        else:
            builder.add_arg(arg.value, "s")
    return builder.build().dgram


def test_every_binding_is_applied_by_the_instrument(shipped):
    """Each sending binding, at the ends and inside of its range, decoded by ``osc_datagram``
    and handed to the feedback and the router as ``OscServer.receive`` does: nothing counted
    as unknown or malformed, and each parameter and macro lands on its own index."""
    plan, _, controls = shipped
    host, sock = _Host(), _Sock()
    router = OscRouter(host)
    router.map = OscAddressMap.for_plan(plan)
    feedback = OscFeedback(_State(plan), sock)
    for control in (c for c in controls if c.send):
        if control.steps:
            xs = range(control.steps)
        elif control.trigger[0] in (("x", "RISE"), ("touch", "FALL")):
            xs = (1.0,) if control.trigger[0][1] == "RISE" else (0.0,)
        elif control.trigger[0] == ("x", "FALL"):
            xs = (0.0,)
        elif control.type == "BUTTON" or control.trigger[0][0] == "touch":
            xs = (0.0, 1.0)
        else:
            xs = (0.0, 0.37, 1.0)
        for x in xs:
            host.calls.clear()
            [(address, args)] = decode_datagram(_touchosc_sends(control, x))
            if feedback.on_message("127.0.0.1", 9001, address, args):
                assert not host.calls
                continue
            assert router.handle(address, args), (control, x, args)
            [call] = host.calls
            if address in router.map.params:
                index = router.map.params[address]
                slot = plan.params[index]
                assert call[:2] == ("set_param_norm", index)
                if control.steps:
                    assert slot.spec.from_norm(call[2]) == x
                else:
                    assert call[2] == pytest.approx(x, abs=1e-6)
            elif address in router.map.macros:
                assert call == ("set_macro", router.map.macros[address],
                                pytest.approx(x, abs=1e-6))
            elif address == "/note/on":
                assert call == ("note_on", int(args[0]), pytest.approx(NOTE_VELOCITY))
            elif address == "/note/off":
                assert call == ("note_off", int(args[0]))
            else:
                assert address == "/panic" and call == ("panic",)
    assert router.counts.unknown == router.counts.malformed == 0
    answered = {a for a, _ in sock.sent}
    for slot in plan.params:  # the /q on release was answered with the text
        assert _address(slot) + "/text" in answered


# -- pages -------------------------------------------------------------------------------------

def test_the_eight_macros_are_on_the_first_page(shipped):
    plan, _, controls = shipped
    pages = list(dict.fromkeys(c.page for c in controls if c.page))
    assert pages[0] == "Macros"
    on_first = [c.address for c in controls if c.page == pages[0] and c.trigger == (("x", "ANY"),)]
    assert on_first == [f"/macro/{m.name}" for m in plan.macros]
    assert len(plan.macros) == 8


def test_a_page_per_module_with_its_parameters(shipped):
    plan, _, controls = shipped
    pages = list(dict.fromkeys(c.page for c in controls if c.page))
    nodes = list(dict.fromkeys(s.node for s in plan.params))
    assert pages == ["Macros", "Keys", *nodes]
    for slot in plan.params:
        assert _main_binding(controls, _address(slot)).page == slot.node


def test_keys_send_note_on_and_off_and_there_is_a_panic_button(shipped):
    _, _, controls = shipped
    on = [c for c in controls if c.address == "/note/on"]
    off = [c for c in controls if c.address == "/note/off"]
    notes = []
    for c in on:
        assert c.type == "BUTTON" and c.button_type == 0 and c.page == "Keys"  # momentary
        assert c.trigger == (("x", "RISE"),)
        assert [(a.type, a.source) for a in c.args] == [("i", "CONSTANT"), ("f", "CONSTANT")]
        note, velocity = int(c.args[0].value), float(c.args[1].value)
        assert 0 <= note <= 127 and velocity == NOTE_VELOCITY and 0 < velocity <= 1
        notes.append(note)
    released = []
    for c in off:
        assert c.trigger == (("x", "FALL"),)
        assert [(a.type, a.source) for a in c.args] == [("i", "CONSTANT")]
        released.append(int(c.args[0].value))
    assert notes == released  # each key releases what it pressed
    assert len(set(notes)) == len(notes) == 24 * len(KEYBOARDS)
    assert sorted(notes) == sorted(n for low in KEYBOARDS for n in range(low, low + 24))
    panic = [c for c in controls if c.address == "/panic"]
    assert len(panic) == 1 and panic[0].args == () and panic[0].trigger == (("x", "RISE"),)


# -- the command -------------------------------------------------------------------------------

def test_layout_command_writes_the_file(tmp_path, capsys):
    out = tmp_path / "pad.tosc"
    assert main(["layout", str(REPO / "presets" / "pad.toml"), "-o", str(out)]) == 0
    assert out.read_bytes() == layout_bytes(compile_file(REPO / "presets" / "pad.toml", 48000,
                                                         64))
    assert not [p for p in tmp_path.iterdir() if p != out], "temporary file left behind"
    assert f"wrote {out}" in capsys.readouterr().err


def test_layout_command_defaults_to_the_preset_stem_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["layout", str(REPO / "presets" / "init.toml")]) == 0
    assert read_layout((tmp_path / "init.tosc").read_bytes())


def test_layout_command_on_a_broken_preset_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('format = 1\nname = "Bad"\n[voice]\nconnect = ["nothing -> here"]\n')
    for args in (["layout", str(bad)], ["layout", str(tmp_path / "missing.toml")],
                 ["layout", str(REPO / "presets" / "pad.toml"), "-o",
                  str(tmp_path / "no" / "such" / "dir.tosc")]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_layout_command_through_the_console_script(tmp_path):
    script = Path(sys.executable).with_name("instrument")
    ok = subprocess.run([str(script), "layout", str(REPO / "presets" / "lead.toml"), "-o",
                         str(tmp_path / "x.tosc")], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert read_layout((tmp_path / "x.tosc").read_bytes())
    bad = tmp_path / "bad.toml"
    bad.write_text("this is [not toml\n")
    failed = subprocess.run([str(script), "layout", str(bad)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert failed.returncode == 2
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    assert not (tmp_path / "bad.tosc").exists()
