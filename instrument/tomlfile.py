"""Reading the project's TOML files (presets, mappings) with one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from instrument.errors import InstrumentError


def read_text(path, error: type[InstrumentError], kind: str) -> str:
    """The file's text; ``error`` (naming the file and the fix) when it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", str(path), "check the path") from None
    except IsADirectoryError:
        raise error(f"is a directory, not a {kind} file", str(path),
                    f"name the .toml files in it, like {path}/*.toml") from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", str(path),
                    "save the file as UTF-8") from None
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror}", str(path),
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
