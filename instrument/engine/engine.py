"""The engine: plays a plan block by block, swaps plans with a crossfade, guards the output.

Real-time contract of ``process_block`` (the method the audio callback calls): it allocates
nothing, takes no lock, logs nothing and raises nothing for anything the outside world sends;
bad events are counted (``bad_events``); a block whose output turns non-finite (or runs away
beyond +60 dBFS) is muted and counted (``nonfinite_resets``), and only what blew up is reset:
the voices and global modules at fault (``engine.guard``; ``modules_reset`` counts them), the
whole plan only when no module can be blamed. Its Python cost is a fixed handful of calls per
block, whatever the number of nodes and voices: one native call (render and output stage
together), three during a plan crossfade (new plan, old plan, output stage). Measured: 3
Python-level calls per block in ``instrument bench``. ``events`` must be a C-contiguous float64
(n, 5) array and ``out`` C-contiguous float32 (frames, channels), as the audio callback and the
renderer pass them: the native call is made through its compiled entry point, which skips type
dispatch.

Everything that allocates (``load``, ``swap``, ``set_param``...) belongs to the control side.
"""

from __future__ import annotations

import math

import numpy as np

from instrument.engine.events import EVENT_WIDTH, NOTE_OFF, NOTE_ON
from instrument.engine.instance import PlanInstance
from instrument.layout import (
    CTX_VELOCITY, E_ACTIVE_VOICES, E_BAD_EVENTS, E_BEND, E_BEND_TARGET, E_MOD_WHEEL, E_MPE_LOWER,
    E_PRESSURE, E_SUSTAIN, E_TEMPO_BPM, E_WIDTH, V_CHANNEL, V_KEY_DOWN, V_NOTE, V_SUSTAINED,
)
from instrument.engine.output_stage import LIM_ENGAGED, LIM_GAIN, finish_block, limiter_state
from instrument.errors import ParamError
from instrument.graph.plan import Plan
from instrument.names import nearest

DEFAULT_CROSSFADE_MS = 20.0


class Engine:
    """Renders blocks of ``block_size`` frames at ``sample_rate`` from the current plan."""

    def __init__(self, sample_rate: float, block_size: int, max_events: int = 1024,
                 crossfade_ms: float = DEFAULT_CROSSFADE_MS):
        self.sample_rate = float(sample_rate)
        self.block_size = int(block_size)
        self.crossfade_frames = max(1, int(round(crossfade_ms * 0.001 * self.sample_rate)))
        self.current: PlanInstance | None = None
        self.old: PlanInstance | None = None
        self.pending: PlanInstance | None = None
        self.fade_pos = self.crossfade_frames
        self.lim = limiter_state(self.sample_rate)
        self.merged = np.zeros((max_events + 128, EVENT_WIDTH))
        self.n_restrike = 0
        self.no_events = np.zeros((1, EVENT_WIDTH))
        self.nonfinite_resets = 0
        self.modules_reset = 0
        self.retired: list[PlanInstance] = []  # old instances, released on the control side

    # ---- control side -------------------------------------------------------------------
    def load(self, plan: Plan, ptarget=None, init_targets: bool = True) -> PlanInstance:
        """Start playing ``plan`` at once (no crossfade): for the first plan, or offline.
        ``ptarget``/``init_targets``: see ``PlanInstance``."""
        self._check(plan)
        self.current = PlanInstance(plan, ptarget, init_targets)
        self.old = None
        self.pending = None
        self.fade_pos = self.crossfade_frames
        return self.current

    def swap(self, plan: Plan, carry_params: bool = True, ptarget=None,
             init_targets: bool = True) -> PlanInstance:
        """Prepare ``plan`` and have the next block adopt it with an equal-power crossfade.

        ``carry_params`` (hot reload) keeps what the player moved: a parameter whose value
        differs from its preset value in the old plan keeps that value in the new plan (matched
        by ``node.param``); the others take the new file's values, so an edit in the file is
        heard. Held notes, sustain, pitch bend and mod wheel always carry over: held notes are
        struck again in the new plan so a chord keeps sounding.
        """
        self._check(plan)
        new = PlanInstance(plan, ptarget, init_targets)
        cur = self.current
        if cur is not None:
            if carry_params:
                old = {slot.path: slot for slot in cur.plan.params}
                for slot in plan.params:
                    was = old.get(slot.path)
                    if was is not None and cur.ptarget[was.index] != was.initial_norm:
                        new.ptarget[slot.index] = cur.ptarget[was.index]
                new.reset()
            for k in (E_SUSTAIN, E_BEND, E_BEND_TARGET, E_MOD_WHEEL, E_PRESSURE, E_TEMPO_BPM):
                new.eng[k] = cur.eng[k]
            # MPE zones and channel expression
            new.eng[E_MPE_LOWER:E_WIDTH] = cur.eng[E_MPE_LOWER:E_WIDTH]
            new.held[:] = cur.held
        self.pending = new
        return new

    def release_retired(self) -> None:
        """Drop instances the audio side has finished with (call from the control side)."""
        self.retired.clear()

    def param_index(self, path: str) -> int:
        plan = self.current.plan
        try:
            return plan.param_index(path)
        except KeyError:
            raise ParamError(f"unknown parameter '{path}'", plan.name,
                             nearest(path, [s.path for s in plan.params])) from None

    def set_param(self, path: str, value: float) -> None:
        """Set a parameter's target in display units (smoothed from the current value)."""
        index = self.param_index(path)
        spec = self.current.plan.params[index].spec
        self.current.ptarget[index] = spec.to_norm(value)

    def get_param(self, path: str) -> float:
        index = self.param_index(path)
        return self.current.plan.params[index].spec.from_norm(self.current.ptarget[index])

    def set_macro(self, name: str, norm: float) -> None:
        """Move a macro (0..1): each of its targets goes to its own point of its range."""
        if not math.isfinite(norm):
            raise ParamError(f"macro '{name}' value is not finite", "", "send a number 0..1")
        plan = self.current.plan
        try:
            macro = plan.macro(name)
        except KeyError:
            raise ParamError(f"unknown macro '{name}'", plan.name,
                             nearest(name, [m.name for m in plan.macros])) from None
        for index, target in macro.targets_for(norm):
            self.current.ptarget[index] = target

    # ---- audio side ---------------------------------------------------------------------
    def process_block(self, events: np.ndarray, n_events: int, out: np.ndarray) -> None:
        """Render one block into ``out`` (block_size, channels) float32.

        ``events[:n_events]`` are (offset, kind, channel, a, b) rows sorted by offset.
        """
        if self.pending is not None:
            self._adopt()
        cur = self.current
        if self.n_restrike:
            events, n_events = self._with_restrikes(events, n_events)
        if self.old is None:
            bad = cur.render_out(events, n_events, self.lim, out)
        else:
            cur.render(events, n_events)
            self.old.render(self.no_events, 0)
            bad = finish_block(cur.mix, self.old.mix, self.fade_pos, self.crossfade_frames,
                               self.lim, out)
            self.fade_pos += self.block_size
            if self.fade_pos >= self.crossfade_frames:
                self.retired.append(self.old)  # freed by the control side, not here
                self.old = None
        if bad:
            self.recover_nonfinite(bad)

    def process_blocks(self, events: np.ndarray, n_events: int, out: np.ndarray) -> None:
        """Render ``len(out) // block_size`` blocks into ``out`` in one native call (offline
        rendering): the same samples as ``process_block`` block after block, without the
        Python call per block. ``events[:n_events]`` offsets count from ``out``'s first frame.
        A non-finite block is recovered as ``process_block`` does, and rendering goes on from
        the next block. Not for a plan swap under way (offline plays one plan)."""
        if self.pending is not None or self.old is not None or self.n_restrike:
            raise RuntimeError("process_blocks cannot render a plan crossfade; use process_block")
        block = self.block_size
        while True:
            result = self.current.render_out(events, n_events, self.lim, out)
            if result == 0:
                return
            self.recover_nonfinite(result & 3)
            start = (result // 4 + 1) * block
            if start >= out.shape[0]:
                return
            first = int(np.searchsorted(events[:n_events, 0], start, side="left"))
            events = events[first:n_events].copy()
            events[:, 0] -= start
            n_events = events.shape[0]
            out = out[start:]

    def _adopt(self) -> None:
        new = self.pending
        self.pending = None
        old = self.current
        self.current = new
        if old is None:
            return
        if self.old is not None:
            self.retired.append(self.old)
        self.old = old
        self.fade_pos = 0
        # Strike the held notes again in the new plan (note-ons at offset 0, on their channel:
        # an MPE note takes its channel's bend again). Pedal-held notes are struck and
        # released: the carried pedal keeps them sounding.
        n = 0
        for v in range(int(old.eng[E_ACTIVE_VOICES])):
            key_down = old.voices[v, V_KEY_DOWN] != 0.0
            held = key_down or old.voices[v, V_SUSTAINED] != 0.0
            if held and n < 126:
                note = old.voices[v, V_NOTE]
                ch = old.voices[v, V_CHANNEL]
                self.merged[n, :] = (0.0, NOTE_ON, ch, note, max(old.vctx[CTX_VELOCITY, v], 1e-3))
                n += 1
                if not key_down:
                    self.merged[n, :] = (0.0, NOTE_OFF, ch, note, 0.0)
                    n += 1
        self.n_restrike = n

    def _with_restrikes(self, events, n_events):
        n = self.n_restrike
        self.n_restrike = 0
        count = min(n_events, self.merged.shape[0] - n)
        self.merged[n:n + count] = events[:count]
        return self.merged, n + count

    def recover_nonfinite(self, bad: int) -> None:
        """After a block whose output was non-finite or ran away (``bad``: bit 0 the current
        plan, bit 1 the one fading out): count it, reset the limiter, recover the plan(s)."""
        self.nonfinite_resets += 1
        self.lim[LIM_GAIN] = 1.0  # the runaway's last samples drove it down; start afresh
        if bad & 1:
            self.modules_reset += self.current.recover()
        if bad & 2 and self.old is not None:
            self.modules_reset += self.old.recover()

    # ---- status -------------------------------------------------------------------------
    @property
    def active_voices(self) -> int:
        return int(self.current.eng[E_ACTIVE_VOICES]) if self.current else 0

    @property
    def bad_events(self) -> int:
        return int(self.current.eng[E_BAD_EVENTS]) if self.current else 0

    @property
    def limiter_engaged_samples(self) -> int:
        return int(self.lim[LIM_ENGAGED])

    def _check(self, plan: Plan) -> None:
        if plan.sample_rate != self.sample_rate or plan.block_size != self.block_size:
            raise ValueError(f"plan compiled for {plan.sample_rate:g} Hz / {plan.block_size} "
                             f"frames, engine runs {self.sample_rate:g} Hz / {self.block_size}")
