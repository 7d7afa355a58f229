"""The kernel tests' harness besides the package's ``instrument.modules.kernel_args`` (which
module validation uses too): ``segment_bounds``, a block's split points as (s0, s1) pairs;
``run``, a filter kernel driven over a signal; ``run_fx``, an effect kernel over a stereo one.
Every test folder imports them from here (not from another test file, which is on the path only
when its own folder runs too)."""

from __future__ import annotations

import itertools

import numpy as np

from instrument.modules.kernel_args import kernel_args

SR = 48000.0

BLOCK = 64


def segment_bounds(segments, block: int = BLOCK) -> list[tuple[int, int]]:
    """(s0, s1) of each segment of a block split at ``segments`` (which start with 0)."""
    bounds = list(segments) if segments[-1] == block else list(segments) + [block]
    return list(itertools.pairwise(bounds))


def _rows(value, n, lanes):
    """A constant, a per-lane row (lanes,) or a per-sample array (n, lanes) as (n, lanes)."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 2:
        return value
    return np.broadcast_to(value, (n, lanes))


def run(cls, x, params=None, key=0.0, segments=(0, BLOCK), sample_rate=SR, active=None):
    """Drive ``cls.kernel`` over ``x`` (n, lanes) block by block, each block split at
    ``segments``. ``params`` maps names to a constant, a per-lane row (lanes,) or a per-sample
    array (n, lanes); missing ones take their defaults. ``key`` (Hz) likewise, for a module
    with a second (key) input. ``active``: the lanes the kernel is told to run (``nl``), all
    by default. Returns its first output, (n, lanes)."""
    params = params or {}
    x = np.asarray(x, dtype=np.float64)
    n, lanes = x.shape
    n_blocks = -(-n // BLOCK)
    bufs, io, P, pr, st, ctx = kernel_args(cls, 3, lanes, sample_rate=sample_rate)
    values = [_rows(params.get(spec.name, spec.default), n, lanes) for spec in cls.params]
    keys = _rows(key, n, lanes)
    n_inputs = len(cls.inputs)  # the io row list: inputs, then outputs
    out = np.zeros((n_blocks * BLOCK, lanes))
    for b in range(n_blocks):
        lo, hi = b * BLOCK, min((b + 1) * BLOCK, n)
        m = hi - lo
        bufs[io[0], :m] = x[lo:hi]
        bufs[io[0], m:] = 0.0
        if n_inputs > 1:
            bufs[io[1], :m] = keys[lo:hi]
        for k, v in enumerate(values):
            P[k, :m] = v[lo:hi]
        for s0, s1 in segment_bounds(segments):
            cls.kernel(bufs, io, P, pr, st, ctx, s0, s1, active or lanes)
        out[lo:lo + BLOCK] = bufs[io[n_inputs]]
    return out[:n]


def _held(value, total, lanes):
    """A scalar or per-sample values as (total, lanes), the last value held to the end."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return np.full((total, lanes), float(a))
    if a.ndim == 1:
        a = np.repeat(a[:, None], lanes, axis=1)
    out = np.empty((total, lanes))
    out[:len(a)] = a
    out[len(a):] = a[-1]
    return out


def run_fx(cls, xl, xr=None, sample_rate=SR, segments=(0, BLOCK), lanes=1, **params):
    """Drive ``cls.kernel`` over ``xl``/``xr`` ((n,) or (n, lanes)) through the kernel contract
    (reserved rows, state from prepare/reset_state, segments). Parameters are scalars or
    per-sample arrays; unnamed ones take their defaults. Returns (left, right) outputs."""
    xr = xl if xr is None else xr
    n = len(xl)
    total = -(-n // BLOCK) * BLOCK
    x = [_held(xl, total, lanes), _held(xr, total, lanes)]
    x[0][n:] = x[1][n:] = 0.0
    values = [_held(params.pop(s.name, s.default), total, lanes) for s in cls.params]
    assert not params, f"unknown parameters {params}"
    bufs, io, P, pr, st, ctx = kernel_args(cls, 4, lanes, sample_rate=sample_rate)
    out = np.zeros((2, total, lanes))
    for b in range(total // BLOCK):
        sl = slice(b * BLOCK, (b + 1) * BLOCK)
        bufs[io[0]] = x[0][sl]
        bufs[io[1]] = x[1][sl]
        for j, v in enumerate(values):
            P[j] = v[sl]
        for s0, s1 in segment_bounds(segments):
            cls.kernel(bufs, io, P, pr, st, ctx, s0, s1, lanes)
        out[0, sl] = bufs[io[2]]
        out[1, sl] = bufs[io[3]]
    if lanes == 1:
        return out[0, :n, 0], out[1, :n, 0]
    return out[0, :n], out[1, :n]
