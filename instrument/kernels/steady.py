"""Steady parameter rows: a kernel may read a parameter that holds through the segment as one
value per lane (its sample s0) instead of a row of samples. The engine flags each parameter
row in the context (``layout.CTX_STEADY``): steady while the parameter has settled, moving
while it is smoothed towards a new value or modulated (a modulation's rows are never
flagged). Reading one value instead of a row takes a load per sample and lane out of the
kernel's loop, and a test per sample out of a scan that proved the row held.
"""

from numba import njit

from instrument.layout import CTX_STEADY


@njit(cache=True, inline="always")
def row_steady(ctx, row):
    """Whether parameter row ``row`` holds one value per lane through the segment. False
    for a kernel run alone with a context of CTX_WIDTH rows (no flags): its general path."""
    r = CTX_STEADY + row
    return r < ctx.shape[0] and ctx[r, 0] != 0.0
