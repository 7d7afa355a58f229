"""A module's kernel arguments for running the kernel alone: module validation (the registry),
the kernel tests and the kernel benchmarks.

``kernel_args`` lays them out as the contract of ``instrument.layout`` says and as the engine
passes them: the reserved rows (``ROW_ONE`` set) and then ``n_io`` rows for the node's inputs
and outputs in declaration order, one parameter row per declared parameter (at its default or
the value given), the state of a fresh voice (``prepare`` and ``reset_state``, one column per
lane) and the context with the sample rate.
"""

from __future__ import annotations

import numpy as np

from instrument.layout import CTX_SAMPLE_RATE, CTX_STEADY, CTX_WIDTH, N_RESERVED_ROWS, ROW_ONE
from instrument.settings import DEFAULTS


def kernel_args(cls, n_io: int, lanes: int = 1, params: dict | None = None,
                sample_rate: float = DEFAULTS.sample_rate_hz,
                block: int = DEFAULTS.block_frames, steady: bool = False):
    """``(bufs, io, P, pr, st, ctx)`` for ``cls.kernel`` on ``lanes`` voices; ``params`` maps
    parameter names to constants (the others take their defaults). With ``steady`` the
    context flags every parameter row steady, as the engine does for settled parameters
    (``layout.CTX_STEADY``); a test that changes a row must then clear its flag."""
    params = params or {}
    bufs = np.zeros((N_RESERVED_ROWS + n_io, block, lanes))
    bufs[ROW_ONE] = 1.0
    io = np.arange(N_RESERVED_ROWS, N_RESERVED_ROWS + n_io, dtype=np.int64)
    P = np.zeros((max(len(cls.params), 1), block, lanes))
    for k, spec in enumerate(cls.params):
        P[k] = params.get(spec.name, spec.default)
    pr = np.arange(P.shape[0], dtype=np.int64)
    size = cls.prepare(sample_rate, block)
    column = np.zeros(size)
    cls.reset_state(column, sample_rate)
    st = np.zeros((max(size, 1), lanes))
    st[:size] = column[:, None]
    ctx = np.zeros((CTX_STEADY + P.shape[0] if steady else CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = sample_rate
    if steady:
        ctx[CTX_STEADY:, 0] = 1.0
    return bufs, io, P, pr, st, ctx
