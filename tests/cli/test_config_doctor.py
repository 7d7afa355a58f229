"""``instrument run --config FILE`` (instrument/cli/run_config.py) and ``instrument doctor``.

The configuration's values are followed all the way to the ``RunOptions`` the host would get
(``Host`` replaced by a recorder, so nothing starts); errors are one line, exit 2.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from instrument.cli import main as cli
from instrument.cli.run_config import (
    ConfigError, config_keys, explicit_dests, read_run_config, subparser,
)
from live import REPO

EXAMPLE = REPO / "deploy" / "instrument.toml"


def run_parser():
    return subparser(cli._parser(), "run")


def instrument(*args, env=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("instrument")
    return subprocess.run([str(script), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.fixture
def captured(monkeypatch):
    """Run ``instrument run`` in-process up to the Host; returns the RunOptions it got."""
    import instrument.runtime.host as host

    seen = []

    class FakeHost:
        def __init__(self, options):
            seen.append(options)

        def start(self):
            pass

        def shutdown(self):
            pass

        def run(self):
            return 0

    monkeypatch.setattr(host, "Host", FakeHost)
    return seen


def write(tmp_path, text: str, name="run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


FULL = """
preset = "presets/pad.toml"
preset_dir = "presets"
mapping = "none"
device = 3
rate = 44100
block = 128
latency = 0.005
cpu = 1
rt_priority = 70
midi_api = "jack"
midi = "Keystep"
no_midi = true
osc_port = 9100
osc_bind = "127.0.0.1"
osc_allow = "local,10.8.0.0/16"
osc_reply_port = 9002
osc_send = ["127.0.0.1:9003", "127.0.0.1:9004"]
osc_lease_s = 30
oscquery_port = 0
zeroconf = false
record = "take.wav"
null = true
status_interval = 2.5
"""


def test_every_value_of_the_file_reaches_run_options(tmp_path, captured):
    path = write(tmp_path, FULL)
    assert cli.main(["run", "--config", str(path)]) == 0
    (opt,) = captured
    assert opt.preset == Path("presets/pad.toml")
    assert opt.preset_dir == Path("presets")
    assert opt.mapping is None
    assert (opt.device, opt.rate, opt.block, opt.latency) == ("3", 44100, 128, "0.005")
    assert (opt.cpu, opt.rt_priority, opt.midi_api, opt.midi, opt.no_midi) == (
        1, 70, "jack", "Keystep", True)
    assert (opt.osc_port, opt.osc_bind, opt.osc_allow, opt.osc_reply_port) == (
        9100, "127.0.0.1", "local,10.8.0.0/16", 9002)
    assert opt.osc_send == (("127.0.0.1", 9003), ("127.0.0.1", 9004))
    assert opt.osc_lease_s == 30.0 and isinstance(opt.osc_lease_s, float)
    assert (opt.oscquery_port, opt.zeroconf, opt.record, opt.null) == (0, False, "take.wav", True)
    assert opt.status_interval == 2.5


def test_read_run_config_types_values_as_the_parser_would(tmp_path):
    values = read_run_config(write(tmp_path, FULL), run_parser())
    assert values["no_zeroconf"] is True  # zeroconf = false
    assert values["osc_lease_s"] == 30.0 and values["device"] == "3"
    assert values["osc_send"] == ["127.0.0.1:9003", "127.0.0.1:9004"]
    assert "zeroconf" not in values


def test_explicit_options_override_the_file(tmp_path, captured):
    path = write(tmp_path, FULL)
    argv = ["run", "presets/poly16.toml", "--config", str(path), "--osc-port", "9200",
            "--osc-send", "127.0.0.1:9005", "--rate", "48000"]
    assert cli.main(argv) == 0
    (opt,) = captured
    assert opt.preset == Path("presets/poly16.toml")
    assert opt.osc_port == 9200
    assert opt.osc_send == (("127.0.0.1", 9005),)  # replaces the file's list, not added to it
    assert opt.rate == 48000  # given explicitly, though it is the default
    assert opt.block == 128  # not given: the file's
    assert explicit_dests(cli._parser(), argv) >= {
        "preset", "osc_port", "osc_send", "rate", "config"}
    assert "block" not in explicit_dests(cli._parser(), argv)


def test_no_file_options_keep_the_parser_defaults(tmp_path, captured):
    path = write(tmp_path, 'preset = "presets/pad.toml"\n')
    assert cli.main(["run", "--config", str(path)]) == 0
    (opt,) = captured
    assert (opt.rate, opt.block, opt.osc_port, opt.zeroconf, opt.osc_send) == (
        48000, 64, 9000, True, ())


def test_keys_are_derived_from_the_parser():
    keys = config_keys(run_parser())
    dests = {a.dest for a in run_parser()._actions} - {"help", "config"}
    assert dests <= set(keys)
    assert keys["zeroconf"].inverted and keys["zeroconf"].action.dest == "no_zeroconf"
    assert not keys["midi"].inverted  # 'midi' is the pattern, not the inverse of no_midi


def test_the_shipped_example_names_every_option_and_loads(tmp_path):
    text = EXAMPLE.read_text()
    keys = config_keys(run_parser())
    written = set(re.findall(r"^#? ?([a-z_]+) = ", text, re.MULTILINE))
    for name, key in keys.items():
        if key.inverted or (name.startswith("no_") and name[3:] in keys
                            and keys[name[3:]].inverted):
            assert name in written or name.replace("no_", "", 1) in written, name
        else:
            assert name in written, f"deploy/instrument.toml does not mention {name}"
    assert written <= set(keys), written - set(keys)
    # Uncommenting every line gives a valid file whose values are the parser's defaults.
    values = read_run_config(EXAMPLE, run_parser())
    assert values["preset"] == "/opt/instrument/presets/poly16.toml"
    defaults = {a.dest: a.default for a in run_parser()._actions}
    uncommented = tmp_path / "all.toml"
    uncommented.write_text(re.sub(r"^# ([a-z_]+ = )", r"\1", text, flags=re.MULTILINE))
    everything = read_run_config(uncommented, run_parser())
    for name in ("rate", "block", "latency", "midi_api", "osc_port", "osc_bind", "osc_allow",
                 "osc_send", "osc_lease_s", "no_zeroconf", "null", "no_midi", "status_interval",
                 "program_change", "watch"):
        if name in defaults:
            assert everything[name] == defaults[name], name


@pytest.mark.parametrize("text, key, fix", [
    ("osc_prot = 9000\n", "osc_prot", "did you mean 'osc_port'?"),
    ('osc_port = "9000"\n', "osc_port", "osc_port = 9000"),
    ("rate = 48000.5\n", "rate", "rate = 48000"),
    ("no_midi = 1\n", "no_midi", "no_midi = true"),
    ('midi_api = "jackd"\n', "midi_api", "did you mean 'jack'?"),
    ("osc_send = [1.5, true]\n", "osc_send[1]", "osc_send = ["),
    ("zeroconf = false\nno_zeroconf = true\n", "no_zeroconf", "keep one"),
    ("[run]\nrate = 1\n", "run", "top level"),
])
def test_mistakes_are_one_line_naming_file_key_and_fix(tmp_path, text, key, fix):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_run_config(path, run_parser())
    line = str(info.value)
    assert "\n" not in line and f"{path}: {key}" in line and fix in line, line


def test_config_errors_exit_2_without_traceback(tmp_path):
    bad = write(tmp_path, "osc_prot = 9000\n")
    result = instrument("run", "--config", bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(bad) in lines[0] and "osc_prot" in lines[0] and "osc_port" in lines[0]
    for text, what in (("rate = \n", "not valid TOML"), ("", "file not found")):
        path = tmp_path / ("missing.toml" if not text else "broken.toml")
        if text:
            path.write_text(text)
        result = instrument("run", "--config", path)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert what in result.stderr and str(path) in result.stderr


# -- doctor -----------------------------------------------------------------------------------

LINE = re.compile(r"^(ok|warn|fail): \S")


def test_doctor_prints_one_line_per_check(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]  # free a moment ago: no clash with anything running
    config = write(tmp_path, f"osc_port = {port}\noscquery_port = 0\n")
    result = instrument("doctor", "--config", config)
    lines = result.stdout.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert all(LINE.match(line) for line in lines), lines
    topics = [line.split(": ", 1)[1].split(":")[0] for line in lines]
    for topic in ("settings", "real-time priority", "locked memory", "CPU governor", "audio",
                  "OSC port", "OSCQuery port", "DSP cache", "state directory",
                  "power and temperature"):
        assert topic in topics, (topic, lines)
    assert any(t.startswith("MIDI") for t in topics)
    assert f"settings: {config}" in result.stdout
    fails = [line for line in lines if line.startswith("fail:")]
    assert result.returncode == (1 if fails else 0), result.stdout
    assert not any("OSC" in line for line in fails), fails  # the ports were free


def test_doctor_names_a_busy_osc_port_and_the_fix(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("0.0.0.0", 0))
        port = busy.getsockname()[1]
        config = write(tmp_path, f"osc_port = {port}\noscquery_port = 0\n")
        result = instrument("doctor", "--config", config)
    assert result.returncode == 1, result.stdout
    (line,) = [l for l in result.stdout.splitlines() if l.startswith("fail: OSC port")]
    assert str(port) in line and "osc_port" in line and "--osc-port" in line


def test_doctor_busy_oscquery_port_and_bad_config(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = instrument("doctor", "--osc-port", port - 1)
    (line,) = [l for l in result.stdout.splitlines() if l.startswith("fail: OSCQuery port")]
    assert str(port) in line and "oscquery_port" in line
    bad = write(tmp_path, "osc_prot = 1\n")
    result = instrument("doctor", "--config", bad)
    assert result.returncode == 2 and "did you mean 'osc_port'?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_doctor_decodes_throttling(monkeypatch):
    from instrument.cli import doctor

    class Done:
        stdout = "throttled=0x50005\n"

    monkeypatch.setattr(doctor.shutil, "which", lambda name: "/usr/bin/vcgencmd")
    monkeypatch.setattr(doctor.subprocess, "run", lambda *a, **k: Done())
    report = doctor.Report(out=open("/dev/null", "w"))
    doctor.check_throttling(report, {})
    (line,) = report.lines
    assert line.startswith("fail: power and temperature: under-voltage, throttled now")
    Done.stdout = "throttled=0x50000\n"
    doctor.check_throttling(report, {})
    assert report.lines[1].startswith("warn: power and temperature: under-voltage, throttling "
                                      "since boot")


def test_the_development_configuration_watches_presets_and_code(captured):
    """deploy/dev.toml: --watch on (presets and the instrument's own code), a state folder of
    its own, a status line every 5 s."""
    assert cli.main(["run", "--config", str(REPO / "deploy" / "dev.toml")]) == 0
    (opt,) = captured
    assert opt.watch is True
    assert opt.state_dir == Path(".dev-state")
    assert opt.preset == Path("presets/init.toml") and opt.status_interval == 5
