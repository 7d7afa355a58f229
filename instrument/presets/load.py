"""Preset files: human-written TOML (comments welcome), values in display units.

Format (version 1)::

    format = 1
    name = "Init"

    [voice]
    polyphony = 8            # 1..128
    mode = "poly"            # poly | mono | legato
    steal = "oldest"         # oldest | quietest | same_note
    glide_ms = 0
    bend_range_st = 2
    connect = ["osc.out -> amp.in", "env.out -> amp.cv", "amp.out -> out.in"]

    [voice.nodes.osc]
    type = "saw"
    detune_cents = 0         # a number in the parameter's unit, or text: "1.2 kHz", "Saw", "on"

    [global]                 # optional: the default is voices -> output
    connect = ["voices.left -> main.left", "voices.right -> main.right"]
    [global.nodes.voices]
    type = "voices"
    [global.nodes.main]
    type = "output"

    [macros.brightness]
    label = "Brightness"
    targets = [{ param = "filt.cutoff_hz", from = 300, to = 8000 }]

Every error is a ``PresetError``/``GraphError``/``ModuleError`` whose one line names the file,
the key (or line) and the fix.
"""

from __future__ import annotations

from pathlib import Path

from instrument.errors import InstrumentError, PresetError
from instrument.graph.model import (
    Graph, Macro, MacroTarget, Node, Preset, VoiceSettings, parse_connection,
)
from instrument.names import nearest
from instrument.tomlfile import parse_toml, read_text, with_source

FORMAT_VERSION = 1
_TOP_KEYS = {"format", "name", "voice", "global", "macros", "doc"}
_VOICE_KEYS = {"polyphony", "mode", "steal", "glide_ms", "bend_range_st", "connect", "nodes"}
_GLOBAL_KEYS = {"connect", "nodes"}
_MACRO_KEYS = {"label", "targets", "default"}
_TARGET_KEYS = {"param", "from", "to"}


def load_preset(path) -> Preset:
    """Read and parse a preset file (no compilation; see ``graph.compile``)."""
    return parse_preset(read_text(path, PresetError, "preset"), str(Path(path)))


def parse_preset(text: str, source: str = "<preset>") -> Preset:
    data = parse_toml(text, source, PresetError)
    try:
        return _build(data, source)
    except InstrumentError as exc:  # _build names keys; add the file
        raise with_source(exc, source) from None


def _unknown_keys(table: dict, allowed: set, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise PresetError(f"unknown key '{key}'", f"{where}{key}" if where else key,
                              nearest(key, allowed))


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PresetError(f"'{key}' must be a table", where + key, f"write it as [{where}{key}]")
    return value


def _build(data: dict, source: str) -> Preset:
    _unknown_keys(data, _TOP_KEYS, "")
    if "format" not in data:
        raise PresetError("format is missing", "format",
                          f"write format = {FORMAT_VERSION} at the top of the file")
    version = data["format"]
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise PresetError(f"format = {version!r} is not supported", "format",
                          f"write format = {FORMAT_VERSION} at the top of the file")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise PresetError("name must be a string", "name", 'write name = "My preset"')
    voice_t = _table(data, "voice", "")
    _unknown_keys(voice_t, _VOICE_KEYS, "voice.")
    settings = VoiceSettings()
    for key, kind in (("polyphony", int), ("mode", str), ("steal", str), ("glide_ms", float),
                      ("bend_range_st", float)):
        if key in voice_t:
            value = voice_t[key]
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not ok or isinstance(value, bool):
                raise PresetError(f"{key} = {value!r} has the wrong type", f"voice.{key}",
                                  f"use {'a whole number' if kind is int else 'a number' if kind is float else 'a string'}")
            setattr(settings, key, kind(value))
    if not 0 <= settings.glide_ms <= 10000:
        raise PresetError("glide_ms is out of range", "voice.glide_ms", "use 0 to 10000")
    if not 0 <= settings.bend_range_st <= 48:
        raise PresetError("bend_range_st is out of range", "voice.bend_range_st", "use 0 to 48")
    voice_graph = _graph(voice_t, "voice", "voice")
    global_t = _table(data, "global", "")
    _unknown_keys(global_t, _GLOBAL_KEYS, "global.")
    global_graph = _graph(global_t, "global", "global")
    macros = _macros(_table(data, "macros", ""))
    return Preset(name, settings, voice_graph, global_graph, macros, source)


def _graph(table: dict, scope: str, where: str) -> Graph:
    graph = Graph(scope)
    nodes = _table(table, "nodes", f"{where}.")
    if scope == "voice" and not nodes:
        raise PresetError("the voice graph has no nodes", "voice.nodes",
                          "add [voice.nodes.NAME] tables with a type each")
    for node_id, spec in nodes.items():
        node_where = f"{where}.nodes.{node_id}"
        if not node_id.isidentifier():
            raise PresetError(f"node name '{node_id}' is not a plain name", node_where,
                              "use letters, digits and _ (not starting with a digit)")
        if not isinstance(spec, dict):
            raise PresetError("a node must be a table", node_where, f"write [{node_where}]")
        if "type" not in spec:
            raise PresetError("node has no type", node_where,
                              'add type = "saw", or another name from instrument modules')
        if not isinstance(spec["type"], str):
            raise PresetError(f"type = {spec['type']!r} is not a module name", f"{node_where}.type",
                              'write the module name in quotes, like type = "saw"')
        params = {k: v for k, v in spec.items() if k != "type"}
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise PresetError(f"{key} = {value!r} is not a number", f"{node_where}.{key}",
                                  'write a number in the parameter\'s display unit, or text '
                                  'like "1.2 kHz" or "Saw"')
        graph.add(Node(node_id, spec["type"], params, node_where))
    connect = table.get("connect", [])
    if not isinstance(connect, list):
        raise PresetError("connect must be a list of strings", f"{where}.connect",
                          'write connect = ["a.out -> b.in"]')
    for i, text in enumerate(connect):
        graph.connect(parse_connection(text, f"{where}.connect[{i}]"))
    return graph


def _macros(table: dict) -> list[Macro]:
    macros = []
    for name, spec in table.items():
        where = f"macros.{name}"
        if not isinstance(spec, dict):
            raise PresetError("a macro must be a table", where, f"write [{where}]")
        _unknown_keys(spec, _MACRO_KEYS, f"{where}.")
        targets_raw = spec.get("targets")
        if not isinstance(targets_raw, list) or not targets_raw:
            raise PresetError("macro has no targets", f"{where}.targets",
                              'add targets = [{ param = "node.param", from = 0, to = 1 }]')
        targets = []
        for i, t in enumerate(targets_raw):
            t_where = f"{where}.targets[{i}]"
            if not isinstance(t, dict):
                raise PresetError("a target must be a table", t_where,
                                  '{ param = "node.param", from = 0, to = 1 }')
            _unknown_keys(t, _TARGET_KEYS, f"{t_where}.")
            missing = _TARGET_KEYS - set(t)
            if missing:
                raise PresetError(f"target lacks {', '.join(sorted(missing))}", t_where,
                                  '{ param = "node.param", from = 0, to = 1 }')
            if any(isinstance(t[k], bool) or not isinstance(t[k], (int, float))
                   for k in ("from", "to")):
                raise PresetError("from and to must be numbers", t_where,
                                  "give display values, like from = 200, to = 8000")
            targets.append(MacroTarget(str(t["param"]), float(t["from"]), float(t["to"]), t_where))
        default = spec.get("default")
        if default is not None and (isinstance(default, bool) or not isinstance(default, (int, float))
                                    or not 0.0 <= default <= 1.0):
            raise PresetError(f"default = {default!r} is out of range", f"{where}.default",
                              "use 0 to 1")
        macros.append(Macro(name, str(spec.get("label", name)), targets, default, where))
    return macros
