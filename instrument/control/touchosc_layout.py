"""TouchOSC layouts generated from a preset: ``instrument layout PRESET -o PRESET.tosc``.

``layout_xml(plan)`` is the document, ``layout_bytes(plan)`` the ``.tosc`` file (what TouchOSC
opens; also served over HTTP by importing this), ``read_layout(data)`` reads one back as a flat
list of its OSC bindings (the tests use it). Same plan in, same bytes out: every node ID is a
uuid5 of its role and address, nothing depends on time or dict order.

What the layout holds (canvas 1024 x 768; TouchOSC scales it to the screen):

- a header: the preset name, a Sync button (``/sync``: the instrument answers with every value
  and text) and a PANIC button (``/panic``, no arguments);
- a pager whose first page has the eight macros: faders sending ``/macro/<name> f`` 0..1 (and
  receiving it, so other clients and MIDI knobs move them), a caption, and a percentage readout
  that a short Lua script on the fader keeps up to date (the instrument sends no macro text);
- a Keys page: two keyboards of two octaves (C2-B3, C4-B5), each key a momentary button that
  sends ``/note/on i f`` (note, velocity 0.8) on press and ``/note/off i`` on release;
- one page per module (node) with parameters, in plan order: continuous and integer parameters
  are faders (``/param/<node>/<param> f`` 0..1), choices are radios with one step per choice
  (captions over the steps), booleans toggle buttons (0/1). Each has a caption, and a label
  bound to ``/param/<node>/<param>/text`` where the instrument sends the display text.

Every parameter and macro control also sends ``<address>/touch i`` 1 when a finger lands and 0
when it lifts (the instrument holds its feedback for a touched address), and, for parameters,
``/q <address>`` when the finger lifts: the instrument does not echo a value to the client that
set it, so without the query the text label of the control you are moving would go stale.

The ``.tosc`` format, and where each fact comes from (public sources; no TouchOSC here to open
the result, see the tests for what is checked instead):

- A ``.tosc`` file is a zlib stream (not ZIP, not gzip) of UTF-8 XML; the root is
  ``<lexml version='6'>`` (TouchOSC 1.5; 1.0-1.4 wrote ``3``) holding exactly one ``GROUP``
  node, the canvas, whose first element is an empty ``<includes>``. Version 6 messages carry
  ``<noDuplicates>`` and ten-character ``<connections>`` (one per connection slot). Saved files
  are one line; keys and strings are CDATA; properties are in alphabetical order; empty
  ``<messages>``/``<children>``/``<triggers>`` are omitted. Sources: shakfu/py2tosc
  ``docs/guide/format.md`` ("verified against files written by TouchOSC 1.5.2.262") and
  ``py2tosc/codec.py``, ``py2tosc/document.py`` (PyPI py2tosc 0.6.0); the older
  ``<lexml version='3'>`` editor output in AlbertoV5/tosclib ``demos/files/test.xml``.
- ``<node ID=... type=...>`` types (GROUP, PAGER, FADER, RADIO, BUTTON, LABEL, ...), property
  types ``s b i f r c`` (frame ``<x><y><w><h>``, colour ``<r><g><b><a>``), the default property
  set each control type is created with, the values each type has (``x``, ``touch``, ``text``,
  ``page``; boolean defaults spelled ``true``/``false``) and the enumerations (``shape`` and
  ``textAlign*`` count from 1; ``orientation`` NORTH 0, EAST 1, SOUTH 2, WEST 3; ``buttonType``
  0 momentary, 2 toggle on press): py2tosc ``defaults.py``, ``enums.py``, ``properties.py``
  (cross-checked there against editor-written files); Hexler's manual
  https://hexler.net/touchosc/manual/script-properties-and-values.
- A pager page is a ``GROUP`` child of the ``PAGER`` framed below the tab bar
  (``tabbarSize``), with ``tabLabel`` and four tab colours (without them the tab is blank):
  py2tosc ``docs/dev/corpus-sweep.md``, ``_geometry.py``, ``ui.py``. The root cannot itself be
  the pager (py2tosc ``surface.py``).
- ``<osc>``: ``enabled send receive feedback noDuplicates connections``, ``<triggers>`` of
  ``<trigger><var>x|touch|text</var><condition>ANY|RISE|FALL</condition>``, ``<path>`` and
  ``<arguments>`` made of ``<partial><type>CONSTANT|VALUE|PROPERTY|INDEX</type>
  <conversion>BOOLEAN|INTEGER|FLOAT|STRING</conversion><value/><scaleMin/><scaleMax/>``:
  py2tosc ``messages.py``, ``codec.py``, ``docs/guide/messages.md``; Hexler's manual
  https://hexler.net/touchosc/manual/editor-messages-osc (a message is sent when a value
  enabled as trigger changes and the condition matches; received messages match on the
  address) and .../editor-control-values (every control has a boolean ``touch`` value, and any
  value can trigger messages).
- A sent VALUE argument is ``scaleMin + x * (scaleMax - scaleMin)``, and a RADIO's ``x`` is the
  step index 0, 1, ... steps-1 (r/TouchOSC, "Radio button sending value 1,3,5 instead of 1,2,3",
  answer by PlanetSchulzki, TouchOSC 1.4). So a radio with n steps sends
  ``index / (n - 1)`` with scale 0..1/(n-1), which is exactly the normalized value of choice
  ``index`` here (``params/curves.py``: CHOICE value = round(norm * (n - 1))). A SOUTH radio runs
  top to bottom; this rests on the orientation enum and on an editor-made vertical radio (step
  0 at the top) patched by a public generator (``orientation`` 2), not on the manual.
- Scripts are the ``script`` string property; ``onValueChanged(key)`` runs when a value changes
  (also when an OSC message changed it); ``self.values.x``, ``self.parent.children[name]``,
  ``values.text``: Hexler's manual (script pages), and editor-saved scripts in public layouts.

A maintained writer exists on PyPI (``py2tosc``, no dependencies); it is not used: this module
writes one fixed layout with the standard library in a few hundred lines, keeps the bytes under
our control (determinism) and adds no dependency to an instrument that runs on a Raspberry Pi.
It served as a check while writing this: py2tosc 0.6.0 loads every generated layout, writes it
back byte for byte identical, and its ``validate()`` (property and value names per control
type, trigger values that exist, unique IDs, connection widths) reports nothing.
"""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from instrument.params.curves import Kind

LEXML_VERSION = "6"
CANVAS_W, CANVAS_H = 1024, 768
HEADER_H = 56
TABBAR_H = 44
PAGE_W, PAGE_H = CANVAS_W, CANVAS_H - HEADER_H - TABBAR_H
PAD = 6
CAPTION_H = 36
MIN_COLUMNS = 4  # a node with fewer parameters still gets columns this narrow, centred
CONNECTIONS = "1" * 10  # every connection slot (TouchOSC 1.5 has ten)
NOTE_VELOCITY = 0.8
KEYBOARDS = (60, 36)  # lowest note of each two-octave keyboard, top to bottom
WHITE_STEPS = (0, 2, 4, 5, 7, 9, 11)  # semitones of the white keys in an octave
BLACK_AFTER = (0, 1, 3, 4, 5)  # white keys (index in the octave) followed by a black key
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# Namespace of the node IDs (uuid5 of a role and an address): stable across runs and machines.
_ID_NAMESPACE = uuid.UUID("5b0c1c8e-3a52-5d7f-9a57-6f1d2c0b7e41")

_GREY = (0.25, 0.25, 0.25, 1.0)
_WHITE = (1.0, 1.0, 1.0, 1.0)
_MACRO_COLOR = (0.95, 0.6, 0.15, 1.0)
_PARAM_COLOR = (0.2, 0.65, 0.9, 1.0)
_CHOICE_COLOR = (0.55, 0.45, 0.95, 1.0)
_TOGGLE_COLOR = (0.3, 0.8, 0.45, 1.0)
_PANIC_COLOR = (0.9, 0.15, 0.15, 1.0)
_WHITE_KEY = (0.85, 0.85, 0.85, 1.0)
_BLACK_KEY = (0.3, 0.3, 0.3, 1.0)
_MUTED_TEXT = (0.75, 0.75, 0.75, 1.0)

_OSC_TYPES = {"FLOAT": "f", "INTEGER": "i", "STRING": "s", "BOOLEAN": "T"}


# ---- the document model (just what this layout needs) -------------------------------------

@dataclass(frozen=True)
class Partial:
    """One piece of an OSC path or one argument: CONSTANT text, or one of the control's
    VALUEs (``x``, ``touch``, ``text``) scaled to ``lo``..``hi`` and converted."""

    kind: str
    conversion: str
    value: str
    lo: float = 0.0
    hi: float = 1.0


@dataclass(frozen=True)
class Osc:
    address: str
    args: tuple[Partial, ...]
    triggers: tuple[tuple[str, str], ...] = (("x", "ANY"),)  # (value, ANY/RISE/FALL)
    send: bool = True
    receive: bool = False


@dataclass
class Node:
    type: str
    key: str  # identity inside the document: the ID is uuid5(key)
    props: dict[str, tuple[str, object]] = field(default_factory=dict)
    values: list[tuple[str, object]] = field(default_factory=list)
    messages: list[Osc] = field(default_factory=list)
    children: list["Node"] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, self.key))


def _common(name: str, frame, color=_GREY) -> dict[str, tuple[str, object]]:
    """The properties every control is created with (editor defaults)."""
    return {
        "background": ("b", True), "color": ("c", color), "cornerRadius": ("f", 0.0),
        "frame": ("r", tuple(frame)), "grabFocus": ("b", True), "interactive": ("b", True),
        "locked": ("b", False), "name": ("s", name), "orientation": ("i", 0),
        "outline": ("b", True), "outlineStyle": ("i", 1), "pointerPriority": ("i", 0),
        "shape": ("i", 1), "visible": ("b", True),
    }


def group(key: str, name: str, frame, color=_GREY, background=False) -> Node:
    props = _common(name, frame, color)
    props.update(background=("b", background), grabFocus=("b", False),
                 interactive=("b", False), outline=("b", False), outlineStyle=("i", 0))
    return Node("GROUP", key, props, [("touch", False)])


def label(key: str, name: str, frame, text: str, size: int = 14, color=_WHITE,
          osc: Osc | None = None) -> Node:
    props = _common(name, frame, _GREY)
    props.update(background=("b", False), interactive=("b", False), outline=("b", False),
                 font=("i", 0), textAlignH=("i", 2), textAlignV=("i", 2), textClip=("b", True),
                 textColor=("c", color), textLength=("i", 0), textSize=("i", size))
    return Node("LABEL", key, props, [("text", text), ("touch", False)],
                [osc] if osc else [])


def fader(key: str, name: str, frame, color, initial: float, messages, script="") -> Node:
    props = _common(name, frame, color)
    props.update(bar=("b", True), barDisplay=("i", 0), cursor=("b", True),
                 cursorDisplay=("i", 0), grid=("b", True), gridColor=("c", (0, 0, 0, 0.25)),
                 gridSteps=("i", 10), response=("i", 0), responseFactor=("i", 100))
    if script:
        props["script"] = ("s", script)
    return Node("FADER", key, props, [("x", initial), ("touch", False)], list(messages))


def radio(key: str, name: str, frame, color, steps: int, index: int, messages) -> Node:
    props = _common(name, frame, color)
    props.update(orientation=("i", 2), radioType=("i", 0), steps=("i", steps))  # 2: SOUTH
    return Node("RADIO", key, props, [("x", index), ("touch", False)], list(messages))


def button(key: str, name: str, frame, color, messages, toggle=False, on=False) -> Node:
    props = _common(name, frame, color)
    props.update(buttonType=("i", 2 if toggle else 0), press=("b", True),
                 release=("b", True), valuePosition=("b", False))
    return Node("BUTTON", key, props, [("x", 1.0 if on else 0.0), ("touch", False)],
                list(messages))


def pager(key: str, name: str, frame, pages: list[Node]) -> Node:
    props = _common(name, frame, _GREY)
    props.update(background=("b", False), grabFocus=("b", False), interactive=("b", True),
                 outline=("b", False), outlineStyle=("i", 0), tabLabels=("b", True),
                 tabbar=("b", True), tabbarDoubleTap=("b", False),
                 tabbarSize=("i", TABBAR_H), textSizeOff=("i", 13), textSizeOn=("i", 13))
    return Node("PAGER", key, props, [("page", 0), ("touch", False)], children=pages)


def page(key: str, tab: str) -> Node:
    node = group(key, tab, (0, TABBAR_H, PAGE_W, PAGE_H))
    node.props.update(tabColorOff=("c", _GREY), tabColorOn=("c", (0.5, 0.5, 0.5, 1.0)),
                      tabLabel=("s", tab), textColorOff=("c", _WHITE),
                      textColorOn=("c", _WHITE))
    return node


# ---- messages ----------------------------------------------------------------------------

def _value_msg(address: str, hi: float = 1.0) -> Osc:
    """The control's ``x``, sent as a float ``0``..``hi`` and received back (feedback)."""
    return Osc(address, (Partial("VALUE", "FLOAT", "x", 0.0, hi),), receive=True)


def _touch_msg(address: str) -> Osc:
    """``<address>/touch i`` 1 on touch, 0 on release."""
    return Osc(address + "/touch", (Partial("VALUE", "INTEGER", "touch"),),
               (("touch", "ANY"),))


def _query_msg(address: str) -> Osc:
    """``/q <address>`` when the finger lifts: the instrument answers with value and text."""
    return Osc("/q", (Partial("CONSTANT", "STRING", address),), (("touch", "FALL"),))


def _text_msg(address: str) -> Osc:
    """Receive only: ``<address>/text s`` sets the label's text."""
    return Osc(address + "/text", (Partial("VALUE", "STRING", "text"),), (("text", "ANY"),),
               send=False, receive=True)


def _press_msg(address: str, *args: Partial, condition: str = "RISE") -> Osc:
    return Osc(address, args, (("x", condition),))


def _const_int(number: int) -> Partial:
    return Partial("CONSTANT", "INTEGER", str(number))


def _const_float(number: float) -> Partial:
    return Partial("CONSTANT", "FLOAT", _num(number))


# ---- the layout --------------------------------------------------------------------------

def param_address(slot) -> str:
    node, _, name = slot.path.partition(".")
    return f"/param/{node}/{name}"


def macro_address(macro) -> str:
    return f"/macro/{macro.name}"


def build_layout(plan) -> Node:
    """The root GROUP of the layout for ``plan``."""
    root = group("root", plan.name or "instrument", (0, 0, CANVAS_W, CANVAS_H),
                 color=(0.08, 0.08, 0.08, 1.0), background=True)
    root.children += _header(plan)
    pages = [_macro_page(plan), _keys_page()]
    for node_name, slots in _nodes(plan):
        pages.append(_node_page(node_name, slots))
    root.children.append(pager("pager", "pages", (0, HEADER_H, CANVAS_W, CANVAS_H - HEADER_H),
                               pages))
    return root


def _nodes(plan) -> list[tuple[str, list]]:
    """(node, its parameter slots) in plan order."""
    by_node: dict[str, list] = {}
    for slot in plan.params:
        by_node.setdefault(slot.node, []).append(slot)
    return list(by_node.items())


def _header(plan) -> list[Node]:
    h = HEADER_H - 2 * PAD
    sync = (CANVAS_W - 2 * (120 + PAD), PAD, 120, h)
    panic = (CANVAS_W - 120 - PAD, PAD, 120, h)
    return [
        label("header/title", "title", (PAD, PAD, sync[0] - 2 * PAD, h), plan.name, size=20),
        button("header/sync", "sync", sync, _GREY, [_press_msg("/sync")]),
        label("header/sync/caption", "sync caption", sync, "Sync"),
        button("header/panic", "panic", panic, _PANIC_COLOR, [_press_msg("/panic")]),
        label("header/panic/caption", "panic caption", panic, "PANIC", size=16),
    ]


def _columns(count: int, minimum: int) -> tuple[float, float]:
    """(x of the first column, column width) for ``count`` centred columns."""
    width = PAGE_W / max(count, minimum)
    return (PAGE_W - width * count) / 2, width


def _cell(x: float, width: float) -> tuple[tuple, tuple, tuple]:
    """Frames of a column's caption, control and readout."""
    inner = width - 2 * PAD
    caption = (_r(x + PAD), PAD, _r(inner), CAPTION_H)
    control_y = PAD + CAPTION_H + PAD
    readout_y = PAGE_H - PAD - CAPTION_H
    control = (_r(x + PAD), control_y, _r(inner), readout_y - PAD - control_y)
    readout = (_r(x + PAD), readout_y, _r(inner), CAPTION_H)
    return caption, control, readout


def _macro_page(plan) -> Node:
    node = page("page/macros", "Macros")
    x0, width = _columns(len(plan.macros), 8)
    for i, macro in enumerate(plan.macros):
        address = macro_address(macro)
        caption, control, readout = _cell(x0 + i * width, width)
        readout_name = f"macro.{macro.name}.value"
        script = (
            "function onValueChanged(key)\n"
            "  if key == \"x\" then\n"
            f"    self.parent.children[{_lua_string(readout_name)}].values.text = "
            "string.format(\"%d%%\", math.floor(self.values.x * 100 + 0.5))\n"
            "  end\n"
            "end\n"
        )
        node.children += [
            label(f"macro{address}/caption", f"macro.{macro.name}.label", caption,
                  macro.label or macro.name),
            fader(f"macro{address}", f"macro.{macro.name}", control, _MACRO_COLOR,
                  macro.initial_norm, [_value_msg(address), _touch_msg(address)], script),
            label(f"macro{address}/value", readout_name, readout,
                  f"{math.floor(macro.initial_norm * 100 + 0.5)}%", color=_MUTED_TEXT),
        ]
    return node


def _node_page(node_name: str, slots: list) -> Node:
    node = page(f"page/node/{node_name}", node_name)
    x0, width = _columns(len(slots), MIN_COLUMNS)
    for i, slot in enumerate(slots):
        address = param_address(slot)
        spec = slot.spec
        caption, control, readout = _cell(x0 + i * width, width)
        name = slot.path
        node.children.append(label(f"param{address}/caption", f"{name}.label", caption,
                                   spec.label or name))
        extras = [_touch_msg(address), _query_msg(address)]
        if spec.kind == Kind.CHOICE:
            steps = len(spec.choices)
            index = int(round(spec.from_norm(slot.initial_norm)))
            node.children.append(radio(f"param{address}", name, control, _CHOICE_COLOR,
                                       steps, index,
                                       [_value_msg(address, 1.0 / (steps - 1)), *extras]))
            x, y, w, h = control
            for k, choice in enumerate(spec.choices):  # SOUTH: step 0 at the top
                frame = (x, _r(y + k * h / steps), w, _r(h / steps))
                node.children.append(label(f"param{address}/choice/{k}", f"{name}.{k}", frame,
                                           choice, size=13))
        elif spec.kind == Kind.BOOL:
            x, y, w, h = control
            side = min(w, h, 140)
            frame = (_r(x + (w - side) / 2), _r(y + (h - side) / 2), side, side)
            node.children.append(button(f"param{address}", name, frame, _TOGGLE_COLOR,
                                        [_value_msg(address), *extras], toggle=True,
                                        on=slot.initial_norm >= 0.5))
        else:
            node.children.append(fader(f"param{address}", name, control, _PARAM_COLOR,
                                       slot.initial_norm, [_value_msg(address), *extras]))
        text = spec.format(spec.from_norm(slot.initial_norm))
        node.children.append(label(f"param{address}/text", f"{name}.text", readout, text,
                                   color=_MUTED_TEXT, osc=_text_msg(address)))
    return node


def _keys_page() -> Node:
    node = page("page/keys", "Keys")
    whites = 2 * len(WHITE_STEPS)
    white_w = PAGE_W / whites
    block_h = (PAGE_H - PAD) / len(KEYBOARDS)
    for row, lowest in enumerate(KEYBOARDS):
        top = PAD + row * block_h
        black_h = _r((block_h - PAD) * 0.45)
        white_y, white_h = top + black_h, _r(block_h - PAD - black_h)
        for j in range(whites):
            octave, step = divmod(j, len(WHITE_STEPS))
            note = lowest + 12 * octave + WHITE_STEPS[step]
            frame = (_r(j * white_w + 2), _r(white_y), _r(white_w - 4), white_h)
            node.children.append(_key(note, frame, _WHITE_KEY))
            if step == 0:
                x, y, w, h = frame
                node.children.append(label(f"key/{note}/caption", f"key.{note}.label",
                                           (x, _r(y + h - 30), w, 26), _note_name(note),
                                           size=12, color=(0.1, 0.1, 0.1, 1.0)))
        for j in range(whites):
            octave, step = divmod(j, len(WHITE_STEPS))
            if step not in BLACK_AFTER:
                continue
            note = lowest + 12 * octave + WHITE_STEPS[step] + 1
            center = (j + 1) * white_w
            frame = (_r(center - 0.32 * white_w), _r(top), _r(0.64 * white_w), black_h - 2)
            node.children.append(_key(note, frame, _BLACK_KEY))
    return node


def _key(note: int, frame, color) -> Node:
    return button(f"key/{note}", f"key.{note}", frame, color, [
        _press_msg("/note/on", _const_int(note), _const_float(NOTE_VELOCITY)),
        _press_msg("/note/off", _const_int(note), condition="FALL"),
    ])


def _lua_string(text: str) -> str:
    """A Lua string literal for ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _note_name(note: int) -> str:
    return f"{NOTE_NAMES[note % 12]}{note // 12 - 1}"


def _r(number: float) -> float:
    """Frames on a 0.5-point grid: stable text, no float noise in the file."""
    return round(number * 2) / 2


# ---- writing -----------------------------------------------------------------------------

def _num(number) -> str:
    """A number as TouchOSC writes it: no trailing ``.0``, shortest round-trip digits."""
    if isinstance(number, bool):
        return "1" if number else "0"
    number = float(number)
    if not math.isfinite(number):
        raise ValueError(f"{number!r} cannot be written to a layout")
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _cdata(text: str) -> str:
    return "<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _write_node(node: Node, out: list[str], root: bool) -> None:
    out.append(f"<node ID='{node.id}' type='{node.type}'>")
    if root:
        out.append("<includes></includes>")
    out.append("<properties>")
    for key in sorted(node.props):
        kind, value = node.props[key]
        out.append(f"<property type='{kind}'><key>{_cdata(key)}</key><value>")
        if kind == "r":
            out.append("".join(f"<{t}>{_num(v)}</{t}>" for t, v in zip("xywh", value)))
        elif kind == "c":
            out.append("".join(f"<{t}>{_num(v)}</{t}>" for t, v in zip("rgba", value)))
        elif kind == "s":
            out.append(_cdata(value))
        else:
            out.append(_num(value))
        out.append("</value></property>")
    out.append("</properties>")
    if node.values:
        out.append("<values>")
        for key, default in node.values:
            text = default if isinstance(default, str) else (
                ("true" if default else "false") if isinstance(default, bool) else _num(default))
            out.append(f"<value><key>{_cdata(key)}</key><locked>0</locked>"
                       "<lockedDefaultCurrent>0</lockedDefaultCurrent>"
                       f"<default>{_cdata(text)}</default><defaultPull>0</defaultPull></value>")
        out.append("</values>")
    if node.messages:
        out.append("<messages>")
        for msg in node.messages:
            out.append(f"<osc><enabled>1</enabled><send>{_num(msg.send)}</send>"
                       f"<receive>{_num(msg.receive)}</receive><feedback>0</feedback>"
                       f"<noDuplicates>0</noDuplicates><connections>{CONNECTIONS}</connections>")
            if msg.triggers:
                out.append("<triggers>" + "".join(
                    f"<trigger><var>{_cdata(var)}</var><condition>{cond}</condition></trigger>"
                    for var, cond in msg.triggers) + "</triggers>")
            out.append("<path>" + _partial(Partial("CONSTANT", "STRING", msg.address))
                       + "</path>")
            out.append("<arguments>" + "".join(_partial(p) for p in msg.args) + "</arguments>")
            out.append("</osc>")
        out.append("</messages>")
    if node.children:
        out.append("<children>")
        for child in node.children:
            _write_node(child, out, root=False)
        out.append("</children>")
    out.append("</node>")


def _partial(p: Partial) -> str:
    return (f"<partial><type>{p.kind}</type><conversion>{p.conversion}</conversion>"
            f"<value>{_cdata(p.value)}</value><scaleMin>{_num(p.lo)}</scaleMin>"
            f"<scaleMax>{_num(p.hi)}</scaleMax></partial>")


def layout_xml(plan) -> str:
    """The TouchOSC document for ``plan`` (a compiled preset), as XML text."""
    out = ["<?xml version='1.0' encoding='UTF-8'?>", f"<lexml version='{LEXML_VERSION}'>"]
    _write_node(build_layout(plan), out, root=True)
    out.append("</lexml>")
    return "".join(out)


def layout_bytes(plan) -> bytes:
    """The ``.tosc`` file for ``plan``: the document, zlib-compressed. Deterministic."""
    return zlib.compress(layout_xml(plan).encode("utf-8"), 9)


# ---- reading -----------------------------------------------------------------------------

class Arg(NamedTuple):
    """One OSC argument of a binding: ``type`` is the OSC type tag it goes out as (f i s T);
    ``source`` is VALUE (``value`` names the control's value, scaled ``lo``..``hi``) or
    CONSTANT (``value`` is the text of the constant)."""

    type: str
    source: str
    value: str
    lo: float
    hi: float


class LayoutControl(NamedTuple):
    """One OSC binding of one control: (control type, name, OSC address, arguments), plus
    the page it is on (tab label, '' outside the pager), its trigger (value, condition),
    whether it sends and receives, and the control's ``steps`` (radios) and ``buttonType``
    (buttons), else None."""

    type: str
    name: str
    address: str
    args: tuple[Arg, ...]
    page: str
    trigger: tuple[tuple[str, str], ...]
    send: bool
    receive: bool
    steps: int | None
    button_type: int | None


def read_layout(data: bytes) -> list[LayoutControl]:
    """Every OSC binding in a ``.tosc`` file (compressed bytes) or its XML, document order.
    Raises ``ValueError`` when the data is not a TouchOSC document."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        text = zlib.decompress(data) if data[:1] == b"\x78" else data
        root = ET.fromstring(text)
    except (zlib.error, ET.ParseError) as exc:
        raise ValueError(f"not a TouchOSC document: {exc}") from None
    node = root.find("node")
    if root.tag != "lexml" or node is None:
        raise ValueError("not a TouchOSC document: no <lexml><node>")
    found: list[LayoutControl] = []
    _read_node(node, "", False, found)
    return found


def _props(node: ET.Element) -> dict[str, str]:
    return {p.findtext("key", ""): p.findtext("value", "")
            for p in node.findall("./properties/property")}


def _read_node(node: ET.Element, page_name: str, in_pager: bool,
               found: list[LayoutControl]) -> None:
    props = _props(node)
    if in_pager:
        page_name = props.get("tabLabel") or props.get("name", "")
    kind = node.get("type", "")
    for osc in node.findall("./messages/osc"):
        address = "".join(_path_part(p, props) for p in osc.findall("./path/partial"))
        args = tuple(Arg(_OSC_TYPES.get(p.findtext("conversion", ""), "?"),
                         p.findtext("type", ""), p.findtext("value", ""),
                         float(p.findtext("scaleMin", "0")), float(p.findtext("scaleMax", "1")))
                     for p in osc.findall("./arguments/partial"))
        trigger = tuple((t.findtext("var", ""), t.findtext("condition", ""))
                        for t in osc.findall("./triggers/trigger"))
        found.append(LayoutControl(
            kind, props.get("name", ""), address, args, page_name, trigger,
            osc.findtext("send") == "1", osc.findtext("receive") == "1",
            int(props["steps"]) if kind == "RADIO" and "steps" in props else None,
            int(props["buttonType"]) if kind == "BUTTON" and "buttonType" in props else None))
    for child in node.findall("./children/node"):
        _read_node(child, page_name, kind == "PAGER", found)


def _path_part(partial: ET.Element, props: dict[str, str]) -> str:
    value = partial.findtext("value", "")
    return props.get(value, "") if partial.findtext("type") == "PROPERTY" else value


__all__ = ["Arg", "LayoutControl", "build_layout", "layout_bytes", "layout_xml",
           "read_layout"]
