"""Real-time setup of the audio process: CPU pinning, SCHED_FIFO, mlockall, GC off.

Each step that the system refuses gives one warning line saying what to change; none is fatal.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

log = logging.getLogger(__name__)

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4


def pin_cpu(cpu: int | None) -> None:
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        log.warning("cannot pin the audio process to CPU %s (%s); pick one of %s with --cpu",
                    cpu, exc, sorted(os.sched_getaffinity(0)))


def realtime_priority(priority: int | None) -> None:
    if not priority:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as exc:
        log.warning("no real-time priority (SCHED_FIFO %d: %s); allow it with 'rtprio' in "
                    "/etc/security/limits.d (see deploy/limits.conf) or LimitRTPRIO= in the "
                    "systemd unit", priority, exc.strerror or exc)


def normal_priority() -> None:
    """Put the calling thread back to SCHED_OTHER (Linux applies this per thread)."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass


def _libc():
    """The C library this process already runs on (dlopen of the program itself: no
    ``find_library``, which runs ``ldconfig -p`` in a subprocess during the start)."""
    return ctypes.CDLL(None, use_errno=True)


def trim_heap() -> None:
    """Give the heap the warm-up freed back to the system (glibc's malloc_trim), before
    anything is locked. With ``freeze_gc`` (its collection) before it, and both before
    ``lock_memory``, the audio process (poly16) stays at 184 MB resident instead of 267 MB:
    numba's cache loading leaves that much garbage, which was locked in place before."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def lock_memory() -> None:
    libc = _libc()
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
        err = ctypes.get_errno()
        log.warning("cannot lock memory (mlockall: %s); allow it with 'memlock unlimited' in "
                    "/etc/security/limits.d or LimitMEMLOCK=infinity in the systemd unit",
                    os.strerror(err))


def freeze_gc() -> None:
    """Collect once, move every surviving object out of the collector's sight, switch it off:
    the garbage collector never runs while audio plays."""
    gc.collect()
    gc.freeze()
    gc.disable()
