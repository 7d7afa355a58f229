"""Units of ``--watch``'s code restart (runtime/code_watch.py, runtime/code_check.py); the
live path is in test_state_watch.py."""

import os
import time

import pytest
from numba import njit

from instrument.runtime import code_check
from instrument.runtime.code_watch import CodeReload, CodeWatch, reexec_args
from live import REPO


def _age(path, seconds=5.0):
    """Make ``path`` look saved ``seconds`` ago (past the settle time)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_code_watch_reports_new_content_only(tmp_path):
    (tmp_path / "pkg").mkdir()
    a = tmp_path / "pkg" / "a.py"
    a.write_text("x = 1\n")
    _age(a)
    watch = CodeWatch(tmp_path, poll_s=0.0)
    assert watch.poll() == []
    os.utime(a)  # touch: new mtime, same content
    _age(a, 3.0)
    assert watch.poll() == []
    a.write_text("x = 2\n")
    assert watch.poll() == []  # just written: looked at again at the next poll
    _age(a)
    assert watch.poll() == [a]
    assert watch.poll() == []
    b = tmp_path / "pkg" / "b.py"
    b.write_text("y = 1\n")
    _age(b)
    assert watch.poll() == [b]
    b.unlink()
    assert watch.poll() == [b]
    (tmp_path / "notes.txt").write_text("not python")
    assert watch.poll() == []


def test_code_watch_polls_at_its_period(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("x = 1\n")
    _age(a)
    watch = CodeWatch(tmp_path, poll_s=10.0)
    assert watch.poll(now=100.0) == []
    a.write_text("x = 2\n")
    _age(a)
    assert watch.poll(now=105.0) == []  # not yet: once every 10 s
    assert watch.poll(now=110.0) == [a]


def test_problem_lines_name_the_place():
    try:
        compile("def broken(:\n", "/src/instrument/kernels/x.py", "exec")
    except SyntaxError as exc:
        line = code_check.problem_line(exc)
    assert line.startswith("/src/instrument/kernels/x.py:1: SyntaxError: ")

    @njit
    def typo(x):
        return x + undefined_name  # noqa: F821

    with pytest.raises(Exception) as info:
        typo(1.0)
    line = code_check.problem_line(info.value)
    assert "\n" not in line and "TypingError" in line and "undefined_name" in line


def test_module_names_of_package_files():
    assert code_check.module_name(REPO / "instrument" / "kernels" / "filters.py") == \
        "instrument.kernels.filters"
    assert code_check.module_name(REPO / "instrument" / "engine" / "__init__.py") == \
        "instrument.engine"
    assert code_check.module_name("/somewhere/else.py") is None


def test_check_passes_good_code_and_names_a_broken_preset(tmp_path):
    assert code_check.check(REPO / "presets" / "init.toml", 48000, 64) == ""
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\nname = 'x'\n[voice.nodes.o]\ntype = 'sawtooth'\n")
    problem = code_check.check(bad, 48000, 64)
    assert "bad.toml" in problem and "sawtooth" in problem


def test_reload_runs_the_check_in_a_fresh_process(tmp_path, caplog):
    """A change starts ``code_check`` as a subprocess; its verdict comes back through
    ``poll``: True for good code (restart), False and one log line for a failure."""
    a = tmp_path / "a.py"
    a.write_text("x = 1\n")
    _age(a)
    reload = CodeReload(CodeWatch(tmp_path, poll_s=0.0), 48000, 64)
    a.write_text("x = 2\n")
    _age(a)
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 1\n[voice.nodes.o]\ntype = 'sawtooth'\n")
    assert reload.poll(bad) is False  # the check started
    assert reload.check is not None
    end = time.monotonic() + 120
    while reload.check is not None and time.monotonic() < end:
        assert reload.poll(bad) is False
        time.sleep(0.1)
    assert reload.check is None and reload.pending == [a]  # failed: still to be checked
    failures = [r.getMessage() for r in caplog.records if "not applied" in r.getMessage()]
    assert len(failures) == 1 and "bad.toml" in failures[0] and "sawtooth" in failures[0]

    a.write_text("x = 3\n")
    _age(a)
    good = REPO / "presets" / "init.toml"
    verdict = reload.poll(good)
    while reload.check is not None and time.monotonic() < end:
        verdict = reload.poll(good)
        time.sleep(0.1)
    assert verdict is True and reload.pending == []


def test_restart_command_line_restores_state():
    assert reexec_args(["run", "p.toml", "--watch"])[-4:] == ["run", "p.toml", "--watch",
                                                              "--restore"]
    assert reexec_args(["run", "--restore", "--watch"]).count("--restore") == 1
