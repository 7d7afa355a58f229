"""One base class for every error a user can cause.

Each error names what is wrong, where (file, key, line) and how to fix it. The CLI prints
``str(error)`` as one line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class InstrumentError(Exception):
    """A user-caused problem: ``what`` happened at ``where``; ``fix`` says what to change."""

    def __init__(self, what: str, where: str = "", fix: str = ""):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f" ({self.fix})"
        return text


class ParamError(InstrumentError):
    """A parameter value or text that cannot be used."""


class ModuleError(InstrumentError):
    """A module that is unknown, broken or badly declared."""


class GraphError(InstrumentError):
    """A graph that cannot be compiled: cycle, unknown node or port, missing output."""


class PresetError(InstrumentError):
    """A preset file that cannot be loaded."""


class MidiFileError(InstrumentError):
    """A MIDI file that cannot be read."""
