"""The listing and benchmark commands, usage errors and ``--help``, through the real console
script in a subprocess (``instrument check`` has its own file, ``render`` too).

``instrument modules`` is one of the views over the parameter metadata (DESIGN.md, idea 1): the
expected text for every parameter is computed here from ``ParamSpec.format``, so the listing and
the metadata cannot drift apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from instrument.modules.registry import discover
from live import REPO

TIMEOUT_S = 600  # a cold numba cache compiles the fused renderer first (~30 s)
CORE_COMMANDS = ("render", "check", "modules", "devices", "bench")


def instrument(*args, env=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("instrument")
    return subprocess.run([str(script), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=env)


def builtin_names() -> set[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(data["project"]["entry-points"]["instrument.modules"])


# -- instrument modules -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def modules_listing() -> str:
    result = instrument("modules")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_modules_lists_every_module(modules_listing):
    headers = [line.split(" (", 1)[0] for line in modules_listing.splitlines()
               if line and not line.startswith(" ")]
    assert set(headers) == builtin_names()
    assert headers == sorted(headers)
    assert "skipped:" not in modules_listing


def test_modules_lists_scope_doc_and_ports(modules_listing):
    registry = discover()
    lines = modules_listing.splitlines()
    for name, cls in registry.modules.items():
        header = f"{name} ({cls.scope}): {cls.doc}"
        assert header in lines, header
        ports = lines[lines.index(header) + 1]
        ins = ", ".join(cls.input_names()) or "-"
        assert f"in: {ins}" in ports and f"out: {', '.join(cls.outputs)}" in ports, ports


def test_modules_lists_every_param_with_unit_range_and_default(modules_listing):
    registry = discover()
    lines = modules_listing.splitlines()
    for name, cls in registry.modules.items():
        start = lines.index(next(line for line in lines if line.startswith(f"{name} (")))
        block = []
        for line in lines[start + 2:]:
            if not line.startswith("    "):
                break
            block.append(line)
        assert len(block) == len(cls.params), (name, block)
        for spec, line in zip(cls.params, block):
            fields = line.split()
            assert fields[0] == spec.name
            rng = (" | ".join(spec.choices) if spec.choices
                   else f"{spec.format(spec.min)} .. {spec.format(spec.max)}")
            assert rng in line, (line, rng)
            assert f"default {spec.format(spec.default)}" in line, line
            if spec.doc:
                assert spec.doc in line


@pytest.mark.parametrize("param, text", [
    ("cutoff_hz", "20.0 Hz .. 20.0 kHz"),
    ("cutoff_hz", "default 2.00 kHz"),
    ("gain_db", "-60.0 dB .. 12.0 dB"),
    ("attack_ms", "0 ms .. 20.0 s"),
    ("attack_ms", "default 5.00 ms"),
    ("detune_cents", "-100.0 cents .. +100.0 cents"),
    ("transpose_st", "-48 st .. 48 st"),
    ("resonance", "0.00 .. 1.00"),
])
def test_modules_shows_units_in_display_text(modules_listing, param, text):
    """Units print the way ParamSpec.format writes them (params/text.py): Hz and kHz, dB,
    ms and s, cents, semitones."""
    rows = [line for line in modules_listing.splitlines() if line.split()[:1] == [param]]
    assert rows and all(text in row for row in rows), rows


# -- instrument devices ------------------------------------------------------------------------

DEVICE_LINE = re.compile(r"^\s*\d+ .+ \(.+\): \d+ out, \d+ in, \d+ Hz$")


def test_devices_prints_devices_or_one_line():
    """Without a sound server: the devices PortAudio sees, or one line saying there are none.
    (JACK is told not to start a server of its own.)"""
    env = dict(os.environ, JACK_NO_START_SERVER="1",
               JACK_DEFAULT_SERVER=f"instrument-no-such-server-{os.getpid()}")
    result = instrument("devices", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines
    if not all(DEVICE_LINE.match(line) for line in lines):
        assert len(lines) == 1 and re.search(r"no audio", lines[0]), result.stdout


@pytest.mark.integration
def test_devices_lists_the_jack_server(jack_server):
    """With a JACK server (dummy driver) running, PortAudio's JACK device is listed."""
    result = instrument("devices", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert all(DEVICE_LINE.match(line) for line in lines), result.stdout
    jack = [line for line in lines if "(JACK Audio Connection Kit)" in line]
    assert jack, result.stdout
    outs = [int(re.search(r": (\d+) out", line).group(1)) for line in jack]
    assert max(outs) >= 2
    assert any(" 48000 Hz" in line for line in jack)


# -- instrument bench -------------------------------------------------------------------------

BENCH_RE = {
    "rtf": re.compile(r"^real-time factor: ([\d.]+)x$", re.M),
    "pct": re.compile(r"^block time, % of deadline: p50 ([\d.]+)%\s+p99 ([\d.]+)%\s+"
                      r"p99\.9 ([\d.]+)%\s+max ([\d.]+)%$", re.M),
    "calls": re.compile(r"^python calls per block: ([\d.]+)$", re.M),
    "head": re.compile(r"^bench Poly 16: 2 s at 48000 Hz, block 64 \(deadline 1\.333 ms\), "
                       r"(\d+) voices held$", re.M),
}


@pytest.fixture(scope="module")
def bench_output() -> str:
    result = instrument("bench", "presets/poly16.toml", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_bench_prints_real_time_factor(bench_output):
    m = BENCH_RE["rtf"].search(bench_output)
    assert m, bench_output
    assert float(m.group(1)) > 1.0


def test_bench_prints_block_time_percentiles_of_the_deadline(bench_output):
    m = BENCH_RE["pct"].search(bench_output)
    assert m, bench_output
    p50, p99, p999, worst = map(float, m.groups())
    assert 0 < p50 <= p99 <= p999 <= worst
    assert p50 < 100.0  # a typical block fits its deadline


def test_bench_prints_python_calls_per_block(bench_output):
    m = BENCH_RE["calls"].search(bench_output)
    assert m, bench_output
    calls = float(m.group(1))
    # DESIGN.md idea 4: one native call per block, not per node per voice. Offline that is
    # Engine.process_block, the instance's render_out and the native call; the count is taken
    # on the steady path (not a plan swap's crossfade or the renderer's first binding).
    assert calls == 3.0, calls


def test_bench_header_names_preset_rate_block_and_voices(bench_output):
    m = BENCH_RE["head"].search(bench_output)
    assert m, bench_output
    assert m.group(1) == "16"  # poly16's polyphony


def test_bench_python_calls_do_not_grow_with_voices():
    counts = []
    for voices in (1, 16):
        result = instrument("bench", "--seconds", "1", "--voices", voices)
        assert result.returncode == 0, result.stderr
        counts.append(float(BENCH_RE["calls"].search(result.stdout).group(1)))
    assert counts[0] == counts[1], counts


def test_bench_default_preset_is_poly16():
    result = instrument("bench", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bench Poly 16: 1 s at 48000 Hz")


def test_bench_missing_preset_is_one_line(tmp_path):
    result = instrument("bench", tmp_path / "nope.toml", "--seconds", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope.toml" in lines[0]


# -- usage errors and help --------------------------------------------------------------------

def help_commands() -> list[str]:
    """The commands ``instrument --help`` lists (indented 'name   help' rows)."""
    text = instrument("--help").stdout
    return re.findall(r"^    (\w+)\s{2,}\S", text, re.M)


def test_no_arguments_prints_usage_and_exits_2():
    result = instrument()
    assert result.returncode == 2
    assert result.stderr.startswith("usage: instrument")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["--no-such-option"],
    ["render"],
    ["render", "presets/poly16.toml"],
    ["render", "presets/poly16.toml", "--midi", "x.mid", "-o", "y.wav", "--format", "mp3"],
    ["bench", "--seconds", "abc"],
    ["bench", "--rate", "fast"],
    ["check"],
    ["modules", "extra"],
    ["devices", "--what"],
])
def test_bad_arguments_print_usage_and_exit_2(args):
    result = instrument(*args)
    assert result.returncode == 2, (args, result.stderr)
    assert "usage: instrument" in result.stderr
    assert "Traceback" not in result.stderr
    # argparse ends with "instrument ...: error: <what>"
    assert result.stderr.strip().splitlines()[-1].startswith("instrument")


def test_help_lists_the_commands():
    result = instrument("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: instrument")
    assert set(CORE_COMMANDS) <= set(help_commands()), result.stdout


@pytest.mark.parametrize("command", sorted(set(CORE_COMMANDS) | {"run", "status"}))
def test_help_works_for_each_command(command):
    if command not in help_commands():
        pytest.skip(f"'{command}' is not a command yet")
    for flag in ("--help", "-h"):
        result = instrument(command, flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: instrument {command}")
        assert "Traceback" not in result.stderr


def test_help_of_commands_names_their_options():
    expected = {
        "render": ["--midi", "-o", "--rate", "--block", "--format", "float32", "--quiet"],
        "bench": ["--seconds", "--voices", "--rate", "--block"],
        "check": ["files"],
    }
    for command, words in expected.items():
        text = instrument(command, "--help").stdout
        for word in words:
            assert word in text, (command, word)
