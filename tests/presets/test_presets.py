"""Preset parser: TOML text -> Preset, and every load error as ``what`` at ``where`` + ``fix``.

Errors are checked field by field: ``where`` is "<source>: <key>" (or the source alone for a
whole-file problem), ``fix`` says what to write instead. Compile-time checks (module names,
ranges, ports) are in ``test_check_cli.py``.
"""


import pytest

from instrument.errors import GraphError, InstrumentError, PresetError
from instrument.graph.model import Connection
from instrument.presets import load_preset, parse_preset
from live import REPO

SHIPPED = sorted((REPO / "presets").glob("*.toml"))
SOURCE = "test.toml"

CONNECT = """\
connect = [
  "osc.out -> filt.in",
  "env.out -> filt.cutoff_hz * 0.5",
  "filt.out -> out.in",
]
"""

GOOD = """\
format = 1
name = "Test"

[voice]
polyphony = 4
""" + CONNECT + """

[voice.nodes.osc]
type = "saw"
detune_cents = -7

[voice.nodes.filt]
type = "svf_lowpass"
cutoff_hz = 1000

[voice.nodes.env]
type = "adsr"

[voice.nodes.out]
type = "output"

[macros.cutoff]
label = "Cutoff"
targets = [{ param = "filt.cutoff_hz", from = 100, to = 8000 }]
"""

# The smallest preset that parses: one node, no macros.
MINIMAL = """\
format = 1
name = "Test"
[voice.nodes.out]
type = "output"
"""


def edit(old: str, new: str, text: str = GOOD) -> str:
    """GOOD with one exact edit (fails loudly if ``old`` does not occur exactly once)."""
    assert text.count(old) == 1, f"fixture edit {old!r} matches {text.count(old)} times"
    return text.replace(old, new)


def parse_error(text: str, source: str = SOURCE) -> InstrumentError:
    with pytest.raises(InstrumentError) as info:
        parse_preset(text, source)
    return info.value


# -- what a good preset turns into ----------------------------------------------------------------

def test_parse_reads_settings_nodes_connections_and_macros():
    preset = parse_preset(GOOD, SOURCE)
    assert preset.name == "Test"
    assert preset.source == SOURCE
    assert (preset.voice.polyphony, preset.voice.mode, preset.voice.steal) == (4, "poly", "oldest")
    assert list(preset.voice_graph.nodes) == ["osc", "filt", "env", "out"]
    assert preset.voice_graph.nodes["osc"].type == "saw"
    assert preset.voice_graph.nodes["osc"].params == {"detune_cents": -7}
    assert preset.voice_graph.nodes["osc"].where == "voice.nodes.osc"
    assert [str(c) for c in preset.voice_graph.connections] == [
        "osc.out -> filt.in", "env.out -> filt.cutoff_hz * 0.5", "filt.out -> out.in"]
    assert preset.voice_graph.connections[1].where == "voice.connect[1]"
    [macro] = preset.macros
    assert (macro.name, macro.label, macro.default) == ("cutoff", "Cutoff", None)
    [target] = macro.targets
    assert (target.param, target.lo, target.hi) == ("filt.cutoff_hz", 100.0, 8000.0)
    assert target.where == "macros.cutoff.targets[0]"


def test_parse_minimal_preset_has_one_node_and_no_macros():
    preset = parse_preset(MINIMAL, SOURCE)
    assert list(preset.voice_graph.nodes) == ["out"] and preset.macros == []


def test_parse_without_global_table_leaves_global_graph_empty_for_the_default():
    preset = parse_preset(GOOD, SOURCE)
    assert preset.global_graph.scope == "global"
    assert preset.global_graph.nodes == {} and preset.global_graph.connections == []


def test_parse_reads_a_global_graph():
    text = GOOD + """
[global]
connect = ["voices.left -> main.left", "voices.right -> main.right"]
[global.nodes.voices]
type = "voices"
[global.nodes.main]
type = "output"
"""
    graph = parse_preset(text, SOURCE).global_graph
    assert list(graph.nodes) == ["voices", "main"]
    assert graph.connections[0] == Connection("voices", "left", "main", "left",
                                              where="global.connect[0]")


def test_parse_defaults_name_to_file_stem_and_voice_settings_to_defaults():
    text = edit('name = "Test"\n', "", edit("polyphony = 4\n", ""))
    preset = parse_preset(text, "presets/warm_pad.toml")
    assert preset.name == "warm_pad"
    assert (preset.voice.polyphony, preset.voice.mode, preset.voice.steal) == (8, "poly", "oldest")
    assert (preset.voice.glide_ms, preset.voice.bend_range_st) == (0.0, 2.0)


def test_parse_takes_whole_numbers_for_time_settings():
    text = edit("polyphony = 4\n", "glide_ms = 50\nbend_range_st = 12\n")
    voice = parse_preset(text, SOURCE).voice
    assert (voice.glide_ms, voice.bend_range_st) == (50.0, 12.0)
    assert isinstance(voice.glide_ms, float) and isinstance(voice.bend_range_st, float)


def test_parse_keeps_mode_and_steal_names_for_the_compiler_to_check():
    text = edit("polyphony = 4\n", 'mode = "legato"\nsteal = "quietest"\n')
    voice = parse_preset(text, SOURCE).voice
    assert (voice.mode, voice.steal) == ("legato", "quietest")


def test_parse_reads_a_macro_default():
    preset = parse_preset(edit('label = "Cutoff"', 'label = "Cutoff"\ndefault = 0.25'), SOURCE)
    assert preset.macros[0].default == 0.25


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_preset_parses_with_one_output_node(path):
    preset = load_preset(path)
    assert preset.voice_graph.nodes
    assert [n.type for n in preset.voice_graph.nodes.values()].count("output") == 1
    assert preset.name and preset.source == str(path)


def test_presets_are_shipped():
    assert {p.name for p in SHIPPED} >= {"init.toml", "poly16.toml"}


# -- load errors, field by field ------------------------------------------------------------------

# (id, preset text, error class, where after "test.toml: " ('' = the file itself), what, fix)
LOAD_ERRORS = [
    ("format-wrong-version", edit("format = 1", "format = 2"), PresetError, "format",
     "format = 2 is not supported", "write format = 1 at the top of the file"),
    ("format-as-string", edit("format = 1", 'format = "1"'), PresetError, "format",
     "format = '1' is not supported", "write format = 1 at the top of the file"),
    ("unknown-top-level-key", edit('name = "Test"', 'name = "Test"\nmacro = 1'), PresetError,
     "macro", "unknown key 'macro'", "did you mean 'macros'?"),
    ("unknown-top-level-key-no-match", edit('name = "Test"', 'name = "Test"\nzzz = 1'),
     PresetError, "zzz", "unknown key 'zzz'", "valid: doc, format, global, macros, name, voice"),
    ("name-not-a-string", edit('name = "Test"', "name = 3"), PresetError, "name",
     "name must be a string", 'write name = "My preset"'),
    ("voice-not-a-table", 'format = 1\nvoice = 3\n', PresetError, "voice",
     "'voice' must be a table", "write it as [voice]"),
    ("unknown-voice-key", edit("polyphony = 4", "polyfony = 4"), PresetError, "voice.polyfony",
     "unknown key 'polyfony'", "did you mean 'polyphony'?"),
    ("polyphony-as-string", edit("polyphony = 4", 'polyphony = "4"'), PresetError,
     "voice.polyphony", "polyphony = '4' has the wrong type", "use a whole number"),
    ("polyphony-fraction", edit("polyphony = 4", "polyphony = 4.5"), PresetError,
     "voice.polyphony", "polyphony = 4.5 has the wrong type", "use a whole number"),
    ("polyphony-bool", edit("polyphony = 4", "polyphony = true"), PresetError,
     "voice.polyphony", "polyphony = True has the wrong type", "use a whole number"),
    ("mode-not-a-string", edit("polyphony = 4", "mode = 1"), PresetError, "voice.mode",
     "mode = 1 has the wrong type", "use a string"),
    ("glide-as-string", edit("polyphony = 4", 'glide_ms = "5 ms"'), PresetError,
     "voice.glide_ms", "glide_ms = '5 ms' has the wrong type", "use a number"),
    ("glide-negative", edit("polyphony = 4", "glide_ms = -1"), PresetError, "voice.glide_ms",
     "glide_ms is out of range", "use 0 to 10000"),
    ("glide-too-long", edit("polyphony = 4", "glide_ms = 10001"), PresetError, "voice.glide_ms",
     "glide_ms is out of range", "use 0 to 10000"),
    ("bend-range-too-wide", edit("polyphony = 4", "bend_range_st = 49"), PresetError,
     "voice.bend_range_st", "bend_range_st is out of range", "use 0 to 48"),
    ("bend-range-nan", edit("polyphony = 4", "bend_range_st = nan"), PresetError,
     "voice.bend_range_st", "bend_range_st is out of range", "use 0 to 48"),
    ("voice-without-nodes", 'format = 1\n[voice]\npolyphony = 4\n', PresetError, "voice.nodes",
     "the voice graph has no nodes", "add [voice.nodes.NAME] tables with a type each"),
    ("no-voice-at-all", 'format = 1\nname = "x"\n', PresetError, "voice.nodes",
     "the voice graph has no nodes", "add [voice.nodes.NAME] tables with a type each"),
    ("nodes-not-a-table", 'format = 1\n[voice]\nnodes = 3\n', PresetError, "voice.nodes",
     "'nodes' must be a table", "write it as [voice.nodes]"),
    ("node-not-a-table", MINIMAL + "[voice.nodes]\nenv = 3\n",
     PresetError, "voice.nodes.env", "a node must be a table", "write [voice.nodes.env]"),
    ("node-name-not-plain", GOOD + '[voice.nodes."2x"]\ntype = "saw"\n', PresetError,
     "voice.nodes.2x", "node name '2x' is not a plain name",
     "use letters, digits and _ (not starting with a digit)"),
    ("node-without-type", edit('type = "adsr"', "attack_ms = 5"), PresetError,
     "voice.nodes.env", "node has no type", 'add type = "saw", or another name from instrument modules'),
    ("param-bool", edit("cutoff_hz = 1000", "cutoff_hz = true"), PresetError,
     "voice.nodes.filt.cutoff_hz", "cutoff_hz = True is not a number",
     "write a number in the parameter's display unit, or text like \"1.2 kHz\" or \"Saw\""),
    ("param-list", edit("cutoff_hz = 1000", "cutoff_hz = [1000]"), PresetError,
     "voice.nodes.filt.cutoff_hz", "cutoff_hz = [1000] is not a number",
     "write a number in the parameter's display unit, or text like \"1.2 kHz\" or \"Saw\""),
    ("connect-not-a-list", edit(CONNECT, 'connect = "osc.out -> filt.in"\n'), PresetError,
     "voice.connect",
     "connect must be a list of strings", 'write connect = ["a.out -> b.in"]'),
    ("connection-without-arrow", edit('"osc.out -> filt.in"', '"osc.out filt.in"'), GraphError,
     "voice.connect[0]", "cannot read connection 'osc.out filt.in'",
     'write it as "node.port -> node.port", optionally "* amount"'),
    ("connection-to-unknown-node", edit('"filt.out -> out.in"', '"flit.out -> out.in"'),
     GraphError, "voice.connect[2]", "unknown node 'flit' in \"flit.out -> out.in\"",
     "did you mean 'filt'?"),
    ("connection-cycle", edit('"filt.out -> out.in"', '"filt.out -> osc.level"'), GraphError,
     "voice.connect[2]", "connection \"filt.out -> osc.level\" makes a cycle: filt -> osc -> filt",
     "remove one connection of the cycle; feedback belongs inside a module"),
    ("unknown-global-key", GOOD + "[global]\nnodez = 1\n", PresetError, "global.nodez",
     "unknown key 'nodez'", "did you mean 'nodes'?"),
    ("global-connection-to-missing-node",
     GOOD + '[global]\nconnect = ["voices.left -> main.left"]\n',
     GraphError, "global.connect[0]", "unknown node 'voices' in \"voices.left -> main.left\"",
     "there is none"),
    ("macros-not-a-table", edit('name = "Test"', 'name = "Test"\nmacros = 3', MINIMAL),
     PresetError, "macros", "'macros' must be a table", "write it as [macros]"),
    ("macro-not-a-table", MINIMAL + "[macros]\nx = 3\n", PresetError, "macros.x",
     "a macro must be a table", "write [macros.x]"),
    ("unknown-macro-key", edit('label = "Cutoff"', 'lable = "Cutoff"'), PresetError,
     "macros.cutoff.lable", "unknown key 'lable'", "did you mean 'label'?"),
    ("macro-without-targets", edit("targets = [{ param = \"filt.cutoff_hz\", from = 100, "
                                   "to = 8000 }]", ""), PresetError, "macros.cutoff.targets",
     "macro has no targets", 'add targets = [{ param = "node.param", from = 0, to = 1 }]'),
    ("macro-empty-targets", edit("[{ param = \"filt.cutoff_hz\", from = 100, to = 8000 }]", "[]"),
     PresetError, "macros.cutoff.targets", "macro has no targets",
     'add targets = [{ param = "node.param", from = 0, to = 1 }]'),
    ("macro-target-not-a-table", edit("[{ param = \"filt.cutoff_hz\", from = 100, to = 8000 }]",
                                      '["filt.cutoff_hz"]'), PresetError,
     "macros.cutoff.targets[0]", "a target must be a table",
     '{ param = "node.param", from = 0, to = 1 }'),
    ("unknown-target-key", edit("from = 100", "frm = 100"), PresetError,
     "macros.cutoff.targets[0].frm", "unknown key 'frm'", "did you mean 'from'?"),
    ("target-without-to", edit(", to = 8000", ""), PresetError, "macros.cutoff.targets[0]",
     "target lacks to", '{ param = "node.param", from = 0, to = 1 }'),
    ("target-range-as-text", edit("to = 8000", 'to = "8 kHz"'), PresetError,
     "macros.cutoff.targets[0]", "from and to must be numbers",
     "give display values, like from = 200, to = 8000"),
    ("macro-default-out-of-range", edit('label = "Cutoff"', 'label = "Cutoff"\ndefault = 2'),
     PresetError, "macros.cutoff.default", "default = 2 is out of range", "use 0 to 1"),
    ("macro-default-bool", edit('label = "Cutoff"', 'label = "Cutoff"\ndefault = true'),
     PresetError, "macros.cutoff.default", "default = True is out of range", "use 0 to 1"),
]


@pytest.mark.parametrize("text, cls, key, what, fix",
                         [pytest.param(*case[1:], id=case[0]) for case in LOAD_ERRORS])
def test_load_error_names_source_key_and_fix(text, cls, key, what, fix):
    err = parse_error(text)
    assert type(err) is cls
    assert (err.where, err.what, err.fix) == (f"{SOURCE}: {key}", what, fix)
    assert str(err) == f"{SOURCE}: {key}: {what} ({fix})"


def test_toml_syntax_error_names_the_line_and_the_fix():
    text = edit('type = "saw"', "type = saw")
    line = text.splitlines().index("type = saw") + 1
    err = parse_error(text)
    assert isinstance(err, PresetError)
    assert err.where == SOURCE
    assert err.what.startswith("not valid TOML")
    assert f"line {line}" in err.what
    assert err.fix == "fix the syntax at that line (strings need quotes, tables [brackets])"
    assert "\n" not in str(err)


def test_toml_duplicate_node_table_is_a_syntax_error_at_its_line():
    text = GOOD + '\n[voice.nodes.osc]\ntype = "sine"\n'
    err = parse_error(text)
    assert err.where == SOURCE
    assert f"line {len(text.splitlines()) - 1}" in err.what


def test_missing_format_says_it_is_missing():
    err = parse_error(edit("format = 1\n", ""))
    assert err.where == f"{SOURCE}: format"
    assert "missing" in err.what, err.what
    assert "None" not in str(err), str(err)
    assert err.fix == "write format = 1 at the top of the file"


def test_empty_file_says_format_is_missing():
    err = parse_error("")
    assert err.where == f"{SOURCE}: format"
    assert "missing" in err.what and "None" not in str(err), str(err)


def test_format_true_is_not_taken_for_format_1():
    # TOML true is Python True, and True == 1.
    err = parse_error(edit("format = 1", "format = true"))
    assert err.where == f"{SOURCE}: format"
    assert err.fix == "write format = 1 at the top of the file"


def test_glide_nan_is_out_of_range():
    err = parse_error(edit("polyphony = 4", "glide_ms = nan"))
    assert (err.where, err.fix) == (f"{SOURCE}: voice.glide_ms", "use 0 to 10000")


def test_node_type_that_is_not_a_string_says_so():
    err = parse_error(edit('type = "adsr"', "type = 3"))
    assert err.where.startswith(f"{SOURCE}: voice.nodes.env")
    assert "has no type" not in err.what, err.what
    assert "type = 3" in err.what, err.what


@pytest.mark.parametrize("source", ["voice", "v", "format", "f"], ids=lambda s: f"source-{s}")
def test_error_names_the_source_even_when_it_looks_like_a_key(source):
    # A file called "voice" (or "v") must still be named before "voice.polyfony".
    err = parse_error(edit("polyphony = 4", "polyfony = 4"), source)
    assert err.where == f"{source}: voice.polyfony"
    err = parse_error(edit("format = 1", "format = 2"), source)
    assert err.where == f"{source}: format"


# -- load_preset: the file itself -----------------------------------------------------------------

def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert (info.value.where, info.value.what, info.value.fix) == (
        str(path), "file not found", "check the path")


def test_load_directory_says_it_is_a_directory(tmp_path):
    with pytest.raises(PresetError) as info:
        load_preset(tmp_path)
    err = info.value
    assert err.where == str(tmp_path)
    assert "directory" in err.what.lower(), err.what
    assert "Errno" not in str(err), str(err)
    assert ".toml" in err.fix, err.fix


def test_load_non_utf8_file_says_to_save_as_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(edit('name = "Test"', 'name = "Caf\xe9"').encode("latin-1"))
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert info.value.where == str(path)
    assert "utf-8" in info.value.fix.lower(), info.value.fix


def test_load_error_inside_the_file_names_the_path(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(edit("polyphony = 4", "polyfony = 4"))
    with pytest.raises(PresetError) as info:
        load_preset(path)
    assert info.value.where == f"{path}: voice.polyfony"


def test_parameter_values_may_be_written_as_text_in_their_unit():
    """ "1.2 kHz", "250 ms", "-6 dB" and choice labels read as their values."""
    from instrument.graph.compile import compile_preset
    from instrument.modules.registry import default_registry

    text = (REPO / "presets" / "poly16.toml").read_text()
    text = text.replace("cutoff_hz = 300", 'cutoff_hz = "1.2 kHz"')
    text = text.replace("release_ms = 400", 'release_ms = "0.4 s"')
    plan = compile_preset(parse_preset(text, "text.toml"), default_registry(), 48000, 64)
    by_path = {s.path: s for s in plan.params}
    assert by_path["filt.cutoff_hz"].spec.from_norm(by_path["filt.cutoff_hz"].initial_norm) == \
        pytest.approx(1200.0)
    assert by_path["fenv.release_ms"].spec.from_norm(by_path["fenv.release_ms"].initial_norm) == \
        pytest.approx(400.0)
