"""``python -m instrument.runtime.code_check PRESET [CHANGED.py ...]``: does the code on disk
play this preset?

Run by ``runtime.code_watch`` in a fresh process after source files were saved: it imports each
changed file of the package (a broken file the preset does not use would still break a later
preset load), compiles the preset and runs every native function the audio callback reaches
once, so numba compiles the new code and stores it in its cache (the restart that follows then
starts in about a second). Prints ``ok`` and exits 0, or prints one line
``error: FILE:LINE: what`` and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from instrument.errors import InstrumentError
from instrument.settings import DEFAULTS

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def problem_line(exc: BaseException) -> str:
    """One line for what went wrong with new code: the place in our sources, then what."""
    if isinstance(exc, InstrumentError):
        return str(exc)
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    place = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve().is_relative_to(PACKAGE_ROOT):
            place = f"{frame.filename}:{frame.lineno}: "
            break
    return f"{place}{type(exc).__name__}: {text}"


def module_name(path: Path) -> str | None:
    """``instrument.kernels.filters`` for ``.../instrument/kernels/filters.py``; None for a
    file outside the package."""
    try:
        parts = Path(path).resolve().relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    except ValueError:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def check(preset: Path, sample_rate: int, block: int, changed=()) -> str:
    """'' when every changed file imports and ``preset`` compiles and plays with the code on
    disk, else the problem."""
    import importlib

    try:
        for path in changed:
            name = module_name(path)
            if name is not None and Path(path).exists():
                importlib.import_module(name)
        from instrument.presets import compile_file
        from instrument.runtime.audio_main import exercise_engine

        plan = compile_file(preset, sample_rate, block)
        exercise_engine(plan, sample_rate, block)
    except Exception as exc:  # noqa: BLE001 - any failure of new code is reported in one line
        return problem_line(exc)
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m instrument.runtime.code_check")
    p.add_argument("preset")
    p.add_argument("changed", nargs="*", help="source files saved since the last check")
    p.add_argument("--rate", type=int, default=DEFAULTS.sample_rate_hz)
    p.add_argument("--block", type=int, default=DEFAULTS.block_frames)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    problem = check(Path(args.preset), args.rate, args.block, args.changed)
    if problem:
        print(f"error: {problem}", flush=True)
        return 2
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
