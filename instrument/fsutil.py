"""Small file-system helpers for writes that must survive a power cut."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (POSIX); a no-op where directories cannot
    be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a power cut or a kill at any moment leaves the
    old content or the new, never a mix or an empty file: a temp file beside it (a random name,
    created exclusively), write, flush, fsync, ``os.replace``, then fsync of the folder. The
    temp file is removed if anything fails; OSError is the caller's to report."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
