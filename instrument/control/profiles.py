"""Controller profiles: which mapping a MIDI input port gets, by its name.

``mappings/profiles.toml`` lists, in order, a mapping file and the port-name patterns of the
controller it was written for::

    [[profile]]
    file = "korg-nanokontrol2.toml"   # a mapping in the same folder
    ports = ["nanoKONTROL2"]          # matched anywhere in the port name, any case
    velocity = { curve = "soft" }     # optional: this controller's velocity curve, over the
                                      # mapping's [velocity] (instrument.control.velocity)

A port takes the first profile one of whose patterns is in its name (ALSA says
"nanoKONTROL2:nanoKONTROL2 _CTRL 20:0", JACK through a2jmidid "a2j:nanoKONTROL2 [20] (capture):
...": both contain "nanoKONTROL2"); a port no profile matches gets the default mapping
(generic.toml). Profiles apply only with the default mapping: ``instrument run`` without
``--mapping``, i.e. a mapping file named ``generic.toml`` with a ``profiles.toml`` beside it.
A ``--mapping`` of your own is used for every port.

``instrument check mappings/profiles.toml`` validates the file: known keys, every pattern a
non-empty string, every file present and a valid mapping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from instrument.control.velocity import VelocityCurve, parse_velocity
from instrument.errors import InstrumentError
from instrument.tomlfile import parse_toml, read_text

log = logging.getLogger(__name__)

PROFILES_FILE = "profiles.toml"
DEFAULT_MAPPING = "generic.toml"
_TOP_KEYS = {"profile"}
_PROFILE_KEYS = {"file", "ports", "velocity"}


class ProfilesError(InstrumentError):
    """A profiles file that cannot be used."""


@dataclass(frozen=True)
class Profile:
    file: Path
    ports: tuple[str, ...]
    velocity: VelocityCurve | None = None  # None: the mapping's own (else linear)
    has_velocity: bool = False  # a velocity table was given (also for an explicit linear)

    def matches(self, port_name: str) -> bool:
        name = port_name.casefold()
        return any(pattern.casefold() in name for pattern in self.ports)


def is_profiles_data(data: dict) -> bool:
    """True when parsed TOML is a profiles file: a top-level ``profile`` array of tables."""
    return "profile" in data and "cc" not in data


def load_profiles(path) -> list[Profile]:
    """Read and check ``path`` (not the mappings it names); one-line ``ProfilesError``."""
    path = Path(path)
    data = parse_toml(read_text(path, ProfilesError, "profiles"), str(path), ProfilesError)
    extra = sorted(set(data) - _TOP_KEYS)
    if extra:
        raise ProfilesError(f"unknown key {extra[0]!r}", str(path),
                            "a profiles file has only [[profile]] tables")
    tables = data.get("profile")
    if not isinstance(tables, list) or not tables:
        raise ProfilesError("no [[profile]] tables", str(path),
                            'add [[profile]] with file = "x.toml" and ports = ["name"]')
    profiles = []
    for i, table in enumerate(tables):
        where = f"{path}: profile[{i + 1}]"
        if not isinstance(table, dict):
            raise ProfilesError("is not a table", where, "write it as [[profile]]")
        extra = sorted(set(table) - _PROFILE_KEYS)
        if extra:
            raise ProfilesError(f"unknown key {extra[0]!r}", where,
                                "use file, ports and velocity")
        file = table.get("file")
        if not isinstance(file, str) or not file.endswith(".toml") or "/" in file \
                or "\\" in file:
            raise ProfilesError(f"file = {file!r} is not a mapping file name", f"{where}.file",
                                'name a .toml mapping in the same folder, like "x.toml"')
        ports = table.get("ports")
        if not isinstance(ports, list) or not ports or \
                not all(isinstance(p, str) and p.strip() for p in ports):
            raise ProfilesError(f"ports = {ports!r} is not a list of names", f"{where}.ports",
                                'write ports = ["part of the port name", ...]')
        velocity = None
        if "velocity" in table:
            velocity = parse_velocity(table["velocity"], f"{where}.velocity", ProfilesError)
        profiles.append(Profile(path.parent / file, tuple(ports), velocity,
                                "velocity" in table))
    return profiles


def check_profiles(path) -> list[Profile]:
    """``load_profiles`` plus: every mapping it names exists and loads."""
    from instrument.control.mapping import load_mapping

    profiles = load_profiles(path)
    for i, profile in enumerate(profiles):
        if not profile.file.is_file():
            raise ProfilesError(f"{profile.file.name} does not exist",
                                f"{path}: profile[{i + 1}].file",
                                f"put the mapping in {profile.file.parent} or fix the name")
        load_mapping(profile.file)  # its own one-line MappingError
    return profiles


def profiles_beside(mapping_path) -> list[tuple[Profile, object]]:
    """(profile, its loaded mapping) for the default mapping (``generic.toml`` with a
    ``profiles.toml`` beside it), else []. A broken profile is logged and skipped: the port
    gets the default mapping then (``instrument check`` reports it)."""
    from instrument.control.mapping import load_mapping

    mapping_path = Path(mapping_path)
    path = mapping_path.parent / PROFILES_FILE
    if mapping_path.name != DEFAULT_MAPPING or not path.is_file():
        return []
    try:
        profiles = load_profiles(path)
    except InstrumentError as exc:
        log.warning("controller profiles not used: %s", exc)
        return []
    loaded = []
    for profile in profiles:
        try:
            loaded.append((profile, load_mapping(profile.file)))
        except InstrumentError as exc:
            log.warning("controller profile skipped: %s", exc)
    return loaded


def port_velocity(profile: Profile | None, mapping) -> VelocityCurve | None:
    """A port's velocity curve: its profile's ``velocity``, else its mapping's ``[velocity]``,
    else None (linear)."""
    if profile is not None and profile.has_velocity:
        return profile.velocity
    return getattr(mapping, "velocity", None)


def match_profile(profiles, port_name: str):
    """The first entry of ``profiles`` (``Profile`` or ``(Profile, mapping)``) whose patterns
    match ``port_name``; None when none does."""
    for entry in profiles:
        profile = entry[0] if isinstance(entry, tuple) else entry
        if profile.matches(port_name):
            return entry
    return None
