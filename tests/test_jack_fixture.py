"""The jack_server fixture: a real JACK server that JACK clients and PortAudio can see."""

from __future__ import annotations

import os
import time

import pytest

from jack_server import portaudio_rescan

pytestmark = pytest.mark.integration


def test_jack_lsp_lists_dummy_ports(jack_server):
    assert os.environ["JACK_DEFAULT_SERVER"] == jack_server.name
    ports = jack_server.ports()
    assert "system:playback_1" in ports
    assert "system:capture_1" in ports


def test_portaudio_has_jack_host_api(jack_server):
    import sounddevice as sd

    # PortAudio lists host APIs once, at initialisation; sounddevice may have been imported
    # before this server existed.
    portaudio_rescan()
    hostapis = sd.query_hostapis()
    names = [h["name"] for h in hostapis]
    jack = [h for h in hostapis if "JACK" in h["name"]]
    assert jack, (f"PortAudio sees no JACK host API (host APIs: {names}); "
                  f"sounddevice uses {sd._libname}")
    devices = [sd.query_devices(i) for i in jack[0]["devices"]]
    assert any(d["max_output_channels"] >= 2 for d in devices), devices


def test_jack_midi_into_the_instrument_loses_nothing(jack_server, live):
    """1000 controller messages 5 ms apart, all counted by the instrument. On an asynchronous
    JACK server a client late in a cycle is skipped, and the MIDI events of that cycle are gone
    (this lost a message now and then in full-suite runs); the fixture's server runs with -S."""
    from live import JackMidiOut, status_json, wait_status

    out = JackMidiOut()
    try:
        out.send(0xB0, 31, 0)  # a first event right after connecting can be lost in JACK
        base = wait_status(live.osc_port, lambda d: d.get("midi_messages", 0) >= 1)
        base = base["midi_messages"]
        n = 1000
        for k in range(n):
            out.send(0xB0, 31, k % 128)  # mapped to nothing: only counted
            time.sleep(0.005)
        wait_status(live.osc_port, lambda d: d["midi_messages"] >= base + n, 10)
        time.sleep(1.2)
        assert status_json(live.osc_port)["midi_messages"] - base == n
    finally:
        out.close()
