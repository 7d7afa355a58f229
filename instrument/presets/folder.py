"""The preset folder: the presets a program change counts, and the only files a preset name
from the network can reach.

``/preset/load pad`` over OSC loads ``pad.toml`` from the folder; a path, a dot file, ``..``,
control characters or an unknown name is a ``PresetError`` before any file is touched, so a
remote peer can neither read other files nor stall the host on a special file.
"""

from __future__ import annotations

import re
from pathlib import Path

from instrument.errors import PresetError
from instrument.names import nearest

# A plain file name: a letter or digit first (no dot files), no slash, at most 64 characters.
PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}")


def preset_files(folder) -> list[Path]:
    """The folder's presets sorted by file name (program change N is the N-th)."""
    return sorted(p for p in Path(folder).glob("*.toml") if p.is_file())


def resolve_preset_name(name: str, folder) -> Path:
    """The preset called ``name`` (``pad`` or ``pad.toml``) in ``folder``."""
    shown = repr(name[:40] + ("..." if len(name) > 40 else ""))
    if not PRESET_NAME.fullmatch(name) or ".." in name:
        raise PresetError(f"{shown} is not a preset name", "/preset/load",
                          "send the name of a preset in the preset folder, like 'pad'")
    stem = name[:-5] if name.endswith(".toml") else name
    presets = preset_files(folder)
    for path in presets:
        if path.stem == stem:
            return path
    raise PresetError(f"no preset named {shown} in {folder}", "/preset/load",
                      nearest(stem, [p.stem for p in presets]))
