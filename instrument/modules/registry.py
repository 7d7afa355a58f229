"""Module discovery through the ``instrument.modules`` entry-point group, with validation.

Built-ins register in pyproject.toml exactly as a third-party package would. Each discovered
class is validated before it is offered: declarations sane, output finite with default
parameters, and no allocation in its kernel (tracemalloc for Python objects, numba's NRT
counters for native arrays). A broken module is reported in one line and skipped; never fatal.
Validation results are remembered in the cache folder, keyed by the module's source, so a warm
start does not run them again.

Built-in kernels are not run here: the test suite runs the same validation on every one of them
(``tests/modules/test_registry.py``), and compiling each kernel on its own for it was half of a
cold start (50 of 101 s for ``check`` and ``cache --warm`` of every preset, AMD EPYC VM; about
four times that on a Pi). Their declarations are still checked; plugins get everything.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import json
import logging
import os
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instrument.errors import ModuleError
from instrument.layout import (
    CTX_VELOCITY, N_RESERVED_ROWS, PORT_DEFAULT_ROWS, ROW_GATE, ROW_PITCH, ROW_TRIGGER,
)
from instrument.modules.base import Module
from instrument.modules.kernel_args import kernel_args
from instrument.names import nearest
from instrument.settings import DEFAULTS

log = logging.getLogger(__name__)

GROUP = "instrument.modules"
_VALIDATION_VERSION = "1"


@dataclass
class Registry:
    """Validated module classes by type name, and one line per module that was skipped."""

    modules: dict[str, type[Module]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    _renderer: object = None

    def get(self, type_name: str, where: str = "") -> type[Module]:
        try:
            return self.modules[type_name]
        except KeyError:
            pass
        for line in self.skipped:
            if line.startswith(f"module '{type_name}' "):
                raise ModuleError(f"module '{type_name}' is installed but was skipped", where,
                                  line.split(" skipped: ", 1)[-1])
        raise ModuleError(f"unknown module type '{type_name}'", where,
                          nearest(type_name, self.modules))

    def renderer(self):
        """The fused native renderer over every module in this registry (built once)."""
        if self._renderer is None:
            from instrument.engine.fused import build_renderer

            self._renderer = build_renderer(list(self.modules.values()))
        return self._renderer


def discover(entry_points=None, validate: bool = True) -> Registry:
    """Load and validate every module registered under ``instrument.modules``."""
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=GROUP)
    registry = Registry()
    # Built-ins first, so a plugin can never take over a built-in type name.
    for ep in sorted(entry_points, key=lambda e: (not _is_builtin(e), e.name)):
        label = f"module '{ep.name}' ({ep.value})"
        try:
            cls = ep.load()
        except (Exception, SystemExit) as exc:  # a plugin can fail in any way, even exit
            registry.skipped.append(f"{label} skipped: import failed: {type(exc).__name__}: "
                                    f"{one_line(exc)}")
            continue
        problem = check_module(cls, validate and not _is_builtin(ep))
        if problem:
            registry.skipped.append(f"{label} skipped: {problem}")
            continue
        if cls.type_name in registry.modules and registry.modules[cls.type_name] is not cls:
            registry.skipped.append(f"{label} skipped: type name '{cls.type_name}' is taken")
            continue
        registry.modules[cls.type_name] = cls
    for line in registry.skipped:
        log.warning("%s", line)
    return registry


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = discover()
    return _default


def check_module(cls, run_kernel: bool = True) -> str:
    """Return '' for a usable module class, else one line saying what is wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        return "not a subclass of instrument.modules.base.Module"
    problems = cls.problems()
    if problems:
        return "; ".join(problems)
    if not run_kernel:
        return ""
    key = _fingerprint(cls)
    cached = _load_validated()
    if cached.get(cls.type_name) == key:
        return ""
    try:
        problem = _exercise(cls)
    except Exception as exc:  # compile errors, index errors, anything: the module is broken
        return f"kernel failed: {type(exc).__name__}: {one_line(exc)}"
    if not problem:
        cached[cls.type_name] = key
        _save_validated(cached)
    return problem


def _exercise(cls, sample_rate: float = DEFAULTS.sample_rate_hz,
              block: int = DEFAULTS.block_frames, lanes: int = 4) -> str:
    """Run the kernel alone on ``lanes`` voices with default parameters; check that its output
    is finite and that it allocates nothing."""
    n_in, n_out = len(cls.inputs), len(cls.outputs)
    bufs, io, P, pr, st, ctx = kernel_args(cls, n_in + n_out, lanes, sample_rate=sample_rate,
                                           block=block)
    bufs[ROW_PITCH] = 440.0 * (1.0 + np.arange(lanes))[None, :]
    bufs[ROW_GATE] = 1.0
    # Inputs read their ports' default rows, outputs the rows after the reserved ones.
    io[:] = ([PORT_DEFAULT_ROWS[p.default] for p in cls.inputs]
             + list(range(N_RESERVED_ROWS, N_RESERVED_ROWS + n_out)))
    if n_in:  # feed a test tone into the first input so processors have something to chew
        io[0] = N_RESERVED_ROWS + n_out
        tone = 0.5 * np.sin(2 * np.pi * 220.0 * np.arange(block) / sample_rate)
        bufs[io[0]] = tone[:, None]
    ctx[CTX_VELOCITY] = 0.8
    kernel = cls.kernel
    for b in range(50):
        bufs[ROW_TRIGGER, 0] = 1.0 if b == 0 else 0.0
        kernel(bufs, io, P, pr, st, ctx, 0, block, lanes)
        if b == 25:
            bufs[ROW_GATE] = 0.0
        outs = bufs[N_RESERVED_ROWS:N_RESERVED_ROWS + n_out]
        if not np.all(np.isfinite(outs)):
            return f"output is not finite with default parameters (block {b})"
    from numba.core.runtime import _nrt_python, rtsys

    from instrument.kernels.amp import nop_kernel

    if not _nrt_python.memsys_stats_enabled():  # off unless NUMBA_NRT_STATS=1
        _nrt_python.memsys_enable_stats()
    # Each array crossing from Python into numba is adopted with one NRT allocation; a kernel
    # that does nothing with the same arguments gives that baseline.
    base0 = rtsys.get_allocation_stats().alloc
    for _ in range(200):
        nop_kernel(bufs, io, P, pr, st, ctx, 0, block, lanes)
    baseline = rtsys.get_allocation_stats().alloc - base0
    before = rtsys.get_allocation_stats().alloc
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(200):
        kernel(bufs, io, P, pr, st, ctx, 0, block, lanes)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    native = rtsys.get_allocation_stats().alloc - before - baseline
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename") if s.size_diff > 0
                and "tracemalloc" not in str(s.traceback))
    if native > 0:
        return f"kernel allocates native memory ({native} allocations in 200 blocks)"
    if grown > 4096:
        return f"kernel grows Python memory by {grown} bytes over 200 blocks"
    return ""


def _is_builtin(ep) -> bool:
    """A module of this package (a plugin's distribution can not pass for it)."""
    dist = getattr(ep, "dist", None)
    return ep.value.startswith("instrument.") and (dist is None or dist.name == "instrument")


_NOISE = ("Failed in ", "During: ", "File ", "<source elided>", "^")


def one_line(exc: BaseException) -> str:
    """The informative part of an exception message on one line (numba's first line is
    always 'Failed in nopython mode pipeline'; the cause comes after)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    text = useful[0] if useful else (lines[0] if lines else "")
    return text[:300]


def package_sources(module_name: str) -> list[Path]:
    """Every .py file of the top-level package a module belongs to (a kernel may call helpers
    anywhere in its package; an edit to any of them must invalidate caches)."""
    top = importlib.import_module(module_name.split(".")[0])
    paths = getattr(top, "__path__", None)
    if paths:
        return sorted(p for folder in paths for p in Path(folder).rglob("*.py"))
    return [Path(inspect.getfile(top))]


def _fingerprint(cls) -> str:
    h = hashlib.sha256(_VALIDATION_VERSION.encode())
    for name in {cls.__module__, cls.kernel.py_func.__module__}:
        try:
            for path in package_sources(name):
                h.update(path.name.encode())
                h.update(path.read_bytes())
        except (ImportError, OSError, TypeError):
            h.update(name.encode())
    return h.hexdigest()[:16]


def _validated_path():
    from instrument.engine.fused import cache_dir

    return cache_dir() / "validated.json"


def _load_validated() -> dict:
    try:
        return json.loads(_validated_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_validated(data: dict) -> None:
    path = _validated_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot remember validated modules: %s", exc)
