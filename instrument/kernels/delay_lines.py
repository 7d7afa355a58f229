"""Delay lines in a node's state column, shared by the global effects (``kernels.delay``:
stereo delay and chorus; ``kernels.reverb``). Contract: ``instrument.layout``.

The global effects have inputs ``left``, ``right`` and outputs ``out_left``, ``out_right``.
They run in the global graph (one lane) but process any number of lanes, each on its own state
column (``col = st[:, v]``, lane-outer, the state in locals through the sample loop): the work
per sample is recursive (delay lines, filters), so nothing vectorizes across one lane except
drive's element-wise loop; what matters is no libm call per sample. Coefficients that need
exp, sin, cos or pow are taken once per segment (a block at most): interpolated linearly
between the segment's ends where a parameter moves smoothly (delay damping, mixes, drive
gains; ``coefficients.ramp_step``), held for the segment (reverb line gains) or for EQ_STEP
samples (EQ); all exact while the parameter rests.

The lines live in the node's state column, sized by ``Module.prepare`` from the maximum time;
header rows at the top of the column hold the line sizes and the constants ``reset_state``
computes from the sample rate, so the kernels allocate nothing. Every value written into a
line or left in a recursive filter is flushed to 0 below ``denormals.DENORMAL_FLOOR``: a tail
decays to exact zeros, never through denormals (tests/kernels/test_effects.py times every
second of a tail against a sounding block).
"""

import math

from numba import njit

from instrument.kernels.denormals import flush_denormal

GUARD = 3  # slots after a line mirroring its first ones: a Hermite read never wraps inside


@njit(cache=True, inline="always")
def wrap(j, n):
    """j in [-n, 2n) -> [0, n) without a branch."""
    return j + n * (j < 0) - n * (j >= n)


@njit(cache=True, inline="always")
def write_line(col, q, mirror, value):
    """Write one FDN line sample (denormal-flushed) at ``q`` and at its guard copy."""
    f = flush_denormal(value)
    col[q] = f
    col[q + mirror] = f


@njit(cache=True, inline="always")
def hermite_read(col, base, n, w, d):
    """The line ``col[base:base + n]`` (followed by GUARD mirrored slots) read ``d`` samples
    (fractional, 2 <= d <= n - 3) behind the write index ``w``: 4-point, 3rd-order Hermite
    (Catmull-Rom) on four consecutive slots. Exact at whole ``d`` (t == 0 returns the stored
    sample itself)."""
    pos = w - d
    fl = math.floor(pos)
    t = pos - fl
    q = base + wrap(int(fl) - 1, n)
    ym1 = col[q]
    y0 = col[q + 1]
    y1 = col[q + 2]
    y2 = col[q + 3]
    c1 = 0.5 * (y1 - ym1)
    c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2
    c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1)
    return ((c3 * t + c2) * t + c1) * t + y0


@njit(cache=True, inline="always")
def write_guarded(col, base, n, w, x):
    """Store x at index w of a guarded line (and in its mirror slot when w < GUARD)."""
    col[base + w] = x
    col[base + w + n * (w < GUARD)] = x


@njit(cache=True, inline="always")
def linear_read(col, base, n, w, d):
    """The line read ``d`` samples (fractional, 0 <= d <= n - 2) behind index ``w`` with
    linear interpolation."""
    pos = w - d
    fl = math.floor(pos)
    t = pos - fl
    j = int(fl)
    j += n * (j < 0)
    j1 = wrap(j + 1, n)
    y0 = col[base + j]
    return y0 + t * (col[base + j1] - y0)
