"""MIDI in through python-rtmidi: every input port (or those matching ``--midi``), picked up
when plugged in, plus one virtual input others can connect to. Raw messages are converted to
host calls at the edge; mido/rtmidi types never reach the engine.
"""

from __future__ import annotations

import logging
import re
import time

log = logging.getLogger(__name__)

APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK"}


class MidiInputs:
    """Opens matching input ports and calls ``on_message(bytes_list, timestamp)``."""

    def __init__(self, api: str, pattern: str | None, on_message, client_name: str = "instrument"):
        import rtmidi

        self.rtmidi = rtmidi
        self.api = getattr(rtmidi, APIS[api]) if api in APIS else rtmidi.API_UNSPECIFIED
        self.pattern = re.compile(pattern, re.IGNORECASE) if pattern else None
        self.on_message = on_message
        self.client_name = client_name
        self.ports: dict[str, object] = {}
        self.virtual = None
        self.errors = 0

    def _new_input(self):
        midi_in = self.rtmidi.MidiIn(rtapi=self.api, name=self.client_name)
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        return midi_in

    def start(self) -> None:
        try:
            self.virtual = self._new_input()
            self.virtual.open_virtual_port("in")
            self.virtual.set_callback(self._callback)
        except Exception as exc:  # noqa: BLE001 - no MIDI system is not fatal
            log.warning("no MIDI virtual input (%s)", exc)
            self.virtual = None
        self.scan()

    def scan(self) -> list[str]:
        """Open newly plugged matching ports, forget vanished ones; returns names opened."""
        try:
            probe = self._new_input()
            names = probe.get_ports()
            probe.delete()
        except Exception as exc:  # noqa: BLE001
            log.debug("MIDI scan failed: %s", exc)
            return []
        opened = []
        for name in list(self.ports):
            if name not in names:
                self.ports.pop(name).close_port()
                log.info("MIDI input gone: %s", name)
        for index, name in enumerate(names):
            if name in self.ports or name.startswith(f"{self.client_name}:"):
                continue
            if self.pattern and not self.pattern.search(name):
                continue
            if "Midi Through" in name and not self.pattern:
                continue
            try:
                port = self._new_input()
                port.open_port(index, "in-" + str(len(self.ports) + 1))
                port.set_callback(self._callback)
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                log.warning("cannot open MIDI input %s: %s", name, exc)
                continue
            self.ports[name] = port
            opened.append(name)
            log.info("MIDI input: %s", name)
        return opened

    def _callback(self, event, data=None):
        message, _delta = event
        try:
            self.on_message(message, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - never kill rtmidi's thread
            self.errors += 1
            log.debug("MIDI message %s failed: %s", message, exc)

    def stop(self) -> None:
        for port in self.ports.values():
            port.close_port()
        self.ports.clear()
        if self.virtual is not None:
            self.virtual.close_port()
            self.virtual = None
