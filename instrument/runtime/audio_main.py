"""The audio process: owns the PortAudio stream and nothing else.

Started by the host (``python -m instrument.runtime.audio_main ...``). It attaches to the shared
memory, reads its first plan from stdin (the host compiled it; this process never reads or
compiles a preset file), warms the JIT, then pins itself to a CPU, asks for SCHED_FIFO, locks
its memory, freezes and disables the garbage collector, and opens the stream. Its main thread
only reads the host's messages on stdin (``runtime.handover``: a ready plan to adopt, or quit);
end of input means the host is gone, and it stops. Adopting a plan is a millisecond of Python
(unpickle, allocate the instance) and a pointer swap at the top of a block; the main thread
then waits for the crossfade to end, releases the old instance and acknowledges the plan's
sequence number in the status block, so the host sends at most one plan at a time.

Start: the collector is off during the process's imports, and what they built is frozen
(``gc.freeze``) once numba's registries are filled; it is on again while the plan loads (a
cold start compiles then, for a minute, making much garbage) and scans only what came since:
import to warmed engine 0.62 s instead of 0.75 s (median of 8, interleaved), the same
resident memory. An audio process that had to compile (a cold cache) replaces itself by a fresh
start once the code is cached, before it locks anything (``_start_again_fresh``).

Python's GIL: the stream's callback needs the GIL for its few Python calls, and while the main
thread prepares a plan it holds it; by default a waiting thread gets it only after the 5 ms
switch interval. Here it is 100 us (``SWITCH_INTERVAL_S``), and the main thread is otherwise
blocked in ``read``. Measured with ``benchmarks/switch_restart_live.py`` (20 switches under a
held chord, 3 rounds): the longest time between callback starts was 2.0-5.2 ms with 100 us and
4.3-9.1 ms with 5 ms, against 1.7-7.9 ms without any switch (the dummy JACK driver's own
jitter on this VM); callback duration max 14% and 13-19% of the deadline.

Real-time contract of the callback: no allocation beyond the float objects CPython makes for
arithmetic, no lock, no logging, no exception. While no plan swap is under way it makes one
native call (the renderer's ``live_block``): drain the event ring, render one block, record
its duration in the status block. During a swap (a crossfade of a few blocks) the same steps
run from Python through ``Engine.process_block``.
"""

from __future__ import annotations

import gc
import sys

if __name__ == "__main__":  # the audio process: no collection during its imports (start)
    gc.disable()
    # numba imports scipy when it is installed (a version check, then its BLAS and LAPACK
    # bindings when its registries fill); this process does no linear algebra. Kept out,
    # poly16's audio process is 172 MB resident of its own instead of 184 MB, and numba's
    # registries fill in 0.13 s instead of 0.26 s. A user's install has no scipy (test extra).
    sys.modules.setdefault("scipy", None)

import argparse
import logging
import os
import signal
import threading
import time

import numpy as np

from instrument.engine.engine import Engine
from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.layout import LIVE
from instrument.runtime import realtime
from instrument.runtime.handover import encode, read_message
from instrument.runtime.ring import drain_ring
from instrument.runtime.shared import (
    S_AUDIO_PID, S_BLOCK, S_FIRST_AUDIO_T, S_MODULES_RESET, S_NONFINITE, S_NULL_OUTPUT,
    S_PLAN_ACK, S_SAMPLE_RATE, S_STATE, S_TABLE, S_XRUNS, STATE_RUNNING, STATE_STOPPED,
    SharedState, shared_size,
)
from instrument.runtime.status import record_block
from instrument.settings import DEFAULTS

log = logging.getLogger("instrument.audio")

MAX_EVENTS_PER_BLOCK = 512
SWITCH_INTERVAL_S = 100e-6  # see the module docstring: how long the callback may wait for the GIL
FIRST_PLAN_FD = "--first-plan-fd"  # a fresh start's first plan (_start_again_fresh)
ADOPT_TIMEOUT_S = 2.0  # a stream that stopped calling back must not hang plan hand-over


class AudioProcess:
    def __init__(self, args):
        self.args = args
        self.shared = SharedState(args.shm)
        self.status = self.shared.status
        self.sample_rate = float(args.rate)
        self.block = int(args.block)
        self.engine = Engine(self.sample_rate, self.block, max_events=MAX_EVENTS_PER_BLOCK)
        self.events = np.zeros((MAX_EVENTS_PER_BLOCK, EVENT_WIDTH))
        self.ring = self.shared.ring
        self.clock = np.zeros(2)  # previous callback time, first-callback flag
        self.deadline_ns = self.block / self.sample_rate * 1e9
        self.stream = None
        self.null_thread = None
        self.running = True
        self.wav = None

    # ---- preparation (allocates; before the stream opens) ----------------------------------
    def load(self, table: int, plan, first: bool) -> None:
        """Play ``plan`` with parameter table ``table``: at once (``first``) or through the
        engine's crossfade, returning once the old plan is released (main thread only)."""
        ptarget = self.shared.tables[table]
        engine = self.engine
        if first:
            self.bind_live(engine.load(plan, ptarget=ptarget, init_targets=False))
        else:
            self.bind_live(engine.swap(plan, carry_params=False, ptarget=ptarget,
                                       init_targets=False))
            end = time.monotonic() + ADOPT_TIMEOUT_S
            while (engine.pending is not None or engine.old is not None) and \
                    time.monotonic() < end:
                time.sleep(0.002)
            engine.release_retired()
        self.status[S_TABLE] = table

    def warm_up(self) -> None:
        """Run every native function the callback can reach once, on a scratch engine
        (``exercise_engine``: numba loads them from its cache, or compiles them)."""
        exercise_engine(self.engine.current.plan, self.sample_rate, self.block)

    # ---- the callback ------------------------------------------------------------------------
    def callback(self, outdata, frames, time_info, flags):
        """PortAudio's callback. While no plan swap is under way, one native call
        (``live_block``: ring, clock, render, status); otherwise ``_callback_in_python``."""
        engine = self.engine
        cur = engine.current
        live = cur.live
        if live is not None and engine.pending is None and engine.old is None \
                and engine.n_restrike == 0:
            bad = live(cur.state, self.ring, self.events, self.clock, self.status, engine.lim,
                       outdata, flags._flags, self.sample_rate, self.deadline_ns, LIVE)
            if bad:
                self._recover(bad)
            return
        self._callback_in_python(outdata, flags)

    def _callback_in_python(self, outdata, flags):
        """The same steps from Python (a few more calls): swaps, crossfades, restrikes."""
        t0 = time.perf_counter_ns()
        if flags._flags:
            self.status[S_XRUNS] += 1.0
        now = time.monotonic()
        clock = self.clock
        if clock[1] == 0.0:
            clock[0] = now
            clock[1] = 1.0
            self.status[S_FIRST_AUDIO_T] = now
        n = drain_ring(self.ring, self.events, clock[0], now, self.sample_rate,
                       outdata.shape[0])
        gap_s = now - clock[0]
        clock[0] = now
        engine = self.engine
        engine.process_block(self.events, n, outdata)
        self.status[S_NONFINITE] = engine.nonfinite_resets
        self.status[S_MODULES_RESET] = engine.modules_reset
        record_block(self.status, engine.current.eng, engine.lim,
                     time.perf_counter_ns() - t0, self.deadline_ns, gap_s)

    def _recover(self, bad: int) -> None:
        """After a non-finite block from ``live_block`` (rare): the engine's recovery."""
        engine = self.engine
        engine.recover_nonfinite(bad)
        self.status[S_NONFINITE] = engine.nonfinite_resets
        self.status[S_MODULES_RESET] = engine.modules_reset

    def bind_live(self, instance) -> None:
        """Give ``instance`` its entry point for ``live_block`` (control side, before the
        callback may use it; compiles or loads from the cache)."""
        instance.bind_live(self.ring, self.events, self.clock, self.status, self.engine.lim,
                           np.zeros((self.block, 2), dtype=np.float32))

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
            from instrument.runtime.recording import RawRecorder

            self.wav = RawRecorder(self.args.record)
        self.null_thread = threading.Thread(target=self._null_loop, name="null-output",
                                            daemon=True)
        self.null_thread.start()

    def _null_loop(self) -> None:
        out = np.zeros((self.block, 2), dtype=np.float32)
        period = self.block / self.sample_rate
        next_t = time.monotonic()
        while self.running:
            self.callback(out, self.block, None, NO_FLAGS)
            if self.wav is not None:
                self.wav.write(out)
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:  # fell far behind (suspended): do not try to catch up
                next_t = time.monotonic()

    # ---- lifecycle ---------------------------------------------------------------------------
    def serve(self, commands) -> None:
        """Adopt the host's plans until 'quit' or end of input."""
        while True:
            message = read_message(commands)
            if message is None or message[0] == "quit":
                break
            if message[0] == "plan" and len(message) == 4:
                _, table, plan, seq = message
                try:
                    self.load(int(table), plan, first=False)
                except Exception as exc:  # noqa: BLE001 - the host compiled it; keep playing
                    log.error("cannot adopt plan '%s': %s", getattr(plan, "name", "?"), exc)
                self.status[S_PLAN_ACK] = float(seq)

    def stop(self) -> None:
        self.running = False
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
        if self.null_thread is not None:
            self.null_thread.join(timeout=1.0)
        if self.wav is not None:
            self.wav.close()
        self.status[S_STATE] = STATE_STOPPED
        self.shared.close()


def _prepare_numba() -> None:
    """Fill numba's typing and lowering registries, which it otherwise fills at the first
    compile or cache load, after the plan came: it imports numba.np and more (0.13 s here;
    0.26 s when numba also imports scipy, which this process keeps out: see the imports)."""
    from numba.core.registry import cpu_target

    cpu_target.target_context.refresh()
    cpu_target.typing_context.refresh()


def _say_if_cold(plan) -> bool:
    """The first start with a new set of modules compiles the DSP code (30-90 s); say so, or
    the silence looks like a hang. Returns whether it will compile."""
    if _compiled(plan):
        return False
    log.info("first start with these modules: compiling the DSP code for this machine "
             "(about a minute; cached in %s afterwards)", _renderer(plan).source_path.parent)
    return True


def _renderer(plan):
    from instrument.engine.fused import renderer_for_key

    return renderer_for_key(plan.renderer_key)


def _compiled(plan) -> bool:
    from instrument.engine.fused import is_compiled

    return is_compiled(_renderer(plan))


def _start_again_fresh(argv: list[str], first: tuple) -> None:
    """Replace this process's image by a fresh one (the same pid, arguments, stdin and shared
    memory) that loads from numba's cache what this one has just compiled. A compile leaves
    LLVM's and numba's working memory behind, which the audio process would lock for its
    whole life: poly16's audio process kept 230-525 MB of its own after compiling, against
    172 MB when it loads from the cache (benchmarks/audio_memory.py); the fresh start costs
    0.6 s on top of the minute the compile took. The first plan goes along in a memfd; any
    later message waits in stdin, which ``main`` reads unbuffered so that no byte of it is
    held here. Returns only if the fresh start cannot be made (then this image plays on)."""
    try:
        fd = os.memfd_create("instrument-first-plan", 0)
        data = memoryview(encode(first))
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, os.SEEK_SET)
        os.set_inheritable(fd, True)
    except (AttributeError, OSError) as exc:
        log.warning("cannot start the audio process again after compiling (%s); it plays on "
                    "with the compiler's memory", exc)
        return
    log.info("compiled and cached; starting the audio process again to play from the cache")
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, "-m", "instrument.runtime.audio_main", *argv,
                                  FIRST_PLAN_FD, str(fd)])
    except OSError as exc:
        os.close(fd)
        log.warning("cannot start the audio process again after compiling (%s); it plays on "
                    "with the compiler's memory", exc)


def _device(text):
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="instrument-audio")
    p.add_argument("--shm", required=True)
    p.add_argument("--rate", type=int, default=DEFAULTS.sample_rate_hz)
    p.add_argument("--block", type=int, default=DEFAULTS.block_frames)
    p.add_argument("--device")
    p.add_argument("--latency", default=DEFAULTS.latency)
    p.add_argument("--cpu", type=int)
    p.add_argument("--rt-priority", type=int)
    p.add_argument("--record", help="raw float32 stereo file to append the null output to")
    p.add_argument("--null", action="store_true", help="use the null output")
    p.add_argument("--null-fallback", action="store_true")
    p.add_argument(FIRST_PLAN_FD, type=int, help=argparse.SUPPRESS)  # _start_again_fresh
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    try:
        args.latency = float(args.latency)
    except ValueError:
        pass
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host coordinates shutdown
    proc = AudioProcess(args)
    proc.status[S_AUDIO_PID] = float(os.getpid())
    proc.status[S_SAMPLE_RATE] = proc.sample_rate
    proc.status[S_BLOCK] = proc.block
    # Unbuffered: a buffered reader may read past a message, and _start_again_fresh must
    # leave every byte it has not used in the pipe for its successor.
    commands = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    _prepare_numba()  # while the host compiles the preset
    gc.freeze()  # the imports' objects: never scanned again (start, in the module docstring)
    gc.enable()  # until the stream opens: a cold start compiles here, and makes much garbage
    if args.first_plan_fd is None:
        first = read_message(commands)
    else:  # started again after compiling: the first plan comes from its predecessor
        with open(args.first_plan_fd, "rb") as handed_over:
            first = read_message(handed_over)
    if first is None or first[0] != "plan":
        return 0  # the host went away before sending a plan
    _, table, plan, seq = first
    cold = _say_if_cold(plan)
    proc.load(int(table), plan, first=True)
    proc.status[S_PLAN_ACK] = float(seq)
    proc.warm_up()
    if cold and args.first_plan_fd is None and _compiled(plan):
        _start_again_fresh(argv, first)
    realtime.freeze_gc()
    realtime.trim_heap()  # what the warm-up freed, before locking
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    realtime.pin_cpu(args.cpu)
    realtime.lock_memory()
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
        proc.serve(commands)
    except _Stop:
        pass
    proc.stop()
    return 0


def exercise_engine(plan, sample_rate: float, block: int) -> Engine:
    """Run every native function the callback can reach, on a scratch engine playing ``plan``
    (numba loads them from its cache, or compiles them): a block with notes, a held note
    through a plan swap (the crossfade's ``finish_block`` and the restrike path: left out, the
    first preset switch loaded them inside the callback, 265% of the deadline), the release,
    the ring and status helpers and the one-call path (``live_block``, about 10 s to compile
    here). Returns the scratch engine. Used by the audio process before it opens the stream,
    by ``runtime.code_check`` to compile new code off the audio path, and by ``instrument
    cache --warm`` (setup, install)."""
    # The shared blocks' types (1-d float64) on scratch arrays, and the argument types the
    # callback's Python path passes (float rate, int64 duration in ns): the same compiled code.
    # Another type here compiled a second version for nothing and left the callback's own to
    # be loaded from disk inside the callback at the first plan swap.
    ring = np.zeros(shared_size("ring"))
    status = np.zeros(shared_size("status"))
    clock = np.zeros(2)
    out = np.zeros((block, 2), dtype=np.float32)
    ev = np.zeros((MAX_EVENTS_PER_BLOCK, EVENT_WIDTH))
    scratch = Engine(sample_rate, block, max_events=MAX_EVENTS_PER_BLOCK)

    def bind(instance):  # as the audio process binds each plan it plays (bind_live)
        instance.bind_live(ring, ev, clock, status, scratch.lim, out)
        return instance

    bind(scratch.load(plan))
    ev[0] = (0, NOTE_ON, 0, 60, 0.8)
    ev[1] = (block // 2, NOTE_ON, 0, 64, 0.8)
    scratch.process_block(ev, 2, out)
    bind(scratch.swap(plan, carry_params=False))
    for _ in range(scratch.crossfade_frames // block + 2):
        scratch.process_block(ev, 0, out)
    ev[0] = (0, NOTE_OFF, 0, 60, 0.0)
    ev[1] = (0, NOTE_OFF, 0, 64, 0.0)
    for i in range(4):
        scratch.process_block(ev, 2 if i == 0 else 0, out)
    scratch.release_retired()
    drain_ring(ring, ev, 0.0, 0.0, float(sample_rate), block)
    record_block(status, scratch.current.eng, scratch.lim, 1, block / sample_rate * 1e9, 0.0)
    cur = scratch.current
    cur.live(cur.state, ring, ev, clock, status, scratch.lim, out, 0, float(sample_rate),
             block / sample_rate * 1e9, LIVE)
    return scratch


class _NoFlags:
    """PortAudio's callback flags for the null output: none (``sounddevice.CallbackFlags``
    keeps them in ``_flags``, which the callback reads without a Python call)."""

    _flags = 0


NO_FLAGS = _NoFlags()


class _Stop(Exception):
    pass


def _raise_stop(*_):
    raise _Stop()


if __name__ == "__main__":
    sys.exit(main())
