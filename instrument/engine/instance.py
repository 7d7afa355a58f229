"""A plan instance: the mutable state a plan plays with (voices, node state, smoothers, buffers).

All arrays are allocated here, on the control side; ``render`` makes one native call and
allocates nothing.
"""

from __future__ import annotations

import numpy as np

from instrument.engine.block_state import new_block_state
from instrument.engine.fused import renderer_for_key
from instrument.engine.expression import MPE_MEMBER_RANGE_ST
from instrument.engine.guard import recover_blown
from instrument.kernels.lane_blocks import whole_blocks
from instrument.layout import (
    CFG_N_PARAMS, CFG_N_VOICES, CTX_SAMPLE_RATE, CTX_STEADY, E_BEND_COEFF, E_BEND_RANGE_ST,
    DEFAULT_TEMPO_BPM, E_GLIDE_COEFF, E_LAST_PITCH, E_MPE_LOWER, E_MPE_LOWER_RANGE_ST,
    E_MPE_UPPER_RANGE_ST, E_TEMPO_BPM, E_TIMBRE, LANE_MULTIPLE, LIVE, eng_width,
    PS_CURRENT, PS_FILLED, PS_TARGET, PS_WIDTH, ROW_ONE, V_WIDTH,
)
from instrument.graph.plan import Plan
from instrument.params.smoothing import one_pole_coeff

BEND_SMOOTHING_MS = 5.0  # MIDI bend arrives in steps; 5 ms hides them without audible lag


def allocated_lanes(polyphony: int) -> int:
    """Lanes of the voice arrays: from LANE_MULTIPLE voices on, the polyphony rounded up to a
    whole LANE_BLOCK, so that ``kernel_lanes`` can run 5 or 6 voices of a polyphony of 6 on 8
    lanes (drone at 6 held notes: 29.1 -> 24.4 us per block) and a kernel in lane blocks
    (``kernels.lane_blocks``) its last block whole; fewer voices as they are. The lanes past
    the polyphony stay fresh silent voices, as the allocator never takes them."""
    if polyphony < LANE_MULTIPLE:
        return polyphony
    return whole_blocks.py_func(polyphony)  # its Python body: nothing compiled at start-up


class PlanInstance:
    """Runtime state of one plan. ``ptarget`` holds the normalized parameter targets; pass a
    shared-memory view to let another process steer the parameters (with ``init_targets``
    False, the values already in it are kept: a restarted audio process resumes them)."""

    def __init__(self, plan: Plan, ptarget: np.ndarray | None = None, init_targets: bool = True):
        self.plan = plan
        block = plan.block_size
        n_params = int(plan.cfg[CFG_N_PARAMS])
        lanes = allocated_lanes(int(plan.cfg[CFG_N_VOICES]))  # the polyphony stays in cfg
        initial = np.array([slot.initial_norm for slot in plan.params], dtype=np.float64)
        if ptarget is None:
            ptarget = np.zeros(max(n_params, 1))
        if init_targets:
            ptarget[:n_params] = initial
        self.ptarget = ptarget
        self.pstate = np.zeros((max(n_params, 1), PS_WIDTH))
        self.vP = np.zeros((max(plan.n_voice_param_rows, 1), block, lanes))
        self.gP = np.zeros((max(plan.n_global_param_rows, 1), block, 1))
        self.PN = np.zeros((max(n_params, 1), block))
        self.vbufs = np.zeros((plan.n_voice_rows, block, lanes))
        self.gbufs = np.zeros((plan.n_global_rows, block, 1))
        self.voices = np.zeros((lanes, V_WIDTH))
        self.vctx = np.zeros((CTX_STEADY + max(plan.n_voice_param_rows, 1), lanes))
        self.vstate = np.zeros((plan.vinit.shape[0], lanes))
        self.gctx = np.zeros((CTX_STEADY + max(plan.n_global_param_rows, 1), 1))
        self.gstate = np.zeros((plan.ginit.shape[0], 1))
        self.eng = np.zeros(eng_width(plan.ops.shape[0]))
        self.eng[E_MPE_LOWER_RANGE_ST] = self.eng[E_MPE_UPPER_RANGE_ST] = MPE_MEMBER_RANGE_ST
        self.held = np.zeros(128)
        self.mix = np.zeros((2, block))
        self._no_lim = np.zeros(8)
        self._no_out = np.zeros((0, 2), dtype=np.float32)
        self.reset()
        self.state = new_block_state({
            "cfg": plan.cfg, "ops": plan.ops, "io": plan.io, "pr": plan.pr, "fa": plan.fa,
            "pmeta": plan.pmeta, "vinit": plan.vinit, "ginit": plan.ginit,
            "pstate": self.pstate, "ptarget": self.ptarget, "vP": self.vP, "gP": self.gP,
            "PN": self.PN, "vbufs": self.vbufs, "gbufs": self.gbufs, "voices": self.voices,
            "vctx": self.vctx, "vstate": self.vstate, "gctx": self.gctx, "gstate": self.gstate,
            "eng": self.eng, "held": self.held, "mix": self.mix,
        })  # addresses only: this instance keeps every array alive and never rebinds one
        self._render = self._bind_render_block  # replaced by the entry point it binds
        self.live = None  # the audio callback's entry point, once bound (bind_live)
        self._live_arrays = None
        self._guard_args = (self.voices, self.vctx, self.vstate, plan.vinit, plan.vlayout,
                            self.gstate, plan.ginit, plan.glayout, self.eng)
        self._recover = _entry_point(recover_blown, self._guard_args)  # compiled now, not
        # on the audio side when something first blows up

    def reset(self) -> None:
        """Silence: every voice free, node states fresh, smoothers at their targets."""
        plan = self.plan
        sr = plan.sample_rate
        n_params = int(plan.cfg[CFG_N_PARAMS])
        self.pstate[:n_params, PS_CURRENT] = self.ptarget[:n_params]
        self.pstate[:n_params, PS_TARGET] = self.ptarget[:n_params]
        self.pstate[:, PS_FILLED] = -1.0
        for bufs in (self.vbufs, self.gbufs):
            bufs[:] = 0.0
            bufs[ROW_ONE] = 1.0
        self.voices[:] = 0.0
        self.vctx[:] = 0.0
        self.vctx[CTX_SAMPLE_RATE] = sr
        self.vstate[:] = plan.vinit[:, None]
        self.gctx[:] = 0.0
        self.gctx[CTX_SAMPLE_RATE] = sr
        self.gstate[:] = plan.ginit[:, None]
        tempo_bpm = self.eng[E_TEMPO_BPM] or DEFAULT_TEMPO_BPM  # a reset keeps the tempo
        self.eng[:E_MPE_LOWER] = 0.0  # the MPE zones are configuration: they stay
        self.eng[E_TIMBRE:] = 0.0
        self.eng[E_TEMPO_BPM] = tempo_bpm
        self.eng[E_BEND_RANGE_ST] = plan.bend_range_st
        self.eng[E_GLIDE_COEFF] = one_pole_coeff(plan.glide_ms, sr) if plan.glide_ms > 0 else 0.0
        self.eng[E_BEND_COEFF] = one_pole_coeff(BEND_SMOOTHING_MS, sr)
        self.eng[E_LAST_PITCH] = -1.0
        self.held[:] = 0.0

    def recover(self) -> int:
        """After a non-finite or runaway block: free the blown voices and reset the global
        modules whose state is non-finite (``engine.guard``); the whole instance only when
        nothing could be blamed. Returns the number of modules reset (0: everything)."""
        n_reset = self._recover(*self._guard_args)
        if n_reset == 0:
            self.reset()
        return n_reset

    def render(self, events: np.ndarray, n_events: int) -> None:
        """Render one block into ``self.mix``: one native call."""
        self._render(self.state, events, n_events, self._no_lim, self._no_out)

    def bind_live(self, ring: np.ndarray, events: np.ndarray, clock: np.ndarray,
                  status: np.ndarray, lim: np.ndarray, out: np.ndarray) -> None:
        """Compile (or load) the renderer's ``live_block`` for the audio callback's arrays and
        set ``self.live`` to its entry point, called as ``live(self.state, ring, events,
        clock, status, lim, out, xrun_flags, sample_rate, deadline_ns, LIVE)`` (control
        side). From then on ``render`` and ``render_out`` go through it too (its render-only
        mode): an instance bound before its first render never loads ``render_block``."""
        live_block = renderer_for_key(self.plan.renderer_key).live_block
        self.live = _entry_point(live_block, (self.state, ring, events, clock, status, lim, out,
                                              0, 1.0, 1.0, LIVE))
        self._live_arrays = (ring, clock, status)
        self._render = self._render_through_live

    def _render_through_live(self, state, events, n_events, lim, out):
        ring, clock, status = self._live_arrays
        return self.live(state, ring, events, clock, status, lim, out, 0, 0.0, 0.0, n_events)

    def _bind_render_block(self, state, events, n_events, lim, out):
        """(The first render of an instance never bound live: offline rendering, tests.) Bind
        ``render_block``'s entry point, then render with it."""
        self._render = _entry_point(renderer_for_key(self.plan.renderer_key).render_block, (
            self.state, np.zeros((1, 5)), 0, self._no_lim, self._no_out))
        return self._render(state, events, n_events, lim, out)

    def render_out(self, events: np.ndarray, n_events: int, lim: np.ndarray,
                   out: np.ndarray) -> int:
        """Render one block through the output stage into ``out``: the one native call of a
        block without crossfade. Returns the non-finite mask of ``finish_block``."""
        return self._render(self.state, events, n_events, lim, out)


def _entry_point(dispatcher, args):
    """The compiled function for exactly these argument types, without the dispatcher.

    Numba's dispatcher matches the types of every argument on every call; the instance's
    arrays never change type, so it resolves the overload once (compiling it, or loading it
    from the cache) and calls its entry point.
    """
    from numba import typeof

    sig = tuple(typeof(a) for a in args)
    if sig not in dispatcher.overloads:
        dispatcher.compile(sig)
    return dispatcher.overloads[sig].entry_point
