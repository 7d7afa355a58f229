"""Where compiled code is kept: the instrument's cache folder, and numba's cache inside it
named by the code it was compiled from.

numba's cache index checks only the source file of the function it caches (its mtime and
size), not the files its constants and callees come from: after ``layout.py`` changed
a slot number, ``voicing.apply_event``'s cached machine code, compiled with the old number,
was loaded again (seen during development; the same happens to an installed box whose code is
upgraded under a warm cache). So numba's cache lives in a folder named by a hash of every
source numba compiles from (the package's layout, engine, kernels, modules, params and
runtime) and numba's version: new code gets a new folder, and a folder is never valid for
other code.

This module imports no numba: the package's ``__init__`` calls ``use_numba_cache_for_this_code``
before anything imports numba. Old folders (tens of MB each, one per code version that ran)
are removed by ``instrument cache --prune``, which ``deploy/install.sh`` runs
after an upgrade; never by a running instrument (a restarted audio process of an older
version may still need its folder).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
COMPILED_FOLDERS = ("engine", "kernels", "modules", "params", "runtime")
COMPILED_FILES = ("layout.py",)  # top-level modules numba compiles constants from
BASE_VARIABLE = "INSTRUMENT_NUMBA_CACHE_BASE"


def cache_dir() -> Path:
    """The instrument's cache: $INSTRUMENT_CACHE_DIR, else $XDG_CACHE_HOME/instrument, else
    ~/.cache/instrument."""
    explicit = os.environ.get("INSTRUMENT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "instrument"


def code_fingerprint() -> str:
    """16 hex digits naming the sources numba compiles from, and numba's version."""
    h = hashlib.sha256()
    h.update(_numba_version_file())
    paths = [PACKAGE_ROOT / name for name in COMPILED_FILES]
    for folder in COMPILED_FOLDERS:
        paths += sorted((PACKAGE_ROOT / folder).rglob("*.py"))
    for path in paths:
        h.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        try:
            h.update(path.read_bytes())
        except OSError:
            pass
    return h.hexdigest()[:16]


def _numba_version_file() -> bytes:
    """The text of numba's ``_version.py`` (its version and revision), found without importing
    numba; importlib.metadata took 25 ms of every start, of the host and the audio process."""
    spec = importlib.util.find_spec("numba")
    if spec is None or spec.origin is None:
        return b""
    try:
        return Path(spec.origin).with_name("_version.py").read_bytes()
    except OSError:
        return b""


def numba_cache_dir() -> Path:
    """numba's cache folder for this code: the base folder (``$NUMBA_CACHE_DIR`` as the user
    or the service set it, else the instrument's cache folder's ``numba``), then the code's
    fingerprint. The base is remembered in ``$INSTRUMENT_NUMBA_CACHE_BASE`` for child processes,
    which may run newer code (``--watch``'s check, its restart)."""
    base = os.environ.get(BASE_VARIABLE) or os.environ.get("NUMBA_CACHE_DIR")
    return (Path(base) if base else cache_dir() / "numba") / code_fingerprint()


def use_numba_cache_for_this_code() -> Path:
    """Point numba's cache at ``numba_cache_dir()``, for this process and its children."""
    folder = numba_cache_dir()
    os.environ[BASE_VARIABLE] = str(folder.parent)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported first: it read the variable already
        config.CACHE_DIR = str(folder)
    return folder


_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def prune_other_versions() -> list[Path]:
    """Remove the cache folders of other code versions beside this one's; returns them."""
    current = numba_cache_dir()
    removed = []
    if not current.parent.is_dir():
        return removed
    for folder in sorted(current.parent.iterdir()):
        if folder != current and folder.is_dir() and _FINGERPRINT.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed

