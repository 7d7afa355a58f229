"""``instrument check``: validate files without playing them."""

from __future__ import annotations

import tomllib
from instrument.errors import InstrumentError
from instrument.settings import DEFAULTS

CHECK_RATE = DEFAULTS.sample_rate_hz
CHECK_BLOCK = DEFAULTS.block_frames


def check_file(path) -> str:
    """'' when the preset at ``path`` loads and compiles (or the controller mapping loads),
    else the one-line problem.

    A file whose TOML has a top-level ``cc`` key (``[[cc]]`` tables) is a mapping; anything
    else is a preset, including a file that cannot be read or parsed: the preset loader
    reports that with the same one line a mapping would get.
    """
    from instrument.presets import compile_file

    try:
        if _is_profiles(path):  # mappings/profiles.toml: controller profiles by port name
            from instrument.control.profiles import check_profiles

            check_profiles(path)
        elif _is_mapping(path):
            from instrument.control.mapping import load_mapping

            load_mapping(path)
        else:
            compile_file(path, CHECK_RATE, CHECK_BLOCK)
    except InstrumentError as exc:
        return str(exc)
    return ""


def _is_mapping(path) -> bool:
    from instrument.control.mapping import is_mapping_data

    return is_mapping_data(_toml_or_empty(path))


def _is_profiles(path) -> bool:
    from instrument.control.profiles import is_profiles_data

    return is_profiles_data(_toml_or_empty(path))


def _toml_or_empty(path) -> dict:
    from instrument.tomlfile import read_text

    try:
        return tomllib.loads(read_text(path, InstrumentError, "preset"))
    except (InstrumentError, tomllib.TOMLDecodeError):
        return {}
