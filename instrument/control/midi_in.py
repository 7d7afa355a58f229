"""MIDI in through python-rtmidi: every input port (or those matching ``--midi``), picked up
when plugged in, plus one virtual input others can connect to. Raw messages are converted to
host calls at the edge; mido/rtmidi types never reach the engine.

Messages are polled (every POLL_S) from rtmidi's queue by a host thread, never delivered by a
callback: with the JACK API, rtmidi runs its callback inside JACK's real-time process thread,
and a Python callback there waits for the host's GIL, which made the whole JACK graph xrun
under an OSC flood (measured: 89 xruns in 10 s with the callback, see benchmarks/live_jack.py).

JACK and SysEx: rtmidi's JACK input takes a SysEx event without its end byte (F7), which a
broken sender or cable produces, to be continued by the next events, and holds every event back
until one ends in F7. With SysEx ignored, the held-back events were dropped when that came: the
note-offs among them were lost and their notes stuck. So on JACK SysEx is not ignored: the
held-back events arrive glued to the SysEx, late but whole, and ``midi_messages`` applies the
note-offs, pedal-ups and all-notes-off among them. Until an event ends in F7 the port stays
deaf; that is rtmidi's (a JACK MIDI event is a complete message, so its parser could end the
SysEx on the next event's status byte). A lone F7 from us every few ms would end it, but needs
an extra JACK client per input, and those made the dummy-driver JACK graph of the integration
tests stall for seconds (client "not finished") when created while the audio process started.
ALSA does not need any of this: its sequencer parses the byte stream itself (a status byte ends
a SysEx) and rtmidi drops ignored SysEx events before they can hold anything back.

Ports: every message goes to ``on_message(bytes_list, timestamp, port_name)`` (the virtual input
is named ``<client>:in``, as others see it), and ``on_port(name, opened)`` hears when the scan
opens a port or finds it gone (unplugged): the host releases what was held from it. A port that
comes back under the same name is opened again by the next scan. The scan does not open a port
that is already connected to our virtual input (on JACK, see ``_patched_to_virtual``): its
messages would arrive twice.

Times: a message's timestamp is when the poll took it (``time.monotonic()``), except for
real-time bytes (MIDI clock, start, stop...), which get the API's own time (``ApiTime``): the
poll adds up to a poll period and any wait for the GIL (milliseconds while the host compiles a
preset), the API's time only the JACK period (or nothing, on ALSA), and the tempo is measured
from those times (``midi_clock``).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time

log = logging.getLogger(__name__)

APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK"}
POLL_S = 0.0005
QUEUE_MESSAGES = 4096
REALTIME = 0xF8


class ApiTime:
    """The MIDI API's timestamps of one input on the host clock.

    rtmidi gives each message the seconds since the previous one of the same input (on JACK:
    ``jack_get_time`` at the process cycle that took it; on ALSA: the sequencer queue's time).
    Their running sum is exact; it is placed on ``time.monotonic()`` with the smallest delay
    seen between the two (a message cannot arrive after it was polled), so a late poll does not
    move it. A sum that falls more than ``RESYNC_S`` behind the poll (the clocks drifted, or the
    input was reopened) is placed again.
    """

    RESYNC_S = 0.5

    def __init__(self):
        self.sum_s = 0.0
        self.offset_s: float | None = None

    def time(self, delta_s: float, now: float) -> float:
        self.sum_s += delta_s if delta_s > 0.0 else 0.0
        t = self.sum_s + self.offset_s if self.offset_s is not None else now + 1.0
        if t > now or now - t > self.RESYNC_S:
            self.offset_s = now - self.sum_s
            t = now
        return t


class MidiInputs:
    """Opens matching input ports and calls ``on_message(bytes_list, timestamp, port_name)``;
    ``on_port(name, opened)`` (optional) when a port is opened or gone."""

    def __init__(self, api: str, pattern: str | None, on_message, client_name: str = "instrument",
                 on_port=None):
        import rtmidi

        self.rtmidi = rtmidi
        self.api = getattr(rtmidi, APIS[api]) if api in APIS else rtmidi.API_UNSPECIFIED
        self.pattern = re.compile(pattern, re.IGNORECASE) if pattern else None
        self.on_message = on_message
        self.on_port = on_port
        self.client_name = client_name
        self.virtual_name = f"{client_name}:in"  # on JACK: the name JACK gave it (start)
        self.jack = self.api == rtmidi.API_UNIX_JACK
        self.jack_lsp = shutil.which("jack_lsp") if self.jack else None
        self.ports: dict[str, object] = {}
        self.connections: dict[str, set[str]] = {}  # JACK, from the last scan (midi_feedback)
        self.api_times: dict[str, ApiTime] = {}  # per input, by name
        self.virtual = None
        self.errors = 0
        self.lock = threading.Lock()
        self.available = True
        self.running = False
        self.thread = threading.Thread(target=self._poll, name="midi-in", daemon=True)

    def _new_input(self):
        midi_in = self.rtmidi.MidiIn(rtapi=self.api, name=self.client_name,
                                     queue_size_limit=QUEUE_MESSAGES)
        # JACK: SysEx delivered, so events held back after an unterminated one are not lost;
        # timing (MIDI clock) delivered: it sets the tempo
        midi_in.ignore_types(sysex=self.api != self.rtmidi.API_UNIX_JACK, timing=False,
                             active_sense=True)
        return midi_in

    def start(self) -> None:
        try:
            before = self._our_jack_inputs()
            self.virtual = self._new_input()
            self.virtual.open_virtual_port("in")
            ours = self._our_jack_inputs() - before  # JACK renames a 2nd "instrument" client
            if len(ours) == 1:
                self.virtual_name = ours.pop()
        except Exception as exc:  # noqa: BLE001 - no MIDI system is not fatal
            log.warning("no MIDI: %s (is the %s MIDI system there? --no-midi skips MIDI; "
                        "--midi-api jack uses JACK)", exc, "ALSA sequencer"
                        if self.api == self.rtmidi.API_LINUX_ALSA else "selected")
            self.virtual = None
            self.available = False  # nothing to scan: every attempt would print ALSA errors
            return
        self.scan()
        self.running = True
        self.thread.start()

    def _poll(self) -> None:
        while self.running:
            with self.lock:  # held while delivering: a port closed by scan() is quiet after
                inputs = list(self.ports.items())
                if self.virtual is not None:
                    inputs.append((self.virtual_name, self.virtual))
                for name, midi_in in inputs:
                    while True:
                        item = midi_in.get_message()
                        if item is None:
                            break
                        self._deliver(item, name)
            time.sleep(POLL_S)

    def scan(self) -> list[str]:
        """Open newly plugged matching ports, forget vanished ones; returns names opened."""
        if not self.available:
            return []
        try:  # through the virtual input's own client: a new one each scan is a JACK client
            # opened, activated and closed every second (a graph change each time)
            with self.lock:  # (the poll thread reads from it)
                names = self.virtual.get_ports() if self.virtual is not None else []
        except Exception as exc:  # noqa: BLE001
            log.debug("MIDI scan failed: %s", exc)
            return []
        opened = []
        connections = self.connections = self._jack_connections()
        patched = connections.get(self.virtual_name, set())
        for name in list(self.ports):
            why = None
            if name not in names:
                why = "gone"
            elif name in patched:
                why = f"connected to {self.virtual_name} (its messages come from there)"
            elif connections and not any(peer.startswith(self.client_name)
                                         for peer in connections.get(name, ())):
                why = "gone and back (reconnecting)"  # within a scan period: our link is lost
            if why is None:
                continue
            with self.lock:
                self.ports.pop(name).close_port()
                self.api_times.pop(name, None)
            log.info("MIDI input %s: %s", why, name)
            self._port_event(name, False)
        for index, name in enumerate(names):
            if name in self.ports or name.startswith((f"{self.client_name}:",
                                                      f"{self.client_name}-feedback")):
                continue  # our own ports: the virtual input, the feedback output
            if name in patched:  # already sends to our virtual input: opening it doubles it
                continue
            if self.pattern and not self.pattern.search(name):
                continue
            if "Midi Through" in name and not self.pattern:
                continue
            try:
                port = self._new_input()
                port.open_port(index, "in-" + str(len(self.ports) + 1))
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                log.warning("cannot open MIDI input %s: %s", name, exc)
                continue
            with self.lock:
                self.ports[name] = port
            opened.append(name)
            log.info("MIDI input: %s", name)
            self._port_event(name, True)
        return opened

    def _port_event(self, name: str, opened: bool) -> None:
        if self.on_port is None:
            return
        try:
            self.on_port(name, opened)
        except Exception as exc:  # noqa: BLE001 - the scan goes on
            self.errors += 1
            log.warning("MIDI input %s: %s", name, exc)

    def _jack_connections(self) -> dict[str, set[str]]:
        """Every JACK port and the ports connected to it, from ``jack_lsp -c`` ({} on ALSA, or
        without jack_lsp). python-rtmidi cannot list connections, and the ``jack`` Python
        package is not a dependency; jack_lsp comes with JACK (jackd2's example clients), and
        one run per scan (once a second, off the audio path) costs a few ms.

        On ALSA nothing is checked: rtmidi has no call for a port's subscribers either (they are
        in /proc/asound/seq/clients, as "Connected From", in a format the kernel does not
        promise), so a sender patched to instrument:in by hand is opened by the scan too, and
        its messages come twice; use --midi PATTERN to leave it out."""
        if not self.jack_lsp:
            return {}
        try:
            out = subprocess.run([self.jack_lsp, "-c"], capture_output=True, text=True,
                                 timeout=2).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("jack_lsp failed: %s", exc)
            return {}
        connections: dict[str, set[str]] = {}
        port = None
        for line in out.splitlines():
            if line.startswith((" ", "\t")) and port is not None:
                connections[port].add(line.strip())
            elif line.strip():
                port = line.strip()
                connections[port] = set()
        return connections

    def _our_jack_inputs(self) -> set[str]:
        """JACK ports named like our virtual input (``instrument:in``, ``instrument-01:in``)."""
        ours = re.compile(rf"{re.escape(self.client_name)}(-\d+)?:in")
        return {p for p in self._jack_connections() if ours.fullmatch(p)}

    def _deliver(self, item, port: str) -> None:
        message, delta_s = item
        now = time.monotonic()
        api_time = self.api_times.get(port)
        if api_time is None:
            api_time = self.api_times[port] = ApiTime()
        t = api_time.time(delta_s, now)
        if not (len(message) == 1 and message[0] >= REALTIME):
            t = now
        try:
            self.on_message(message, t, port)
        except Exception as exc:  # noqa: BLE001 - never kill the polling thread
            self.errors += 1
            log.debug("MIDI message %s failed: %s", message, exc)

    def stop(self) -> None:
        self.running = False
        if self.thread.is_alive():
            self.thread.join(timeout=1.0)
        with self.lock:
            for port in self.ports.values():
                port.close_port()
            self.ports.clear()
        if self.virtual is not None:
            self.virtual.close_port()
            self.virtual = None
