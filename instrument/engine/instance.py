"""A plan instance: the mutable state a plan plays with (voices, node state, smoothers, buffers).

All arrays are allocated here, on the control side; ``render`` makes one native call and
allocates nothing.
"""

from __future__ import annotations

import numpy as np

from instrument.engine.layout import (
    CFG_N_PARAMS, E_BEND_COEFF, E_BEND_RANGE_ST, E_GLIDE_COEFF, E_LAST_PITCH, E_WIDTH,
    PS_CURRENT, PS_FILLED, PS_TARGET, PS_WIDTH, V_WIDTH,
)
from instrument.graph.plan import Plan
from instrument.modules.layout import CTX_SAMPLE_RATE, CTX_VOICE_INDEX, CTX_WIDTH, ROW_ONE
from instrument.params.smoothing import one_pole_coeff

BEND_SMOOTHING_MS = 5.0  # MIDI bend arrives in steps; 5 ms hides them without audible lag


class PlanInstance:
    """Runtime state of one plan. ``ptarget`` holds the normalized parameter targets; pass a
    shared-memory view to let another process steer the parameters."""

    def __init__(self, plan: Plan, ptarget: np.ndarray | None = None):
        self.plan = plan
        block = plan.block_size
        n_params = int(plan.cfg[CFG_N_PARAMS])
        n_voices = int(plan.cfg[3])
        initial = np.array([slot.initial_norm for slot in plan.params], dtype=np.float64)
        if ptarget is None:
            ptarget = np.zeros(max(n_params, 1))
        ptarget[:n_params] = initial
        self.ptarget = ptarget
        self.pstate = np.zeros((max(n_params, 1), PS_WIDTH))
        self.P = np.zeros((max(plan.n_param_rows, 1), block))
        self.PN = np.zeros((max(n_params, 1), block))
        self.bufs = np.zeros((plan.n_rows, block))
        self.voices = np.zeros((n_voices, V_WIDTH))
        self.vctx = np.zeros((n_voices, CTX_WIDTH))
        self.vstate = np.zeros((n_voices, plan.vinit.shape[0]))
        self.gctx = np.zeros(CTX_WIDTH)
        self.gstate = np.zeros_like(plan.ginit)
        self.eng = np.zeros(E_WIDTH)
        self.held = np.zeros(128)
        self.mix = np.zeros((2, block))
        self.reset()
        self._head = (plan.cfg, plan.ops, plan.io, plan.pr, plan.fa, plan.pmeta, self.pstate,
                      self.ptarget, self.P, self.PN, self.bufs, self.voices, self.vctx,
                      self.vstate, plan.vinit, self.gctx, self.gstate, plan.ginit, self.eng,
                      self.held)
        self._render = plan.renderer.render_block

    def reset(self) -> None:
        """Silence: every voice free, node states fresh, smoothers at their targets."""
        plan = self.plan
        sr = plan.sample_rate
        n_params = int(plan.cfg[CFG_N_PARAMS])
        self.pstate[:n_params, PS_CURRENT] = self.ptarget[:n_params]
        self.pstate[:n_params, PS_TARGET] = self.ptarget[:n_params]
        self.pstate[:, PS_FILLED] = -1.0
        self.bufs[:] = 0.0
        self.bufs[ROW_ONE] = 1.0
        self.voices[:] = 0.0
        self.vctx[:] = 0.0
        self.vctx[:, CTX_SAMPLE_RATE] = sr
        self.vctx[:, CTX_VOICE_INDEX] = np.arange(self.vctx.shape[0])
        self.vstate[:] = plan.vinit
        self.gctx[:] = 0.0
        self.gctx[CTX_SAMPLE_RATE] = sr
        self.gstate[:] = plan.ginit
        self.eng[:] = 0.0
        self.eng[E_BEND_RANGE_ST] = plan.bend_range_st
        self.eng[E_GLIDE_COEFF] = one_pole_coeff(plan.glide_ms, sr) if plan.glide_ms > 0 else 0.0
        self.eng[E_BEND_COEFF] = one_pole_coeff(BEND_SMOOTHING_MS, sr)
        self.eng[E_LAST_PITCH] = -1.0
        self.held[:] = 0.0

    def render(self, events: np.ndarray, n_events: int) -> None:
        """Render one block into ``self.mix``: the one native call."""
        self._render(*self._head, events, n_events, self.mix)
