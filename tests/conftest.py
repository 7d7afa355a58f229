"""Shared test setup.

- Numba's on-disk cache for generated kernels goes to ``<repo>/.cache-test`` (unless
  ``INSTRUMENT_CACHE_DIR`` is already set), so test runs share one cache and skip recompiling;
  instruments the tests start keep their autosaved state under it too (``XDG_STATE_HOME``).
- ``jack_server``: a real JACK server with the dummy driver for the whole session (see
  ``tests/jack_server.py``). Missing jackd skips those tests, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("INSTRUMENT_CACHE_DIR", str(REPO / ".cache-test"))
# Instruments started by tests autosave their state (runtime/state_store.py): into the test
# cache folder, not the user's ~/.local/state.
os.environ["XDG_STATE_HOME"] = str(REPO / ".cache-test" / "state")

from jack_server import (  # noqa: E402
    JackServerError, default_realtime_priority, jack_env, portaudio_initialize, portaudio_terminate,
    start_jack_server,
)  # noqa: E402


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def jack_server():
    """A running ``jackd -d dummy -r 48000 -p 64`` named ``instrument-test-<pid>``, with
    real-time threads where this machine allows them (``jack_server.default_realtime_priority``).

    For the session, ``os.environ`` carries ``JACK_DEFAULT_SERVER`` (and
    ``JACK_NO_AUDIO_RESERVATION=1``, ``JACK_NO_START_SERVER=1``), so in-process clients and
    subprocesses reach this server. Yields a ``JackServer`` (``.name``, ``.env``, ``.lsp()``).
    """
    if shutil.which("jackd") is None:
        msg = "jackd is not installed (Debian package jackd2; run ./setup.sh --test)"
        if _in_ci():
            pytest.fail(msg + "; CI must run the integration tests", pytrace=False)
        pytest.skip(msg)
    try:
        server = start_jack_server(realtime_priority=default_realtime_priority())
    except JackServerError as exc:
        pytest.fail(f"could not start a JACK server: {exc}", pytrace=False)

    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION",
                                             "JACK_NO_START_SERVER")}
    os.environ.update({k: v for k, v in jack_env(server.name).items() if k in saved})
    try:
        yield server
    finally:
        # PortAudio first: its JACK host API aborts the process if the server vanishes under it.
        pa_count = portaudio_terminate()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        portaudio_initialize(pa_count)


@pytest.fixture
def live(jack_server):
    """``instrument run presets/poly16.toml --mapping none`` on the test JACK server, its ports
    up and its audio running; stopped after the test, which must exit 0."""
    from live import LiveInstrument, wait_status

    inst = LiveInstrument(jack_server.env, "presets/poly16.toml", "--mapping", "none")
    try:
        inst.wait_ports()
        wait_status(inst.osc_port, lambda d: d.get("callbacks", 0) > 0, 30)
        yield inst
    finally:
        code = inst.stop()
        assert code == 0, inst.output()
