"""``instrument check``: validate files without playing them."""

from __future__ import annotations

from instrument.errors import InstrumentError

CHECK_RATE = 48000
CHECK_BLOCK = 64


def check_file(path) -> str:
    """'' when the preset at ``path`` loads and compiles, else the one-line problem."""
    from instrument.presets import compile_file

    try:
        compile_file(path, CHECK_RATE, CHECK_BLOCK)
    except InstrumentError as exc:
        return str(exc)
    return ""
