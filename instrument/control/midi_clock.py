"""MIDI clock in: the tempo from clock ticks (F8, 24 per beat), the transport from start (FA),
continue (FB), stop (FC) and song position (F2); ``/tempo`` when no clock comes.

The tempo is a least-squares line through the times of the last ``WINDOW_TICKS`` ticks (two
beats), or of the last ``WINDOW_S`` when that holds more (above 120 BPM): the timestamps JACK
and ALSA give carry the jitter of their periods (1.3 ms at 64 frames, 6% of a tick at 120 BPM),
and the fit averages it down (tests: ticks quantized to 1.33 ms cycles plus 0.5 ms of random
delay give the tempo within 0.1 BPM at 20 to 300 BPM; the worst of 300 random tempi, 0.15).
Ticks far off the line (a late poll, a stalled sender's burst) are left out of the final fit.
Each tick is numbered by the time since the previous one, so a lost tick (two periods apart)
does not bend the line, unless the ticks after it come half a period or more before their time:
then the gap was a late tick (a sender that stalled and catches up in a burst) and the numbers
are taken back; a gap of more than ``MAX_GAP_TICKS`` periods means the clock stopped, two long
gaps in a row a much slower tempo: the line then starts again with the next tick (a faster tempo
just moves the line, within two beats). When the clock stops, the last tempo stays. The estimate
goes to the engine when it moves by ``PUBLISH_STEP_BPM`` or more: a steady clock then leaves the
synced delay times alone instead of gliding them by a hundredth of a BPM at every beat.

Cost per tick (measured): 6 us at 120 BPM, 12 us at 300 BPM, the fit (pure Python, every
``FIT_EVERY_TICKS`` ticks) included. Nothing is logged per tick. Calls come from the MIDI
polling thread, ``set_tempo`` from the OSC thread; ``lock`` guards what both touch.

Transport follows MIDI 1.0: after a start (position 0) or a continue (the position a stop left,
or the last song position pointer), the next tick is the downbeat: ``on_transport(beats, t)``
is called then, with the song position in beats (quarter notes), and synced LFOs take their
phase from it.
"""

from __future__ import annotations

import threading
from collections import deque

from instrument.layout import DEFAULT_TEMPO_BPM, MAX_TEMPO_BPM, MIN_TEMPO_BPM

TICKS_PER_BEAT = 24
TICKS_PER_SIXTEENTH = 6  # the unit of the song position pointer
WINDOW_TICKS = 48
WINDOW_S = 1.0  # at high tempi the window spans this time (120 ticks at 300 BPM)
MAX_WINDOW_TICKS = 160  # a flood of clock bytes cannot make the fit expensive
FIRST_FIT_TICKS = 12  # half a beat: the first estimate (within ~0.2 BPM at 1.3 ms jitter)
FIT_EVERY_TICKS = 6
MAX_GAP_TICKS = 8.0  # a longer silence is a stopped clock, not lost or late ticks
MAX_TICK_S = 60.0 / (MIN_TEMPO_BPM * TICKS_PER_BEAT) * MAX_GAP_TICKS  # the same with no estimate
PUBLISH_STEP_BPM = 0.05
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC


def clamp_tempo(bpm: float) -> float:
    return min(max(bpm, MIN_TEMPO_BPM), MAX_TEMPO_BPM)


class TempoEstimator:
    """Tempo in BPM from the times of clock ticks (``tick(t)``, seconds, any clock)."""

    def __init__(self):
        self.ticks: deque[tuple[int, float]] = deque(maxlen=MAX_WINDOW_TICKS)  # (number, t)
        self.period_s: float | None = None  # seconds per tick, from the last fit
        self.since_fit = 0
        self.skipped = 0  # gaps in a row that looked like lost ticks
        self.extra = 0  # numbers skipped at the last long gap, not yet taken back
        self.extra_since = 0.0  # the time of the tick after that gap
        self.before_gap = (0, 0.0)  # (number, time) of the tick before it

    def reset(self) -> None:
        """Forget the ticks and the period: the next tick starts a new line."""
        self.ticks.clear()
        self.period_s = None
        self.since_fit = 0
        self.skipped = 0
        self.extra = 0

    def tick(self, t: float) -> float | None:
        """Take one tick; returns a new estimate in BPM (not clamped) when one was fitted."""
        ticks = self.ticks
        if ticks:
            number, last = ticks[-1]
            gap = t - last
            period = self.period_s
            steps = max(round(gap / period), 1) if period else 1
            # A longer silence is a stopped clock; two long gaps in a row are a slower tempo,
            # not lost ticks (those come alone): either way the line starts again.
            self.skipped = self.skipped + 1 if steps > 1 else 0
            gap = max(gap, 0.0)  # a time placed again (midi_in.ApiTime) may step back a bit
            if gap > (period * MAX_GAP_TICKS if period else MAX_TICK_S) or \
                    self.skipped >= 2:
                self.reset()
                ticks.append((0, t))
                return None
            if steps > 1:
                self.extra, self.extra_since = steps - 1, t
                self.before_gap = (number, last)
            elif self.extra:
                before_n, before_t = self.before_gap
                if t < before_t + (number + 1 - before_n - 0.5) * period:
                    self._take_back()  # early for its number: that gap was a late tick
                    number -= 1
                else:
                    self.extra = 0  # on the line: the gap was a lost tick
            ticks.append((number + steps, t))
        else:
            ticks.append((0, t))
        while len(ticks) > WINDOW_TICKS and t - ticks[0][1] > WINDOW_S:
            ticks.popleft()
        self.since_fit += 1
        if len(ticks) < FIRST_FIT_TICKS or self.since_fit < FIT_EVERY_TICKS:
            return None
        self.since_fit = 0
        slope = _robust_slope(ticks, self.period_s)
        if slope is None or not slope > 0.0:
            return None
        self.period_s = slope
        return 60.0 / (slope * TICKS_PER_BEAT)


    def _take_back(self) -> None:
        """A tick after a long gap that comes half a period or more before its number's
        time: the gap was a late tick (the sender stalled and catches up in a burst), not a
        lost one. One of the numbers skipped there is taken back from the ticks since."""
        ticks = self.ticks
        for k in range(len(ticks) - 1, -1, -1):
            number, when = ticks[k]
            if when < self.extra_since:
                break
            ticks[k] = (number - 1, when)
        self.extra -= 1


def _fit(points) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of time on tick number."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx <= 0.0:
        return None
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return slope, my - slope * mx


def _median(values) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _robust_slope(points, guess: float | None) -> float | None:
    """Seconds per tick through ``points`` (tick number, time), ignoring ticks far off the
    line (late polls, a stalled sender's burst). A line at the ``guess`` slope (the last
    estimate, else the median gap) through the median residual picks the points within a
    quarter period (or 3 robust deviations); a least-squares line through those picks again
    within a tenth of a period; the slope of a last fit is the answer."""
    pts = list(points)
    if guess is None:
        gaps = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(pts, pts[1:]) if b[0] > a[0]]
        if not gaps:
            return None
        guess = _median(gaps)
    for fraction, line in ((0.25, None), (0.1, _fit(pts))):
        if line is None:
            slope, icept = guess, _median([y - guess * x for x, y in pts])
        else:
            slope, icept = line
        residuals = [abs(y - (slope * x + icept)) for x, y in pts]
        limit = max(3.0 * 1.4826 * _median(residuals), fraction * abs(slope))
        kept = [p for p, r in zip(pts, residuals) if r <= limit]
        if len(kept) >= max(len(pts) // 2, 2):
            pts = kept
    final = _fit(pts)
    return final[0] if final else None


class MidiClock:
    """Tempo and transport from MIDI real-time messages, or the tempo set by hand.

    ``on_tempo(bpm, t)`` hears every tempo the engine should play (clamped to 20..300 BPM);
    ``on_transport(beats, t)`` every start/continue downbeat. ``t`` is the message time (host
    clock) or None for ``set_tempo``.
    """

    def __init__(self, on_tempo, on_transport):
        self.on_tempo = on_tempo
        self.on_transport = on_transport
        self.estimator = TempoEstimator()
        self.lock = threading.Lock()
        self.tempo_bpm = DEFAULT_TEMPO_BPM  # what the engine plays
        self.estimate_bpm: float | None = None  # the clock's latest fit, unrounded
        self.source = "default"  # "default", "set" (/tempo) or "midi clock"
        self.ticks = 0
        self.last_tick_t: float | None = None
        self.running = False  # transport: between a start/continue and a stop
        self.position_ticks = 0  # song position, in ticks
        self.downbeat_pending = False

    # ---- from MIDI (the polling thread) ----------------------------------------------------
    def realtime(self, byte: int, t: float) -> None:
        """One real-time byte: clock, start, continue or stop (others are ignored)."""
        if byte == CLOCK:
            self._tick(t)
        elif byte == START:
            self.position_ticks = 0
            self.running = True
            self.downbeat_pending = True
        elif byte == CONTINUE:
            self.running = True
            self.downbeat_pending = True
        elif byte == STOP:
            self.running = False
            self.downbeat_pending = False

    def song_position(self, sixteenths: int) -> None:
        """Song position pointer (F2): where the next continue starts, in 16th notes."""
        self.position_ticks = int(sixteenths) * TICKS_PER_SIXTEENTH

    def _tick(self, t: float) -> None:
        self.ticks += 1
        self.last_tick_t = t
        if self.downbeat_pending:
            self.downbeat_pending = False
            self.on_transport(self.position_ticks / TICKS_PER_BEAT, t)
        if self.running:
            self.position_ticks += 1
        bpm = self.estimator.tick(t)
        if bpm is None:
            return
        self.estimate_bpm = bpm
        bpm = clamp_tempo(bpm)
        with self.lock:
            if self.source == "midi clock" and abs(bpm - self.tempo_bpm) < PUBLISH_STEP_BPM:
                return
            self.tempo_bpm = bpm
            self.source = "midi clock"
        self.on_tempo(bpm, t)

    # ---- by hand (/tempo) -------------------------------------------------------------------
    def set_tempo(self, bpm: float) -> bool:
        """Play at ``bpm`` (clamped to 20..300) until a MIDI clock says otherwise; False for a
        value that is not a finite number."""
        try:
            bpm = float(bpm)
        except (TypeError, ValueError):
            return False
        if not bpm == bpm or bpm in (float("inf"), float("-inf")):
            return False
        bpm = clamp_tempo(bpm)
        with self.lock:
            self.tempo_bpm = bpm
            self.source = "set"
        self.on_tempo(bpm, None)
        return True

    def status(self, now: float) -> dict:
        age = None if self.last_tick_t is None else round(now - self.last_tick_t, 3)
        return {
            "tempo_bpm": round(self.tempo_bpm, 2),
            "source": self.source,
            "clock_ticks": self.ticks,
            "last_tick_age_s": age,
            "transport": "running" if self.running else "stopped",
            "song_position_beats": round(self.position_ticks / TICKS_PER_BEAT, 3),
        }
