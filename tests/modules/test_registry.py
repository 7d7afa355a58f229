"""Module discovery through the ``instrument.modules`` entry-point group, and validation.

Built-ins must come in through the same entry points a third-party package uses. A broken
plugin, registered through a real entry point of a real (if tiny) installed distribution, must
cost one ``skipped:`` line naming it and the reason, never the others: the plugin package is
``tests/plugins/brokenplug``, copied next to a ``brokenplug-0.1.dist-info`` in a temporary folder
that the subprocess gets on ``PYTHONPATH``, exactly as ``pip install`` would leave it.
Validation results are cached in the cache folder, keyed by the module's source.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from instrument.audio.wav import read_wav
from instrument.modules import registry as registry_module
from instrument.modules.base import Module
from instrument.modules.registry import GROUP, _exercise, check_module, discover

import midi_fixtures
from live import REPO, TESTS

PLUGIN_SOURCE = TESTS / "plugins" / "brokenplug"

# entry name -> (object reference, words the one-line reason must contain: the first names the
# kind of failure, the rest the detail a plugin author needs to fix it)
BROKEN = {
    "plug_missing_dependency": ("brokenplug.missing_dependency:NeverReached",
                                ["import failed", "ModuleNotFoundError",
                                 "instrument_plugin_dependency_that_is_not_installed"]),
    "plug_missing_attr": ("brokenplug:DoesNotExist",
                          ["import failed", "AttributeError", "DoesNotExist"]),
    "plug_not_a_module": ("brokenplug:NotAModule", ["not a subclass", "Module"]),
    "plug_bad_default": ("brokenplug:BadDefault", ["depth", "default 5", "outside 0..1"]),
    "plug_duplicate_ports": ("brokenplug:DuplicatePorts", ["names used twice", "in"]),
    "plug_raises": ("brokenplug:Raises", ["kernel failed", "ValueError", "lookup table missing"]),
    "plug_no_compile": ("brokenplug:NoCompile",
                        ["kernel failed", "TypingError", "undefined_helper_function"]),
    "plug_nan": ("brokenplug:NanOutput", ["not finite", "default parameters"]),
    "plug_allocates": ("brokenplug:Allocates", ["allocates"]),
}
GOOD = {"plug_invert": "brokenplug:Invert"}
# Each installed alone, by its own test, so that one failure does not hide the others.
NOISY_IMPORT = {"plug_noisy_import": "brokenplug.noisy_import:Anything"}
EXITS_ON_IMPORT = {"plug_exits_on_import": "brokenplug.exits_on_import:Anything"}
SAW_CLASH = {"aaa_fake_saw": "brokenplug:TakesSaw"}

TIMEOUT_S = 600  # the first render with a new module set compiles the fused renderer (~30 s)


# -- helpers -----------------------------------------------------------------------------------

def install_plugin(site: Path, entries: dict[str, str]) -> Path:
    """Lay out ``brokenplug`` in ``site`` as an installed distribution with these entry points."""
    shutil.copytree(PLUGIN_SOURCE, site / "brokenplug",
                    ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "brokenplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.1\n")
    lines = ["[instrument.modules]"] + [f"{name} = {ref}" for name, ref in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def instrument_command() -> list[str]:
    script = Path(sys.executable).with_name("instrument")
    assert script.exists(), f"console script missing at {script}; pip install -e ."
    return [str(script)]


def run_instrument(args, site: Path | None = None, cache_dir: Path | None = None,
                   cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if cache_dir is not None:
        env["INSTRUMENT_CACHE_DIR"] = str(cache_dir)
    return subprocess.run(instrument_command() + [str(a) for a in args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def entry_point(name: str, ref: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=ref, group=GROUP)


def pyproject_entry_points() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data["project"]["entry-points"][GROUP]


def builtin_entry_points() -> list:
    return [ep for ep in importlib.metadata.entry_points(group=GROUP)
            if ep.dist is not None and ep.dist.name == "instrument"]


def module_header_names(listing: str) -> list[str]:
    """Type names of the modules ``instrument modules`` lists (lines like 'saw (voice): ...')."""
    return [line.split(" (", 1)[0] for line in listing.splitlines()
            if line and not line.startswith((" ", "skipped:"))]


def skipped_lines(listing: str) -> list[str]:
    return [line for line in listing.splitlines() if line.startswith("skipped:")]


# -- built-ins -----------------------------------------------------------------------------

def test_installed_entry_points_match_pyproject():
    """The editable install's metadata carries exactly pyproject's built-in entry points."""
    installed = {ep.name: ep.value for ep in builtin_entry_points()}
    assert installed == pyproject_entry_points()


def test_builtins_are_discovered_through_the_entry_point_group():
    declared = pyproject_entry_points()
    registry = discover()
    assert registry.skipped == []
    assert set(registry.modules) == set(declared)
    for name, ref in declared.items():
        cls = registry.modules[name]
        module_name, attr = ref.split(":")
        assert f"{cls.__module__}:{cls.__qualname__}" == f"{module_name}:{attr}"
        assert cls.type_name == name


def test_discover_uses_only_the_entry_points_it_is_given():
    """No hidden list of built-ins: with two entry points, two modules."""
    registry = discover([entry_point("saw", "instrument.modules.osc_saw:Saw"),
                         entry_point("vca", "instrument.modules.amp:Vca")])
    assert sorted(registry.modules) == ["saw", "vca"]
    assert registry.skipped == []


def test_every_builtin_passes_the_validation_plugins_get():
    """Run here, not on the box: discover() checks only a built-in's declarations (its
    kernel compiled alone for this was half of a cold start)."""
    eps = builtin_entry_points()
    assert len(eps) == len(pyproject_entry_points())
    for ep in eps:
        cls = ep.load()
        assert check_module(cls, run_kernel=False) == "", ep.name
        assert _exercise(cls) == "", ep.name


def test_discover_does_not_run_a_builtins_kernel(monkeypatch):
    """(A plugin's kernel still runs: the plug_raises, plug_no_compile, plug_nan and
    plug_allocates cases below are found that way, through an installed distribution.)"""
    import instrument.modules.registry as registry

    ran = []
    monkeypatch.setattr(registry, "_exercise", lambda cls: ran.append(cls.type_name) or "")
    monkeypatch.setattr(registry, "_load_validated", lambda: {})
    found = discover([entry_point("vca", "instrument.modules.amp:Vca")])
    assert "vca" in found.modules and ran == []
    assert not registry._is_builtin(entry_point("x", "myplug.mod:X"))


# -- broken plugins, through a real installed distribution ---------------------------------

@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("site"),
                          {**GOOD, **{k: v[0] for k, v in BROKEN.items()}})


@pytest.fixture(scope="module")
def listing(plugin_site) -> subprocess.CompletedProcess:
    """``instrument modules`` with the broken distribution installed."""
    return run_instrument(["modules"], site=plugin_site)


def test_importlib_sees_the_test_distribution(plugin_site):
    (dist,) = importlib.metadata.distributions(path=[str(plugin_site)])
    assert dist.metadata["Name"] == "brokenplug"
    assert {ep.name for ep in dist.entry_points.select(group=GROUP)} == set(GOOD) | set(BROKEN)


def test_modules_exits_0_with_broken_plugins_installed(listing):
    assert listing.returncode == 0, listing.stderr
    assert "Traceback" not in listing.stderr + listing.stdout


def test_builtins_still_listed_with_broken_plugins_installed(listing):
    names = module_header_names(listing.stdout)
    for name in pyproject_entry_points():
        assert name in names, f"built-in {name} missing:\n{listing.stdout}"


def test_good_third_party_module_is_listed_with_its_params(listing):
    assert "plug_invert" in module_header_names(listing.stdout)
    assert "plug_invert (any): Polarity inverter" in listing.stdout
    trim = [line for line in listing.stdout.splitlines() if line.strip().startswith("trim ")]
    assert len(trim) == 1 and "0.00 .. 2.00" in trim[0] and "default 1.00" in trim[0]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_is_skipped_in_one_line_with_its_reason(listing, name):
    ref, words = BROKEN[name]
    lines = [line for line in skipped_lines(listing.stdout) if f"'{name}'" in line]
    assert len(lines) == 1, f"expected one skipped line for {name}:\n{listing.stdout}"
    line = lines[0]
    assert ref in line
    for word in words:
        assert word in line, f"{word!r} missing from: {line}"
    assert name not in module_header_names(listing.stdout)


def test_one_skipped_line_per_broken_plugin_and_nothing_else(listing):
    assert len(skipped_lines(listing.stdout)) == len(BROKEN), listing.stdout
    for line in listing.stdout.splitlines():
        assert (line.startswith(("skipped:", "    ")) or line.split(" (", 1)[0]
                in module_header_names(listing.stdout)), f"stray line: {line!r}"


def test_multi_line_import_error_is_still_one_line(tmp_path):
    """Import errors of native libraries often run over many lines (numpy's does); the skip
    report (stdout listing and stderr log) must still be one line per plugin."""
    site = install_plugin(tmp_path / "site", {**GOOD, **NOISY_IMPORT})
    result = run_instrument(["modules"], site=site)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "plug_noisy_import" in line]
    assert len(lines) == 1 and "libfancydsp.so.3" in lines[0]
    assert "IMPORTANT" not in result.stdout, (
        f"the rest of the multi-line message leaked into the listing:\n{result.stdout}")
    assert "IMPORTANT" not in result.stderr, result.stderr


def test_plugin_that_exits_on_import_is_skipped(tmp_path):
    """``sys.exit()`` at import raises SystemExit, which is not an Exception: it must still cost
    only that plugin, not the whole program (here ``instrument modules``; at boot, ``run``)."""
    site = install_plugin(tmp_path / "site", {**GOOD, **EXITS_ON_IMPORT})
    result = run_instrument(["modules"], site=site)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "plug_invert" in module_header_names(result.stdout)
    lines = [s for s in skipped_lines(result.stdout) if "plug_exits_on_import" in s]
    assert len(lines) == 1 and "licence key not found" in lines[0], result.stdout


def test_plugin_cannot_take_a_builtin_type_name(tmp_path):
    """A plugin claiming type 'saw' must not replace the built-in saw, whatever its entry point
    is called (discover() goes through entry points in name order: 'aaa...' comes first)."""
    site = install_plugin(tmp_path / "site", SAW_CLASH)
    result = run_instrument(["modules"], site=site)
    assert result.returncode == 0, result.stderr
    saw = [line for line in result.stdout.splitlines() if line.startswith("saw (")]
    assert saw == ["saw (voice): Rising sawtooth, minBLEP band-limited (aliases below -80 dB); "
                   "sync output."], result.stdout
    clash = [line for line in skipped_lines(result.stdout) if "aaa_fake_saw" in line]
    assert len(clash) == 1 and "'saw'" in clash[0], result.stdout


# -- the same cases in-process --------------------------------------------------------------

@pytest.fixture(scope="module")
def brokenplug(plugin_site):
    sys.path.insert(0, str(plugin_site))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module("brokenplug")
    finally:
        sys.path.remove(str(plugin_site))


@pytest.mark.parametrize("name", sorted(n for n in BROKEN if not BROKEN[n][0].startswith(
    "brokenplug.missing") and "DoesNotExist" not in BROKEN[n][0]))
def test_check_module_one_liner(brokenplug, name):
    ref, words = BROKEN[name]
    cls = getattr(brokenplug, ref.split(":")[1])
    problem = check_module(cls)
    assert problem and "\n" not in problem, repr(problem)
    for word in words:
        assert word in problem, f"{word!r} missing from {problem!r}"


def test_check_module_accepts_the_good_plugin(brokenplug):
    assert check_module(brokenplug.Invert) == ""
    assert check_module(brokenplug.Invert, run_kernel=False) == ""


def test_check_module_rejects_things_that_are_not_classes():
    for thing in (None, 42, "saw", len, Module()):
        assert check_module(thing) == "not a subclass of instrument.modules.base.Module"


def test_declaration_problems_are_found_without_running_the_kernel(brokenplug):
    assert "outside 0..1" in check_module(brokenplug.BadDefault, run_kernel=False)
    assert "names used twice" in check_module(brokenplug.DuplicatePorts, run_kernel=False)
    # Kernel problems need the kernel run: without it they pass.
    assert check_module(brokenplug.NanOutput, run_kernel=False) == ""


def test_discover_in_process_skips_each_broken_entry_point(plugin_site, brokenplug):
    eps = [entry_point(n, ref) for n, (ref, _) in BROKEN.items()]
    eps += [entry_point(n, ref) for n, ref in GOOD.items()]
    eps += builtin_entry_points()
    registry = discover(eps)
    assert set(registry.modules) == set(pyproject_entry_points()) | {"plug_invert"}
    assert registry.modules["plug_invert"] is brokenplug.Invert
    assert len(registry.skipped) == len(BROKEN)
    for name, (ref, words) in BROKEN.items():
        lines = [s for s in registry.skipped if s.startswith(f"module '{name}' ({ref}) skipped: ")]
        assert len(lines) == 1, registry.skipped
        assert "\n" not in lines[0]
        assert words[0] in lines[0], lines[0]  # details: test_check_module_one_liner


def test_discover_with_validate_false_skips_only_declaration_problems(brokenplug):
    eps = [entry_point(n, ref) for n, (ref, _) in BROKEN.items()]
    registry = discover(eps, validate=False)
    skipped = {s.split("'")[1] for s in registry.skipped}
    assert skipped == {"plug_missing_dependency", "plug_missing_attr", "plug_not_a_module",
                       "plug_bad_default", "plug_duplicate_ports"}


def test_plugin_type_name_clash_in_process(brokenplug):
    registry = discover(builtin_entry_points()
                        + [entry_point(n, r) for n, r in SAW_CLASH.items()])
    from instrument.modules.osc_saw import Saw

    assert registry.modules["saw"] is Saw, "a plugin replaced the built-in saw"
    assert any("aaa_fake_saw" in s and "'saw'" in s for s in registry.skipped), registry.skipped


# -- a good third-party module in a rendered preset ------------------------------------------

PLUGIN_PRESET = """\
format = 1
name = "{name}"

[voice]
polyphony = 4
connect = [
  "osc.out -> filt.in",
  {chain}
  "env.out -> amp.cv",
  "amp.out -> out.in",
]

[voice.nodes.osc]
type = "saw"
level = 0.5

[voice.nodes.filt]
type = "svf_lowpass"
cutoff_hz = 3000

[voice.nodes.env]
type = "adsr"
release_ms = 100
{extra}
[voice.nodes.amp]
type = "vca"
gain = 0.5

[voice.nodes.out]
type = "output"
"""


def test_preset_with_third_party_module_renders(plugin_site, tmp_path):
    """``plug_invert`` (trim 1) between filter and amp: the render is the exact negation of the
    same preset without it, so the plugin's kernel really ran inside the fused renderer."""
    midi = midi_fixtures.write_type0(tmp_path)
    with_plugin = tmp_path / "with_plugin.toml"
    with_plugin.write_text(PLUGIN_PRESET.format(
        name="With plugin", chain='"filt.out -> inv.in",\n  "inv.out -> amp.in",',
        extra='\n[voice.nodes.inv]\ntype = "plug_invert"\ntrim = 1.0\n'))
    plain = tmp_path / "plain.toml"
    plain.write_text(PLUGIN_PRESET.format(name="Plain", chain='"filt.out -> amp.in",', extra=""))
    outs = {}
    for preset in (with_plugin, plain):
        out = tmp_path / f"{preset.stem}.wav"
        result = run_instrument(["render", preset, "--midi", midi, "-o", out, "--quiet"],
                                site=plugin_site)
        assert result.returncode == 0, result.stderr
        outs[preset.stem], rate = read_wav(out)
        assert rate == 48000
    reference = outs["plain"]
    assert np.abs(reference).max() > 0.05
    assert outs["with_plugin"].shape == reference.shape
    np.testing.assert_array_equal(outs["with_plugin"], -reference)


def test_preset_using_a_skipped_module_names_the_reason(plugin_site, tmp_path):
    preset = tmp_path / "uses_nan.toml"
    preset.write_text(PLUGIN_PRESET.format(
        name="Uses NaN", chain='"filt.out -> bad.in",\n  "bad.out -> amp.in",',
        extra='\n[voice.nodes.bad]\ntype = "plug_nan"\n'))
    result = run_instrument(["check", preset], site=plugin_site)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "plug_nan" in errors[0] and "skipped" in errors[0] and "not finite" in errors[0]
    assert "Traceback" not in result.stderr


# -- validation cache -------------------------------------------------------------------------

CACHE_PLUGIN = '''\
"""A one-module plugin for the validation-cache test."""
from numba import njit

from instrument.modules.base import Module, Port


@njit(cache=True, error_model="numpy")
def echo_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    x = bufs[io[0]]
    out = bufs[io[1]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = x[i, v] * {factor}


class Echo(Module):
    type_name = "{type_name}"
    label = "Echo"
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = echo_kernel
'''


@pytest.fixture
def cache_plugin(tmp_path, monkeypatch):
    """A fresh importable module ``cacheplug_<n>`` in tmp_path, a private cache folder, and a
    counter of kernel validations (``_exercise`` calls)."""
    monkeypatch.setenv("INSTRUMENT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"cacheplug_{os.getpid()}_{tmp_path.name.replace('-', '_')}"
    path = tmp_path / f"{name}.py"
    calls = []
    real = registry_module._exercise

    def counting(cls, *args, **kwargs):
        calls.append(cls.type_name)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(registry_module, "_exercise", counting)

    def write(factor: str):
        path.write_text(CACHE_PLUGIN.format(factor=factor, type_name=name))
        sys.modules.pop(name, None)
        importlib.invalidate_caches()

    write("0.5")
    yield name, path, write, calls, tmp_path / "cache" / "validated.json"
    sys.modules.pop(name, None)


def test_validation_result_is_cached(cache_plugin):
    name, path, write, calls, cache_file = cache_plugin
    eps = [entry_point(name, f"{name}:Echo")]
    t0 = time.perf_counter()
    first = discover(eps)
    cold = time.perf_counter() - t0
    assert name in first.modules and calls == [name]
    assert cache_file.exists() and name in cache_file.read_text()
    t0 = time.perf_counter()
    second = discover(eps)
    warm = time.perf_counter() - t0
    assert name in second.modules
    assert calls == [name], "the kernel was validated again although its source is unchanged"
    print(f"\ndiscover: cold {cold * 1e3:.1f} ms, cached {warm * 1e3:.1f} ms")


def test_validation_cache_is_invalidated_when_the_source_changes(cache_plugin):
    name, path, write, calls, cache_file = cache_plugin
    eps = [entry_point(name, f"{name}:Echo")]
    assert name in discover(eps).modules
    assert name in discover(eps).modules
    assert calls == [name]
    # A change that breaks it: the output turns NaN. The cached "valid" must not hide that.
    write("(0.0 / 0.0)")
    registry = discover(eps)
    assert calls == [name, name]
    assert name not in registry.modules
    assert any("not finite" in s for s in registry.skipped), registry.skipped
    # Fixed again: validated again, and accepted.
    write("0.25")
    assert name in discover(eps).modules
    assert calls == [name, name, name]


def test_failed_validation_is_not_cached(cache_plugin):
    name, path, write, calls, cache_file = cache_plugin
    write("(0.0 / 0.0)")
    eps = [entry_point(name, f"{name}:Echo")]
    assert name not in discover(eps).modules
    assert name not in discover(eps).modules
    assert calls == [name, name]
    assert not cache_file.exists() or name not in cache_file.read_text()


def test_corrupt_cache_file_is_ignored(cache_plugin):
    name, path, write, calls, cache_file = cache_plugin
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text("{not json")
    eps = [entry_point(name, f"{name}:Echo")]
    assert name in discover(eps).modules
    assert calls == [name]
    assert name in discover(eps).modules
    assert calls == [name]


def test_validation_cache_between_processes(plugin_site, tmp_path):
    """Two ``instrument modules`` runs with a fresh cache folder: the first writes the cache
    file; the second lists the same modules."""
    cache = tmp_path / "cache"
    first = run_instrument(["modules"], site=plugin_site, cache_dir=cache)
    assert first.returncode == 0, first.stderr
    data = (cache / "validated.json").read_text()
    assert '"plug_invert"' in data
    for name in list(BROKEN) + list(pyproject_entry_points()):  # (built-ins: not run here)
        assert f'"{name}"' not in data
    second = run_instrument(["modules"], site=plugin_site, cache_dir=cache)
    assert second.returncode == 0
    assert second.stdout == first.stdout


def test_editing_an_installed_plugin_revalidates_it(tmp_path):
    """End to end: a plugin that validated fine is edited to output NaN; the next start must
    skip it instead of trusting the cached result."""
    site = install_plugin(tmp_path / "site", GOOD)
    cache = tmp_path / "cache"
    assert "plug_invert (any)" in run_instrument(["modules"], site=site, cache_dir=cache).stdout
    source = site / "brokenplug" / "__init__.py"
    text = source.read_text()
    broken = text.replace("out[i, v] = -x[i, v] * trim[i, v]",
                          "out[i, v] = -x[i, v] * trim[i, v] / (trim[i, v] - 1.0)")
    assert broken != text
    source.write_text(broken)
    result = run_instrument(["modules"], site=site, cache_dir=cache)
    assert result.returncode == 0
    assert "plug_invert" not in module_header_names(result.stdout)
    skipped = [s for s in skipped_lines(result.stdout) if "plug_invert" in s]
    assert len(skipped) == 1 and "not finite" in skipped[0], result.stdout



HELPER_PLUGIN = {
    "__init__.py": """\
from helperplug.dsp import shaper_kernel
from instrument.modules.base import Module, Port


class Shaper(Module):
    type_name = "helper_shaper"
    label = "Shaper"
    inputs = (Port("in"),)
    outputs = ("out",)
    kernel = shaper_kernel
""",
    "dsp.py": """\
from numba import njit

from helperplug.curve import shape


@njit(error_model="numpy")  # no on-disk cache: numba's would not see curve.py change either
def shaper_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    x = bufs[io[0]]
    out = bufs[io[1]]
    for i in range(s0, s1):
        for v in range(nl):
            out[i, v] = shape(x[i, v])
""",
    "curve.py": """\
from numba import njit


@njit(error_model="numpy")
def shape(x):
    return x / (1.0 + abs(x))
""",
}


def test_editing_a_helper_module_of_a_kernel_revalidates_it(tmp_path):
    """Kernels call helpers in other modules of their package. A helper edited to give NaN
    must be caught at the next start, although the class's and the kernel's own files are
    unchanged."""
    site = tmp_path / "site"
    package = site / "helperplug"
    package.mkdir(parents=True)
    for name, text in HELPER_PLUGIN.items():
        (package / name).write_text(text)
    info = site / "helperplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: helperplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[instrument.modules]\n"
                                           "helper_shaper = helperplug:Shaper\n")
    cache = tmp_path / "cache"
    first = run_instrument(["modules"], site=site, cache_dir=cache)
    assert "helper_shaper" in module_header_names(first.stdout), first.stdout + first.stderr
    (package / "curve.py").write_text(
        HELPER_PLUGIN["curve.py"].replace("x / (1.0 + abs(x))", "x / (x - x)"))
    result = run_instrument(["modules"], site=site, cache_dir=cache)
    assert result.returncode == 0
    assert "helper_shaper" not in module_header_names(result.stdout), (
        "a stale cached validation let a kernel that now outputs NaN through")
    assert any("helper_shaper" in s and "not finite" in s for s in skipped_lines(result.stdout))
