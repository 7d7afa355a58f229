"""Learned bindings on disk, and how they are layered over the mapping in use.

MIDI learn (``instrument.control.midi_learn``) keeps what it learned in
``<state dir>/learned.toml``, an ordinary mapping file (``instrument check`` validates it, and
it can be edited by hand: ``from``/``to``/``curve``/``takeover`` added there are kept when
learn rewrites it). Every write is atomic (temp file, fsync, rename, fsync of the folder); a
learn that leaves nothing removes the file.

Layering (``layered``), what a player expects of "I taught this knob that parameter":
- a learned control wins over an older binding of the same control: a mapping control on the
  same channel and message numbers is dropped; one that listens on any channel keeps its other
  channels (the learned one is routed after it, so it wins on its own channel);
- a learned target has only its learned knob: mapping controls with the same target text
  (``filt.cutoff_hz``, ``macro#2``, ``macro:cutoff``: compared as written) are dropped;
- a learned NRPN/RPN drops mapping controls on plain CC 6/38/96..101 (they would turn
  NRPN/RPN decoding off);
- the learn button (``[learn]``) is the mapping's.
Learned bindings apply to every MIDI input (each port's profile mapping gets the same layer).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from instrument.control.mapping import (
    DEFAULT_STEPS, PN_CCS, CcControl, Mapping, load_mapping, parse_mapping,
)
from instrument.errors import InstrumentError
from instrument.fsutil import replace_atomically

LEARNED_FILE = "learned.toml"
BROKEN_FILE = "learned-broken.toml"
_HEADER = ("# Learned by MIDI learn (instrument run): layered over the mapping in use, for every\n"
           "# MIDI input. An ordinary mapping file: instrument check validates it. Edits are\n"
           "# kept, but stop the instrument first: it rewrites this file when it learns.\n")


class LearnedError(InstrumentError):
    """The learned-bindings file cannot be written."""


def control_table(c: CcControl) -> dict:
    """The ``[[cc]]`` table of a loaded control, every key it needs and no other."""
    table: dict = {"cc": c.cc} if c.source == "cc" else {c.source: [c.pn >> 7, c.pn & 127]}
    if c.channel is not None:
        table["channel"] = c.channel
    table["target"] = c.target
    if c.mode != "absolute":
        table["mode"] = c.mode
    for key, value in (("from", c.lo), ("to", c.hi)):
        if value is not None:
            table[key] = value
    if c.curve != "linear":
        table["curve"] = c.curve
    if c.takeover is not None:
        table["takeover"] = c.takeover
    if c.steps != DEFAULT_STEPS:
        table["steps"] = c.steps
    if c.relative and not c.accel:
        table["accel"] = False
    return table


def message_keys(table: dict) -> tuple[str, int | None, set[int]]:
    """(source, channel or None, message numbers) of a ``[[cc]]`` table."""
    for source in ("nrpn", "rpn"):
        if source in table:
            number = table[source]
            pn = number[0] * 128 + number[1] if isinstance(number, list) else number
            return source, table.get("channel"), {pn}
    cc = table["cc"]
    return "cc", table.get("channel"), {cc, cc + 32} if table.get("mode") == "14bit" else {cc}


def overlaps(a: dict, b: dict) -> bool:
    """True when one message could reach both tables' controls."""
    sa, ca, na = message_keys(a)
    sb, cb, nb = message_keys(b)
    return sa == sb and bool(na & nb) and (ca is None or cb is None or ca == cb)


def toml_text(tables: list[dict]) -> str:
    lines = [_HEADER, "format = 1", 'name = "Learned"', ""]
    for table in tables:
        lines.append("[[cc]]")
        lines += [f"{key} = {_toml_value(value)}" +
                  (f"  # MIDI channel {value + 1}" if key == "channel" else "")
                  for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string (\\uXXXX escapes are TOML too)


def learned_mapping(tables: list[dict], path: Path | str) -> Mapping | None:
    """The tables as a checked ``Mapping`` (None for none): through the same parser as any
    mapping file, so what is stored is what ``instrument check`` accepts."""
    if not tables:
        return None
    mapping = parse_mapping(toml_text(tables), str(path))
    name = Path(path).name
    return replace(mapping, controls=tuple(replace(c, where=f"{name} {c.where}")
                                           for c in mapping.controls))


def read_tables(path: Path) -> list[dict]:
    """The learned tables in ``path``; [] when there is none; MappingError when broken."""
    if not Path(path).is_file():
        return []
    return [control_table(c) for c in load_mapping(path).controls]


def write_tables(path: Path, tables: list[dict]) -> None:
    """Atomically replace ``path`` with ``tables`` (remove it for none)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not tables:
            path.unlink(missing_ok=True)
        else:
            replace_atomically(path, toml_text(tables).encode())
    except OSError as exc:
        raise LearnedError(f"cannot write: {exc.strerror or exc}", str(path),
                           "check that the state folder is writable (--state-dir)") from None



def layered(base: Mapping | None, learned: Mapping | None) -> Mapping | None:
    """``base`` with ``learned`` over it (the rules in this module's docstring)."""
    if learned is None:
        return base
    if base is None:
        return learned
    targets = {c.target for c in learned.controls}
    learned_tables = [control_table(c) for c in learned.controls]
    has_pn = any(c.source != "cc" for c in learned.controls)
    kept = []
    for c in base.controls:
        table = control_table(c)
        if c.target in targets:
            continue
        if has_pn and c.source == "cc" and message_keys(table)[2] & set(PN_CCS):
            continue
        if c.channel is not None and any(overlaps(table, t) for t in learned_tables):
            continue
        kept.append(c)
    return replace(base, controls=(*kept, *learned.controls))


__all__ = ["BROKEN_FILE", "LEARNED_FILE", "LearnedError", "control_table", "layered",
           "learned_mapping", "overlaps", "read_tables", "toml_text", "write_tables"]
