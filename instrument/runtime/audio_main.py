"""The audio process: owns the PortAudio stream and nothing else.

Started by the host (``python -m instrument.runtime.audio_main ...``). It attaches to the shared
memory, compiles the preset (plans hold numba functions, which do not cross process
boundaries; the host has already compiled the same file, so it is known to be good), warms the
JIT, then pins itself to a CPU, asks for SCHED_FIFO, locks its memory, freezes and disables the
garbage collector, and opens the stream. Its main thread only reads the host's commands on stdin
(``swap TABLE PATH``, ``quit``); end of input means the host is gone, and it stops.

Real-time contract of the callback: no allocation beyond the float objects CPython makes for
arithmetic, no lock, no logging, no exception: it drains the event ring, renders one block
through ``Engine.process_block`` and records its duration in the status block.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.presets import compile_file
from instrument.runtime import realtime
from instrument.runtime.ring import drain_ring
from instrument.runtime.shared import (
    S_AUDIO_PID, S_BLOCK, S_FIRST_AUDIO_T, S_MODULES_RESET, S_NONFINITE, S_NULL_OUTPUT,
    S_SAMPLE_RATE, S_STATE, S_TABLE, S_XRUNS, STATE_RUNNING, STATE_STOPPED, SharedState,
)
from instrument.runtime.status import record_block

log = logging.getLogger("instrument.audio")

MAX_EVENTS_PER_BLOCK = 512


class AudioProcess:
    def __init__(self, args):
        self.args = args
        self.shared = SharedState(args.shm)
        self.status = self.shared.status
        self.sample_rate = float(args.rate)
        self.block = int(args.block)
        self.engine = Engine(self.sample_rate, self.block, max_events=MAX_EVENTS_PER_BLOCK)
        self.events = np.zeros((MAX_EVENTS_PER_BLOCK, EVENT_WIDTH))
        self.clock = np.zeros(2)  # previous callback time, first-callback flag
        self.deadline_ns = self.block / self.sample_rate * 1e9
        self.stream = None
        self.null_thread = None
        self.running = True
        self.wav = None

    # ---- preparation (allocates; before the stream opens) ----------------------------------
    def load(self, table: int, path: str, first: bool) -> None:
        plan = compile_file(path, self.sample_rate, self.block)
        ptarget = self.shared.tables[table]
        if first:
            self.engine.load(plan, ptarget=ptarget, init_targets=False)
        else:
            self.engine.swap(plan, carry_params=False, ptarget=ptarget, init_targets=False)
        self.status[S_TABLE] = table

    def warm_up(self) -> None:
        """Run every native function once on a scratch engine (numba loads or compiles)."""
        plan = self.engine.current.plan
        scratch = Engine(self.sample_rate, self.block, max_events=MAX_EVENTS_PER_BLOCK)
        scratch.load(plan)
        out = np.zeros((self.block, 2), dtype=np.float32)
        ev = np.zeros((MAX_EVENTS_PER_BLOCK, EVENT_WIDTH))
        ev[0] = (0, NOTE_ON, 0, 60, 0.8)
        ev[1] = (self.block // 2, NOTE_OFF, 0, 60, 0.0)
        for i in range(8):
            scratch.process_block(ev, 2 if i == 0 else 0, out)
        ring = np.zeros_like(self.shared.ring)
        drain_ring(ring, self.events, 0.0, 0.0, self.sample_rate, self.block)
        record_block(np.zeros_like(self.status), scratch.current.eng, scratch.lim, 1.0, 2.0)

    # ---- the callback ------------------------------------------------------------------------
    def callback(self, outdata, frames, time_info, flags):
        t0 = time.perf_counter_ns()
        if flags:
            self.status[S_XRUNS] += 1.0
        now = time.monotonic()
        clock = self.clock
        if clock[1] == 0.0:
            clock[0] = now
            clock[1] = 1.0
            self.status[S_FIRST_AUDIO_T] = now
        n = drain_ring(self.shared.ring, self.events, clock[0], now, self.sample_rate, frames)
        clock[0] = now
        engine = self.engine
        engine.process_block(self.events, n, outdata)
        self.status[S_NONFINITE] = engine.nonfinite_resets
        self.status[S_MODULES_RESET] = engine.modules_reset
        record_block(self.status, engine.current.eng, engine.lim,
                     time.perf_counter_ns() - t0, self.deadline_ns)

    # ---- outputs ---------------------------------------------------------------------------
    def open_output(self) -> None:
        try:
            import sounddevice as sd

            device = _device(self.args.device)
            info = sd.query_devices(device, "output")
            channels = min(2, int(info["max_output_channels"]))
            self.stream = sd.OutputStream(
                samplerate=self.sample_rate, blocksize=self.block, device=device,
                channels=channels, dtype="float32", latency=self.args.latency,
                callback=self.callback)
            self.stream.start()
            log.info("audio: %s, %d Hz, %d frames, %.1f ms output latency", info["name"],
                     self.sample_rate, self.block, self.stream.latency * 1000)
        except Exception as exc:  # no PortAudio, no device, device refused the format
            self.stream = None
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.args.device is not None and not self.args.null_fallback:
                raise SystemExit(f"error: audio device {self.args.device!r}: {message} "
                                 "(see 'instrument devices')") from None
            log.warning("no audio output (%s): playing on a clock-driven null output%s",
                        message, f", recording to {self.args.record}" if self.args.record else "")
            self.start_null_output()

    def start_null_output(self) -> None:
        self.status[S_NULL_OUTPUT] = 1.0
        if self.args.record:
            from instrument.audio.wav import WavWriter

            self.wav = WavWriter(self.args.record, int(self.sample_rate), 2)
            self.wav.__enter__()
        self.null_thread = threading.Thread(target=self._null_loop, name="null-output",
                                            daemon=True)
        self.null_thread.start()

    def _null_loop(self) -> None:
        out = np.zeros((self.block, 2), dtype=np.float32)
        period = self.block / self.sample_rate
        next_t = time.monotonic()
        while self.running:
            self.callback(out, self.block, None, 0)
            if self.wav is not None:
                self.wav.write(out)
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:  # fell far behind (suspended): do not try to catch up
                next_t = time.monotonic()

    # ---- lifecycle ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Read host commands until 'quit' or end of input."""
        for line in sys.stdin:
            parts = line.strip().split(" ", 2)
            if not parts or not parts[0]:
                continue
            if parts[0] == "quit":
                break
            if parts[0] == "swap" and len(parts) == 3:
                try:
                    self.load(int(parts[1]), parts[2], first=False)
                except Exception as exc:  # the host validated it; report, keep playing
                    log.error("cannot load %s: %s", parts[2], exc)
            self.engine.release_retired()

    def stop(self) -> None:
        self.running = False
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
        if self.null_thread is not None:
            self.null_thread.join(timeout=1.0)
        if self.wav is not None:
            self.wav.__exit__(None, None, None)
        self.status[S_STATE] = STATE_STOPPED
        self.shared.close()


def _say_if_cold() -> None:
    """The first start with a new set of modules compiles the DSP code (30-90 s); say so, or
    the silence looks like a hang."""
    from instrument.modules.registry import default_registry

    source = default_registry().renderer().source_path
    cache = source.parent / "__pycache__"
    if not any(cache.glob(f"{source.stem}.render_block-*.nbi")):
        log.info("first start with these modules: compiling the DSP code for this machine "
                 "(about a minute; cached in %s afterwards)", source.parent)


def _device(text):
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="instrument-audio")
    p.add_argument("--shm", required=True)
    p.add_argument("--preset", required=True)
    p.add_argument("--table", type=int, default=0)
    p.add_argument("--rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--device")
    p.add_argument("--latency", default="low")
    p.add_argument("--cpu", type=int)
    p.add_argument("--rt-priority", type=int)
    p.add_argument("--record")
    p.add_argument("--null", action="store_true", help="use the null output")
    p.add_argument("--null-fallback", action="store_true")
    args = p.parse_args(argv)
    try:
        args.latency = float(args.latency)
    except ValueError:
        pass
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host coordinates shutdown
    proc = AudioProcess(args)
    proc.status[S_AUDIO_PID] = float(__import__("os").getpid())
    proc.status[S_SAMPLE_RATE] = proc.sample_rate
    proc.status[S_BLOCK] = proc.block
    _say_if_cold()
    proc.load(args.table, args.preset, first=True)
    proc.warm_up()
    realtime.pin_cpu(args.cpu)
    realtime.lock_memory()
    realtime.freeze_gc()
    # Threads inherit the scheduling policy: raise it while the stream's thread is created,
    # then put this (command-reading) thread back to normal.
    realtime.realtime_priority(args.rt_priority)
    if args.null:
        proc.start_null_output()
    else:
        proc.open_output()
    realtime.normal_priority()
    proc.status[S_STATE] = STATE_RUNNING
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        proc.serve()
    except _Stop:
        pass
    proc.stop()
    return 0


class _Stop(Exception):
    pass


def _raise_stop(*_):
    raise _Stop()


if __name__ == "__main__":
    sys.exit(main())
