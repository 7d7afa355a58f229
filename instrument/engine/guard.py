"""Recovery after the output stage saw a non-finite or runaway mix: reset what blew up, only.

``finish_block`` mutes a block whose mix holds NaN, inf or a sample beyond ``RUNAWAY``
(+60 dBFS). Then ``recover_blown`` (one native call, on that rare block only) finds the source:

- a voice whose output peaked beyond ``RUNAWAY`` or whose state holds a non-finite value is
  blown: it is freed (its modules start from their initial state at its next note), the other
  voices play on;
- a global-graph module whose state holds a non-finite value is reset to its initial state.
  One NaN from a voice reaches every effect downstream of it in the same block; an effect
  beside it, such as a reverb whose input stayed finite, keeps its tail;
- a finite runaway has no NaN to point at: if no voice ran away, the global graph did, and if
  a voice did, it fed the effects +60 dBFS. Either way every global module is reset.

It returns the number of modules it reset, counting every stateful module of a freed voice
(at least one per voice), or 0 when nothing could be blamed (a runaway in a global graph
without state cannot happen; a caller resets the whole instance then, as the last resort).
"""

import math

from numba import njit

from instrument.engine.lanes import free_lane
from instrument.layout import CTX_PEAK, E_ACTIVE_VOICES
from instrument.engine.output_stage import RUNAWAY


@njit(cache=True, inline="always")
def _finite_rows(state, start, end, lane):
    for r in range(start, end):
        if not math.isfinite(state[r, lane]):
            return False
    return True


@njit(cache=True)
def recover_blown(voices, vctx, vstate, vinit, vlayout, gstate, ginit, glayout, eng):
    """Free the blown voices and reset the global modules at fault (see the module
    docstring); allocation-free. Returns the number of modules reset."""
    n_reset = 0
    voice_ran_away = False
    n = int(eng[E_ACTIVE_VOICES])
    v = 0
    while v < n:
        peak = vctx[CTX_PEAK, v]
        blown = not (peak <= RUNAWAY)
        voice_ran_away = voice_ran_away or (blown and math.isfinite(peak))
        if not blown:
            blown = not _finite_rows(vstate, 0, vstate.shape[0], v)
        if not blown:
            v += 1
            continue
        stateful = 0
        for k in range(vlayout.shape[0]):
            if vlayout[k, 1] > vlayout[k, 0]:
                stateful += 1
        n_reset += max(stateful, 1)  # a voice of stateless modules still counts as one
        n = free_lane(voices, vctx, vstate, vinit, v, n)  # as free_silent_voices does
    eng[E_ACTIVE_VOICES] = n
    n_global_nonfinite = 0
    for k in range(glayout.shape[0]):
        if not _finite_rows(gstate, glayout[k, 0], glayout[k, 1], 0):
            n_global_nonfinite += 1
    # A finite runaway with nothing else to blame happened in the global graph itself.
    reset_all = voice_ran_away or (n_reset == 0 and n_global_nonfinite == 0)
    for k in range(glayout.shape[0]):
        start, end = glayout[k, 0], glayout[k, 1]
        if end > start and (reset_all or not _finite_rows(gstate, start, end, 0)):
            for r in range(start, end):
                gstate[r, 0] = ginit[r]
            n_reset += 1
    return n_reset
