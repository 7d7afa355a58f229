"""``instrument check``: every mistake a user can make in a preset gives exactly one line on
stderr -- ``error: <file>: <key or line>: <what> (<fix>)`` -- exit code 2 and no traceback; good
files print ``ok: <file>`` and exit 0; several files are all checked even when one is bad.

Most tests call ``main([...])`` in-process (fast). They install the built-in modules without
running the kernel self-test (``discover(validate=False)``): these tests are about messages, and
kernel validation has its own tests. The subprocess tests at the end run the real CLI, with the
real validated registry, to prove the same holds there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instrument.cli.main import main
from instrument.modules import registry as registry_module
from instrument.names import nearest
from live import REPO

SHIPPED = sorted((REPO / "presets").glob("*.toml"))

CONNECT = """\
connect = [
  "osc.out -> filt.in",
  "filt.out -> amp.in",
  "env.out -> amp.cv",
  "amp.out -> out.in",
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

[voice.nodes.filt]
type = "svf_lowpass"
cutoff_hz = 1000

[voice.nodes.env]
type = "adsr"

[voice.nodes.amp]
type = "vca"

[voice.nodes.out]
type = "output"

[macros.cutoff]
targets = [{ param = "filt.cutoff_hz", from = 100, to = 8000 }]
"""

GLOBAL = """
[global]
connect = ["voices.left -> main.left", "voices.right -> main.right"]

[global.nodes.voices]
type = "voices"

[global.nodes.main]
type = "output"
"""


def edit(old: str, new: str, text: str = GOOD) -> str:
    """``text`` with one exact edit (fails loudly if ``old`` does not occur exactly once)."""
    assert text.count(old) == 1, f"fixture edit {old!r} matches {text.count(old)} times"
    return text.replace(old, new)


def connect(*lines: str) -> str:
    """GOOD with its voice connections replaced by ``lines``."""
    return edit(CONNECT, "connect = [\n" + "".join(f"  {json.dumps(line)},\n" for line in lines)
                + "]\n")


@pytest.fixture(scope="module")
def declared_modules():
    return registry_module.discover(validate=False)


@pytest.fixture(autouse=True)
def _use_declared_modules(monkeypatch, declared_modules):
    monkeypatch.setattr(registry_module, "_default", declared_modules)


def check(capsys, *paths) -> tuple[int, list[str], list[str]]:
    """Run ``instrument check PATHS`` in-process: exit code, stdout lines, stderr lines."""
    code = main(["check", *map(str, paths)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out.splitlines(), err.splitlines()


def check_one_error(capsys, path) -> str:
    """Check one bad file: exit 2, nothing on stdout, one error line naming the file."""
    code, out, err = check(capsys, path)
    assert code == 2, (out, err)
    assert out == []
    assert len(err) == 1, err
    assert err[0].startswith(f"error: {path}: "), err[0]
    return err[0][len(f"error: {path}: "):]


def write(tmp_path, text: str, name: str = "preset.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- every message, pinned ------------------------------------------------------------------------

# (id, preset text, the line after "error: <file>: ")
MESSAGES = [
    # file format
    ("format-wrong-version", edit("format = 1", "format = 2"),
     "format: format = 2 is not supported (write format = 1 at the top of the file)"),
    ("unknown-top-level-key", edit('name = "Test"', 'name = "Test"\nmacro = 1'),
     "macro: unknown key 'macro' (did you mean 'macros'?)"),
    ("unknown-top-level-key-no-match", edit('name = "Test"', 'name = "Test"\nzzz = 1'),
     "zzz: unknown key 'zzz' (valid: doc, format, global, macros, name, voice)"),
    ("unknown-voice-key", edit("polyphony = 4", "polyfony = 4"),
     "voice.polyfony: unknown key 'polyfony' (did you mean 'polyphony'?)"),
    # nodes
    ("voice-without-nodes", "format = 1\n[voice]\npolyphony = 4\n",
     "voice.nodes: the voice graph has no nodes (add [voice.nodes.NAME] tables with a type each)"),
    ("node-without-type", edit('type = "adsr"', "attack_ms = 5"),
     'voice.nodes.env: node has no type (add type = "saw", or another name from instrument modules)'),
    ("unknown-module-type", edit('"svf_lowpass"', '"svf_lowpas"'),
     "voice.nodes.filt: unknown module type 'svf_lowpas' (did you mean 'svf_lowpass'?)"),
    ("unknown-module-type-no-match", edit('"svf_lowpass"', '"zzzzzz"'),
     "voice.nodes.filt: unknown module type 'zzzzzz' ("
     + nearest("zzzzzz", registry_module.discover(validate=False).modules) + ")"),
    ("node-name-not-plain", GOOD + '\n[voice.nodes."2x"]\ntype = "saw"\n',
     "voice.nodes.2x: node name '2x' is not a plain name "
     "(use letters, digits and _ (not starting with a digit))"),
    # parameters
    ("unknown-parameter", edit("cutoff_hz = 1000", "cutof_hz = 1000"),
     "voice.nodes.filt.cutof_hz: module 'svf_lowpass' has no parameter 'cutof_hz' "
     "(did you mean 'cutoff_hz'?)"),
    ("value-above-range-hz", edit("cutoff_hz = 1000", "cutoff_hz = 50000"),
     "voice.nodes.filt.cutoff_hz: cutoff_hz = 50000 is out of range (use 20.0 Hz to 20.0 kHz)"),
    ("value-below-range-ms", edit('type = "adsr"', 'type = "adsr"\nattack_ms = -5'),
     "voice.nodes.env.attack_ms: attack_ms = -5 is out of range (use 0 ms to 20.0 s)"),
    ("value-out-of-range-cents", edit('type = "saw"', 'type = "saw"\ndetune_cents = 150'),
     "voice.nodes.osc.detune_cents: detune_cents = 150 is out of range "
     "(use -100.0 cents to +100.0 cents)"),
    ("value-nan", edit("cutoff_hz = 1000", "cutoff_hz = nan"),
     "voice.nodes.filt.cutoff_hz: cutoff_hz = nan is out of range (use 20.0 Hz to 20.0 kHz)"),
    ("value-inf", edit("cutoff_hz = 1000", "cutoff_hz = inf"),
     "voice.nodes.filt.cutoff_hz: cutoff_hz = inf is out of range (use 20.0 Hz to 20.0 kHz)"),
    ("value-text-not-understood", edit("cutoff_hz = 1000", 'cutoff_hz = "bright"'),
     "voice.nodes.filt.cutoff_hz: cannot read 'bright' as Hz "
     "(expected a number like '1.2 kHz' or '440')"),
    ("value-text-out-of-range", edit("cutoff_hz = 1000", 'cutoff_hz = "30 kHz"'),
     "voice.nodes.filt.cutoff_hz: cutoff_hz = 30000.0 is out of range (use 20.0 Hz to 20.0 kHz)"),
    # connections
    ("cycle-two-nodes",
     connect("osc.out -> filt.in", "filt.out -> osc.level", "filt.out -> out.in"),
     'voice.connect[1]: connection "filt.out -> osc.level" makes a cycle: filt -> osc -> filt '
     "(remove one connection of the cycle; feedback belongs inside a module)"),
    ("cycle-three-nodes",
     connect("osc.out -> filt.in", "filt.out -> amp.in", "amp.out -> osc.level",
             "amp.out -> out.in"),
     'voice.connect[2]: connection "amp.out -> osc.level" makes a cycle: amp -> osc -> filt -> amp '
     "(remove one connection of the cycle; feedback belongs inside a module)"),
    ("connection-to-unknown-node", connect("osc.out -> flit.in", "osc.out -> out.in"),
     "voice.connect[0]: unknown node 'flit' in \"osc.out -> flit.in\" (did you mean 'filt'?)"),
    ("connection-from-unknown-output", connect("osc.outt -> out.in"),
     "voice.connect[0]: 'osc' (saw) has no output 'outt' (did you mean 'out'?)"),
    ("connection-to-unknown-input", connect("osc.out -> amp.inn", "amp.out -> out.in"),
     "voice.connect[0]: 'amp' (vca) has no input or continuous parameter 'inn' "
     "(did you mean 'in'?)"),
    ("connection-to-discrete-parameter",
     connect("env.out -> osc.transpose_st", "osc.out -> out.in"),
     "voice.connect[0]: 'osc' (saw) has no input or continuous parameter 'transpose_st' "
     "(valid: detune_cents, level, pitch)"),
    ("connection-without-arrow", connect("osc.out out.in"),
     "voice.connect[0]: cannot read connection 'osc.out out.in' "
     '(write it as "node.port -> node.port", optionally "* amount")'),
    ("connection-end-without-port", connect("osc -> out.in"),
     "voice.connect[0]: endpoint 'osc' in 'osc -> out.in' is not node.port "
     "(name both the node and its port, like osc1.out)"),
    ("connection-amount-not-a-number", connect("env.out -> filt.cutoff_hz * lots",
                                               "osc.out -> out.in"),
     "voice.connect[0]: amount 'lots' in 'env.out -> filt.cutoff_hz * lots' is not a number "
     "(use a number such as 0.5 or -0.25)"),
    ("connect-not-a-list", edit(CONNECT, 'connect = "osc.out -> out.in"\n'),
     'voice.connect: connect must be a list of strings (write connect = ["a.out -> b.in"])'),
    # output nodes
    ("no-output-node", edit('type = "output"', 'type = "vca"'),
     'voice: the voice graph has no output node (add a node with type = "output" and connect the sound to it)'),
    ("global-without-output-node", GOOD + '\n[global]\n[global.nodes.voices]\ntype = "voices"\n',
     'global: the global graph has no output node (add a node with type = "output" and connect the sound to it)'),
    # scope
    ("voices-in-voice-graph", GOOD + '\n[voice.nodes.v]\ntype = "voices"\n',
     "voice.nodes.v: module 'voices' cannot be used in the voice graph "
     "(it belongs in the global graph)"),
    ("adsr-in-global-graph", GOOD + GLOBAL + '\n[global.nodes.env2]\ntype = "adsr"\n',
     "global.nodes.env2: module 'adsr' cannot be used in the global graph "
     "(it belongs in the voice graph)"),
    ("saw-in-global-graph", GOOD + GLOBAL + '\n[global.nodes.osc2]\ntype = "saw"\n',
     "global.nodes.osc2: module 'saw' cannot be used in the global graph "
     "(it belongs in the voice graph)"),
    ("node-name-in-both-graphs", GOOD + GLOBAL.replace("main", "out"),
     "global.nodes.out: node name 'out' is used in both graphs (give every node a distinct name)"),
    # voice settings
    ("mode-misspelled", edit("polyphony = 4", 'mode = "polly"'),
     "voice.mode: mode 'polly' is unknown (did you mean 'poly'?)"),
    ("mode-no-match", edit("polyphony = 4", 'mode = "xyz"'),
     "voice.mode: mode 'xyz' is unknown (valid: legato, mono, poly)"),
    ("steal-misspelled", edit("polyphony = 4", 'steal = "oldst"'),
     "voice.steal: steal 'oldst' is unknown (did you mean 'oldest'?)"),
    ("polyphony-zero", edit("polyphony = 4", "polyphony = 0"),
     "voice.polyphony: polyphony 0 is out of range (use 1 to 128)"),
    ("polyphony-too-many", edit("polyphony = 4", "polyphony = 999"),
     "voice.polyphony: polyphony 999 is out of range (use 1 to 128)"),
    ("polyphony-not-whole", edit("polyphony = 4", "polyphony = 4.5"),
     "voice.polyphony: polyphony = 4.5 has the wrong type (use a whole number)"),
    ("glide-out-of-range", edit("polyphony = 4", "glide_ms = -1"),
     "voice.glide_ms: glide_ms is out of range (use 0 to 10000)"),
    ("bend-range-out-of-range", edit("polyphony = 4", "bend_range_st = 60"),
     "voice.bend_range_st: bend_range_st is out of range (use 0 to 48)"),
    # macros
    ("macro-unknown-parameter", edit('"filt.cutoff_hz"', '"filt.cutof_hz"'),
     "macros.cutoff.targets[0]: macro 'cutoff' targets unknown parameter 'filt.cutof_hz' "
     "(did you mean 'filt.cutoff_hz'?)"),
    ("macro-unknown-node", edit('"filt.cutoff_hz"', '"flt.cutoff_hz"'),
     "macros.cutoff.targets[0]: macro 'cutoff' targets unknown parameter 'flt.cutoff_hz' "
     "(did you mean 'filt.cutoff_hz'?)"),
    ("macro-range-above", edit("to = 8000", "to = 80000"),
     "macros.cutoff.targets[0]: macro 'cutoff' range value 80000 for filt.cutoff_hz is out of "
     "range (use 20.0 Hz to 20.0 kHz)"),
    ("macro-range-below", edit("from = 100", "from = 5"),
     "macros.cutoff.targets[0]: macro 'cutoff' range value 5 for filt.cutoff_hz is out of "
     "range (use 20.0 Hz to 20.0 kHz)"),
    ("macro-without-targets",
     edit('targets = [{ param = "filt.cutoff_hz", from = 100, to = 8000 }]', 'label = "Cutoff"'),
     'macros.cutoff.targets: macro has no targets '
     '(add targets = [{ param = "node.param", from = 0, to = 1 }])'),
    ("macro-target-unknown-key", edit("from = 100", "frm = 100"),
     "macros.cutoff.targets[0].frm: unknown key 'frm' (did you mean 'from'?)"),
    ("macro-default-out-of-range", edit("targets =", "default = 2\ntargets ="),
     "macros.cutoff.default: default = 2 is out of range (use 0 to 1)"),
]


@pytest.mark.parametrize("text, message", [pytest.param(*c[1:], id=c[0]) for c in MESSAGES])
def test_check_prints_one_line_naming_file_key_and_fix(capsys, tmp_path, text, message):
    assert check_one_error(capsys, write(tmp_path, text)) == message


def test_check_toml_syntax_error_shows_the_line(capsys, tmp_path):
    text = edit('type = "saw"', "type = saw")
    line = text.splitlines().index("type = saw") + 1
    message = check_one_error(capsys, write(tmp_path, text))
    assert message.startswith("not valid TOML: ")
    assert f"line {line}" in message
    assert message.endswith(
        "(fix the syntax at that line (strings need quotes, tables [brackets]))")


def test_check_missing_file(capsys, tmp_path):
    path = tmp_path / "nope.toml"
    code, out, err = check(capsys, path)
    assert (code, out, err) == (2, [], [f"error: {path}: file not found (check the path)"])


# -- messages that do not yet say what the user needs (see the report) ----------------------------

def test_check_missing_format_says_format_is_missing(capsys, tmp_path):
    message = check_one_error(capsys, write(tmp_path, edit("format = 1\n", "")))
    assert message.startswith("format: ")
    assert "missing" in message and "None" not in message, message
    assert message.endswith("(write format = 1 at the top of the file)")


def test_check_two_output_nodes_names_both(capsys, tmp_path):
    text = GOOD + '\n[voice.nodes.out2]\ntype = "output"\n'
    message = check_one_error(capsys, write(tmp_path, text))
    assert message.startswith("voice")
    assert "'out'" in message and "'out2'" in message, message


def test_check_directory_says_it_is_a_directory(capsys, tmp_path):
    message = check_one_error(capsys, tmp_path)
    assert "directory" in message.lower(), message
    assert "Errno" not in message and message.count(str(tmp_path)) <= 1, message
    assert ".toml" in message, message


# -- good files, several files --------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_check_passes_shipped_preset(capsys, path):
    assert check(capsys, path) == (0, [f"ok: {path}"], [])


def test_check_passes_fixture_preset_and_variants(capsys, tmp_path):
    paths = [write(tmp_path, GOOD, "good.toml"),
             write(tmp_path, GOOD + GLOBAL, "with_global.toml"),
             write(tmp_path, edit("polyphony = 4", 'mode = "mono"\nsteal = "quietest"'),
                   "mono.toml")]
    assert check(capsys, *paths) == (0, [f"ok: {p}" for p in paths], [])


def test_check_several_files_one_bad_exits_2_and_checks_the_rest(capsys, tmp_path):
    good1 = write(tmp_path, GOOD, "good1.toml")
    bad = write(tmp_path, edit('"svf_lowpass"', '"svf_lowpas"'), "bad.toml")
    good2 = write(tmp_path, GOOD, "good2.toml")
    code, out, err = check(capsys, good1, bad, good2)
    assert code == 2
    assert out == [f"ok: {good1}", f"ok: {good2}"]
    assert err == [f"error: {bad}: voice.nodes.filt: unknown module type 'svf_lowpas' "
                   "(did you mean 'svf_lowpass'?)"]


def test_check_several_bad_files_reports_each_once(capsys, tmp_path):
    missing = tmp_path / "missing.toml"
    syntax = write(tmp_path, "format = \n", "syntax.toml")
    cycle = write(tmp_path, connect("osc.out -> filt.in", "filt.out -> osc.level"), "cycle.toml")
    good = write(tmp_path, GOOD, "good.toml")
    code, out, err = check(capsys, missing, syntax, good, cycle)
    assert code == 2
    assert out == [f"ok: {good}"]
    assert [line.split(": ")[1] for line in err] == [str(missing), str(syntax), str(cycle)]
    assert all(line.startswith("error: ") for line in err)


# -- the real command line, in a subprocess -------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instrument.cli.main", "check", *args],
                          cwd=REPO, env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)


def test_cli_check_shipped_presets_exits_0_with_ok_lines():
    rel = [str(p.relative_to(REPO)) for p in SHIPPED]
    result = run_cli(*rel)
    assert "Traceback" not in result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert result.returncode == 0
    assert result.stdout.splitlines() == [f"ok: {p}" for p in rel]


def test_cli_check_unknown_module_is_one_line_exit_2(tmp_path):
    path = write(tmp_path, edit('"svf_lowpass"', '"svf_lowpas"'))
    result = run_cli(str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {path}: voice.nodes.filt: unknown module type 'svf_lowpas' "
        "(did you mean 'svf_lowpass'?)"]


def test_cli_check_toml_syntax_error_is_one_line_exit_2(tmp_path):
    path = write(tmp_path, "format = 1\n[voice\n")
    result = run_cli(str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: not valid TOML") and "line 2" in line


def test_cli_check_missing_file_and_directory_among_good_files(tmp_path):
    good = write(tmp_path, GOOD, "good.toml")
    missing = tmp_path / "missing.toml"
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    result = run_cli(str(missing), str(good), str(folder))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stdout.splitlines() == [f"ok: {good}"]
    errors = result.stderr.splitlines()
    assert len(errors) == 2, errors
    assert errors[0] == f"error: {missing}: file not found (check the path)"
    assert errors[1].startswith(f"error: {folder}: ")
