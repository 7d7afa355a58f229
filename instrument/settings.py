"""The instrument's defaults, named once.

Every command-line default for the audio format and the OSC port, the host's run options, and
the tools that compile, check, warm or render without a device (``check``, ``cache --warm``,
``layout``, module validation) read them from ``DEFAULTS``. The compiled DSP code does not
depend on them: the rate and block size are values in the plan, so code compiled while warming
at these defaults serves every rate and block size.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    sample_rate_hz: int = 48000
    block_frames: int = 64  # 1.33 ms at 48 kHz: the callback's deadline
    latency: str = "low"  # PortAudio's suggested latency: low, high or seconds
    osc_port: int = 9000  # OSC over UDP; OSCQuery's HTTP server listens on the next port


DEFAULTS = Defaults()
