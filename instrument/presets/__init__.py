"""Preset files: load (TOML -> Preset) and compile (Preset -> Plan), with file-named errors."""

from __future__ import annotations

from instrument.errors import InstrumentError
from instrument.presets.load import load_preset, parse_preset


def compile_file(path, sample_rate: float, block_size: int, registry=None):
    """Load and compile a preset file; every error names the file."""
    from instrument.graph.compile import compile_preset
    from instrument.modules.registry import default_registry

    registry = registry or default_registry()
    preset = load_preset(path)
    try:
        return compile_preset(preset, registry, sample_rate, block_size)
    except InstrumentError as exc:
        raise type(exc)(exc.what, f"{path}: {exc.where}" if exc.where else str(path),
                        exc.fix) from None


__all__ = ["compile_file", "load_preset", "parse_preset"]
