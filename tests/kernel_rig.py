"""One harness for driving a module's kernel alone, as the engine calls it.

``kernel_args`` builds the kernel contract's arguments (``instrument.layout``): the reserved
rows (``ROW_ONE`` set) and then ``n_io`` rows for the node's inputs and outputs in declaration
order, one parameter row per declared parameter (at its default or the value given), the state
of a fresh voice (``prepare`` and ``reset_state``, one column per lane) and the context with the
sample rate. ``segment_bounds`` turns a block's split points into (s0, s1) pairs.
"""

from __future__ import annotations

import itertools

import numpy as np

from instrument.layout import CTX_SAMPLE_RATE, CTX_WIDTH, N_RESERVED_ROWS, ROW_ONE

SR = 48000.0
BLOCK = 64


def kernel_args(cls, n_io: int, lanes: int = 1, params: dict | None = None,
                sample_rate: float = SR, block: int = BLOCK):
    """``(bufs, io, P, pr, st, ctx)`` for ``cls.kernel`` on ``lanes`` voices. ``params`` maps
    parameter names to constants (the others take their defaults)."""
    params = params or {}
    bufs = np.zeros((N_RESERVED_ROWS + n_io, block, lanes))
    bufs[ROW_ONE] = 1.0
    io = np.arange(N_RESERVED_ROWS, N_RESERVED_ROWS + n_io)
    P = np.zeros((max(len(cls.params), 1), block, lanes))
    for k, spec in enumerate(cls.params):
        P[k] = params.get(spec.name, spec.default)
    pr = np.arange(P.shape[0])
    size = cls.prepare(sample_rate, block)
    column = np.zeros(size)
    cls.reset_state(column, sample_rate)
    st = np.zeros((max(size, 1), lanes))
    st[:size] = column[:, None]
    ctx = np.zeros((CTX_WIDTH, lanes))
    ctx[CTX_SAMPLE_RATE] = sample_rate
    return bufs, io, P, pr, st, ctx


def segment_bounds(segments, block: int = BLOCK) -> list[tuple[int, int]]:
    """(s0, s1) of each segment of a block split at ``segments`` (which start with 0)."""
    bounds = list(segments) if segments[-1] == block else list(segments) + [block]
    return list(itertools.pairwise(bounds))
