"""deploy/install.sh, always with ``--root TMP`` (files under TMP, commands only printed) or
``--dry-run``: these tests never touch the machine's own /.

The script runs from a frozen copy of the parts of the checkout it installs (``checkout``), so
files edited in the repo while the tests run cannot make a second install differ from the first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from live import REPO

SCRIPT = REPO / "deploy" / "install.sh"
SHIPPED = ("deploy/install.sh", "deploy/instrument.service", "deploy/limits.conf",
           "deploy/instrument.toml", "deploy/README.md", "setup.sh", "presets/poly16.toml")
UNIT = "etc/systemd/system/instrument.service"
LIMITS = "etc/security/limits.d/95-instrument-audio.conf"
CONFIG = "etc/instrument/instrument.toml"
GOV_UNIT = "etc/systemd/system/instrument-cpu-performance.service"
WIFI_UNIT = "etc/systemd/system/instrument-wifi-powersave.service"
WIFI_NM = "etc/NetworkManager/conf.d/99-instrument-wifi-powersave.conf"
WARM = ("INSTRUMENT_CACHE_DIR=/var/cache/instrument NUMBA_CACHE_DIR=/var/cache/instrument/numba "
        ".venv/bin/instrument check presets/*.toml")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("checkout")
    for name in SHIPPED:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    (src / ".venv" / "bin").mkdir(parents=True)  # never copied
    (src / ".git").mkdir()
    return src


SOURCE = REPO  # the checkout install() runs the script from: the frozen copy, once set


@pytest.fixture
def repo(checkout) -> Path:
    """The frozen checkout; install() runs its deploy/install.sh."""
    global SOURCE
    SOURCE = checkout
    return checkout


def install(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert root != Path("/") and root.is_dir() and len(root.parts) > 2
    result = subprocess.run(["bash", str(SOURCE / "deploy" / "install.sh"), "--root", str(root),
                             *args], cwd=SOURCE,
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(root: Path) -> dict:
    """Every file and folder under root: mode, mtime and content hash."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        seen[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, digest)
    return seen


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_dry_run_names_every_file_and_command_and_changes_nothing(tmp_path, repo):
    result = install(tmp_path, "--dry-run", "--tune")
    out = result.stdout
    for target in ("/etc/systemd/system/instrument.service",
                   "/etc/security/limits.d/95-instrument-audio.conf",
                   "/etc/instrument/instrument.toml", "/var/cache/instrument/",
                   "/var/lib/instrument/", "/" + GOV_UNIT, "/" + WIFI_UNIT):
        assert f"would write: {target}" in out or f"would create: {target}" in out, target
    assert "would copy: " in out and "-> /opt/instrument/" in out
    assert f"would run: cd /opt/instrument && env {WARM}" in out
    assert "instrument cache --prune" in out  # old code versions' numba caches
    assert ".venv/bin/instrument cache --warm presets/*.toml" in out  # the live path too
    assert "./setup.sh" in out and "useradd --system" in out and "--groups audio" in out
    assert "--home-dir /var/lib/instrument" in out and "/usr/sbin/nologin" in out
    assert "would run: systemctl enable --now instrument.service" in out
    assert list(tmp_path.iterdir()) == []


def test_install_writes_the_files_and_a_second_run_changes_nothing(tmp_path, repo):
    first = install(tmp_path)
    assert (tmp_path / UNIT).read_text() == (repo / "deploy" / "instrument.service").read_text()
    assert (tmp_path / LIMITS).read_text() == (repo / "deploy" / "limits.conf").read_text()
    assert (tmp_path / CONFIG).read_text() == (repo / "deploy" / "instrument.toml").read_text()
    for name in (UNIT, LIMITS, CONFIG):
        assert mode(tmp_path / name) == 0o644, name
    assert mode(tmp_path / "var/lib/instrument") == 0o750
    assert mode(tmp_path / "var/cache/instrument") == 0o755
    code = tmp_path / "opt" / "instrument"
    assert (code / "setup.sh").read_bytes() == (repo / "setup.sh").read_bytes()
    assert os.access(code / "deploy" / "install.sh", os.X_OK)
    assert not (code / ".venv").exists() and not (code / ".git").exists()
    assert f"would run: cd /opt/instrument && env {WARM}" in first.stdout
    assert "would run: chown -R instrument:instrument /var/cache/instrument" in first.stdout
    assert "wrote: /etc/instrument/instrument.toml" in first.stdout

    before = snapshot(tmp_path)
    second = install(tmp_path)
    assert snapshot(tmp_path) == before
    assert "wrote:" not in second.stdout and "created:" not in second.stdout, second.stdout
    assert "unchanged: /etc/systemd/system/instrument.service" in second.stdout
    assert "is up to date" in second.stdout


def test_an_edited_config_is_never_overwritten(tmp_path, repo):
    install(tmp_path)
    config = tmp_path / CONFIG
    config.write_text('preset = "/opt/instrument/presets/pad.toml"\n')
    config.chmod(0o640)
    result = install(tmp_path)
    assert config.read_text() == 'preset = "/opt/instrument/presets/pad.toml"\n'
    assert mode(config) == 0o640
    assert "kept: /etc/instrument/instrument.toml" in result.stdout


def test_a_changed_unit_is_written_again(tmp_path, repo):
    install(tmp_path)
    (tmp_path / UNIT).write_text("[Unit]\n")
    result = install(tmp_path)
    assert "wrote: /etc/systemd/system/instrument.service" in result.stdout
    assert (tmp_path / UNIT).read_text() == (repo / "deploy" / "instrument.service").read_text()
    assert "would run: systemctl try-restart instrument.service" in result.stdout


def test_tune_and_isolcpus(tmp_path, repo):
    cmdline = tmp_path / "boot" / "firmware" / "cmdline.txt"
    cmdline.parent.mkdir(parents=True)
    cmdline.write_text("console=tty1 root=PARTUUID=1234-02 isolcpus=2 rootwait\n")
    result = install(tmp_path, "--tune", "--isolcpus", "1")
    assert cmdline.read_text() == "console=tty1 root=PARTUUID=1234-02 rootwait isolcpus=1\n"
    governor = (tmp_path / GOV_UNIT).read_text()
    assert "echo performance >" in governor and "WantedBy=multi-user.target" in governor
    assert "iw dev" in (tmp_path / WIFI_UNIT).read_text()  # no NetworkManager under this root
    assert not (tmp_path / WIFI_NM).exists()
    text = (tmp_path / CONFIG).read_text()
    assert "\ncpu = 1\n" in text and "# cpu =" not in text
    assert ("would run: systemctl enable --now instrument.service "
            "instrument-cpu-performance.service instrument-wifi-powersave.service") in result.stdout
    before = snapshot(tmp_path)
    again = install(tmp_path, "--tune", "--isolcpus", "1")
    assert snapshot(tmp_path) == before and "wrote:" not in again.stdout
    # Another CPU later: the existing config gets the new cpu line, nothing else changes.
    install(tmp_path, "--tune", "--isolcpus", "3")
    assert cmdline.read_text().split() [-1] == "isolcpus=3"
    assert (tmp_path / CONFIG).read_text() == text.replace("\ncpu = 1\n", "\ncpu = 3\n")


def test_tune_with_networkmanager_and_old_boot_partition(tmp_path, repo):
    (tmp_path / "etc" / "NetworkManager").mkdir(parents=True)
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "cmdline.txt").write_text("console=tty1 rootwait\n")
    install(tmp_path, "--tune", "--isolcpus", "1")
    assert "wifi.powersave = 2" in (tmp_path / WIFI_NM).read_text()
    assert not (tmp_path / WIFI_UNIT).exists()
    assert (tmp_path / "boot" / "cmdline.txt").read_text() == "console=tty1 rootwait isolcpus=1\n"


def test_prefix_is_filled_into_unit_and_config(tmp_path, repo):
    install(tmp_path, "--prefix", "/srv/synth")
    unit = (tmp_path / UNIT).read_text()
    assert "ExecStart=/srv/synth/.venv/bin/instrument run" in unit
    assert "/opt/instrument" not in unit
    assert 'preset = "/srv/synth/presets/poly16.toml"' in (tmp_path / CONFIG).read_text()
    assert (tmp_path / "srv" / "synth" / "setup.sh").exists()


def test_uninstall_removes_unit_limits_and_tuning_and_keeps_the_rest(tmp_path, repo):
    install(tmp_path, "--tune")
    result = install(tmp_path, "--uninstall")
    for name in (UNIT, LIMITS, GOV_UNIT, WIFI_UNIT):
        assert not (tmp_path / name).exists(), name
    assert (tmp_path / CONFIG).exists() and (tmp_path / "var/lib/instrument").is_dir()
    assert "would run: systemctl disable --now instrument.service" in result.stdout
    assert "kept:" in result.stdout
    again = install(tmp_path, "--uninstall")
    assert "removed:" not in again.stdout
    purged = install(tmp_path, "--uninstall", "--purge")
    assert not (tmp_path / "etc/instrument").exists()
    assert not (tmp_path / "var/lib/instrument").exists()
    assert not (tmp_path / "var/cache/instrument").exists()
    assert (tmp_path / "opt/instrument/setup.sh").exists()  # the code stays
    assert "would run: userdel instrument" in purged.stdout


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--isolcpus", "x"], "--isolcpus takes one CPU number"),
    (["--isolcpus", "0"], "keep CPU 0"),
    (["--purge"], "--purge only goes with --uninstall"),
    (["--prefix", "relative"], "absolute path"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, repo, args, message):
    result = install(tmp_path, *args, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_help():
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--isolcpus N" in result.stdout
    assert "set -euo" not in result.stdout


def test_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
