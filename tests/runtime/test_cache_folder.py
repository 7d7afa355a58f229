"""numba's cache folder is named by the code it compiles (instrument/cache_folder.py): a
changed shared constant can never load machine code compiled with the old one."""

import os
import subprocess
import sys

import instrument.cache_folder as cf
from live import REPO


def _tree(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    for folder in cf.COMPILED_FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "engine" / "voicing.py").write_text("E_TEMPO = 14\n")
    (tmp_path / "layout.py").write_text("ROW_ONE = 1\n")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "main.py").write_text("x = 1\n")
    return tmp_path


def test_fingerprint_follows_compiled_sources_only(tmp_path, monkeypatch):
    monkeypatch.setattr(cf, "PACKAGE_ROOT", _tree(tmp_path))
    first = cf.code_fingerprint()
    (tmp_path / "cli" / "main.py").write_text("x = 2\n")  # not compiled by numba
    (tmp_path / "probe.py").write_text("y = 1\n")
    assert cf.code_fingerprint() == first
    (tmp_path / "engine" / "voicing.py").write_text("E_TEMPO = 15\n")
    second = cf.code_fingerprint()
    assert second != first
    (tmp_path / "layout.py").write_text("ROW_ONE = 2\n")  # the one top-level compiled file
    assert cf.code_fingerprint() != second


def test_folder_is_base_then_fingerprint_and_children_keep_the_base(tmp_path, monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)  # restored for later tests
    monkeypatch.setattr(cf, "PACKAGE_ROOT", _tree(tmp_path))
    monkeypatch.delenv(cf.BASE_VARIABLE, raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "service-cache"))
    folder = cf.use_numba_cache_for_this_code()
    assert folder == tmp_path / "service-cache" / cf.code_fingerprint()
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder)
    assert cf.use_numba_cache_for_this_code() == folder  # not nested when called again
    (tmp_path / "kernels" / "osc.py").write_text("# edited\n")  # a child runs newer code
    newer = cf.use_numba_cache_for_this_code()
    assert newer.parent == folder.parent and newer != folder


def test_processes_compile_into_the_fingerprinted_folder():
    """The real package: numba's config and the renderer's cache check use that folder."""
    code = ("import instrument, os; from numba.core import config; "
            "from instrument.cache_folder import code_fingerprint; "
            "print(config.CACHE_DIR.endswith(code_fingerprint()), "
            "os.environ['NUMBA_CACHE_DIR'] == config.CACHE_DIR)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["True", "True"]


def test_prune_removes_only_other_versions(tmp_path, monkeypatch):
    monkeypatch.setattr(cf, "PACKAGE_ROOT", _tree(tmp_path / "pkg"))
    base = tmp_path / "numba"
    monkeypatch.setenv(cf.BASE_VARIABLE, str(base))
    current = cf.numba_cache_dir()
    old = base / "0123456789abcdef"
    keep = base / "notes"
    for folder in (current, old, keep):
        folder.mkdir(parents=True)
        (folder / "x.nbi").write_text("")
    assert cf.prune_other_versions() == [old]
    assert current.is_dir() and keep.is_dir() and not old.exists()


def test_cache_command_prints_the_folder():
    out = subprocess.run([sys.executable, "-m", "instrument.cli.main", "cache"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().endswith(cf.code_fingerprint())
    assert out.stderr == ""
