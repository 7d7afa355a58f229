"""Reading the project's TOML files (presets, mappings) with one-line errors."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from instrument.errors import InstrumentError


MAX_FILE_BYTES = 1 << 20  # the largest shipped preset is ~3 KB; 1 MiB is far past any real one


def read_text(path, error: type[InstrumentError], kind: str) -> str:
    """The file's text; ``error`` (naming the file and the fix) when it cannot be read.

    Only regular files of at most ``MAX_FILE_BYTES`` are read: ``/dev/zero``, a FIFO or a huge
    file is refused after one ``fstat`` (never read to the end), so a bad name cannot stall or
    grow the process. Opened with O_NONBLOCK so a FIFO does not block the open itself.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(info.st_mode):
                raise error(f"not a regular file, not a {kind} file", str(path),
                            f"name a .toml {kind} file")
            if info.st_size > MAX_FILE_BYTES:
                raise error(f"too large for a {kind} file ({info.st_size} bytes, limit "
                            f"{MAX_FILE_BYTES})", str(path), f"name a .toml {kind} file")
            with os.fdopen(fd, "rb", closefd=True) as handle:
                fd = -1
                data = handle.read(MAX_FILE_BYTES + 1)
        finally:
            if fd >= 0:
                os.close(fd)
        return data.decode("utf-8")
    except FileNotFoundError:
        raise error("file not found", str(path), "check the path") from None
    except IsADirectoryError:
        raise error(f"is a directory, not a {kind} file", str(path),
                    f"name the .toml files in it, like {path}/*.toml") from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", str(path),
                    "save the file as UTF-8") from None
    except OSError as exc:  # name too long, permission denied, a loop of links ...
        raise error(f"cannot read file: {exc.strerror or exc}", str(path),
                    "check that it exists and is readable") from None


def parse_toml(text: str, source: str, error: type[InstrumentError]) -> dict:
    """The parsed table; ``error`` with the line and column of a syntax error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"not valid TOML: {exc}", source,
                    "fix the syntax at that line (strings need quotes, tables [brackets])"
                    ) from None


def with_source(exc: InstrumentError, source: str) -> InstrumentError:
    """The same error with the file named before its key."""
    return type(exc)(exc.what, f"{source}: {exc.where}" if exc.where else source, exc.fix)
