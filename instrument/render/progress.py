"""A tiny progress display for long work (offline rendering), written to stderr.

On a terminal it redraws one line with a carriage return, at most ``max_redraws_per_s`` times a
second (10 by default), whatever the update rate. Elsewhere (CI logs, pipes, journald) it prints
a plain line each time a new 10 % step is reached, so a log gets at most 11 lines per task.
No dependencies beyond the standard library.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

_BAR_WIDTH = 30


class Progress:
    """Show ``label`` and how much of ``total`` units is done.

    ``update(done)`` takes the absolute amount done (not an increment) and is cheap enough to
    call per audio block: when no redraw is due it costs one clock read and two comparisons.
    ``close()`` draws the final state (and ends the terminal line); it is idempotent, and the
    object is a context manager that calls it. ``total <= 0`` is shown as complete.
    """

    def __init__(
        self,
        total: float,
        label: str,
        stream: TextIO | None = None,
        max_redraws_per_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = float(total)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.done = 0.0
        self._clock = clock
        self._start_s = clock()
        self._min_interval_s = 1.0 / max_redraws_per_s
        self._last_draw_s = -float("inf")
        self._last_step = -1  # last 10 % step printed, for streams that are not terminals
        self._last_printed_done: float | None = None
        self._is_tty = _is_tty(self.stream)
        self._closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    @property
    def fraction(self) -> float:
        """Done / total, clamped to [0, 1]."""
        if self.total <= 0:
            return 1.0
        return min(1.0, max(0.0, self.done / self.total))

    def update(self, done: float) -> None:
        """Record that ``done`` units (absolute) are finished; redraw if one is due."""
        self.done = done
        if self._closed:
            return
        if self._is_tty:
            now_s = self._clock()
            if now_s - self._last_draw_s >= self._min_interval_s:
                self._last_draw_s = now_s
                self._write("\r" + self._line(now_s))
        else:
            step = int(self.fraction * 10 + 1e-9)
            if step > self._last_step:
                self._last_step = step
                self._print_line()

    def close(self) -> None:
        """Draw the final state once; on a terminal, end the line."""
        if self._closed:
            return
        self._closed = True
        now_s = self._clock()
        if self._is_tty:
            self._write("\r" + self._line(now_s) + "\n")
        elif self.done != self._last_printed_done:
            self._print_line()

    def _print_line(self) -> None:
        self._last_printed_done = self.done
        self._write(self._line(self._clock()) + "\n")

    def _line(self, now_s: float) -> str:
        fraction = self.fraction
        elapsed_s = now_s - self._start_s
        text = f"{self.label} {fraction * 100:5.1f}%"
        if self._is_tty:
            filled = int(fraction * _BAR_WIDTH)
            text += " [" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]"
        text += f" {elapsed_s:6.1f} s"
        if 0.0 < fraction < 1.0 and elapsed_s > 0.0:
            text += f", {elapsed_s * (1.0 - fraction) / fraction:6.1f} s left"
        elif self._is_tty:
            text += " " * 14  # blank out a previous "s left" tail
        return text

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: progress is never worth a crash
            self._closed = True


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False
