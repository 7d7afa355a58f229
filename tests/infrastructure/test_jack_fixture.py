"""The jack_server fixture: a real JACK server that JACK clients and PortAudio can see."""

from __future__ import annotations

import os

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
