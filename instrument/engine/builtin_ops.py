"""Built-in plan operations: parameter modulation and fan-in sums."""

from numba import njit

from instrument.engine.layout import PM_CURVE, PM_HI, PM_LO, PM_SKEW
from instrument.params.curves import norm_to_value

# Non-linear curves are evaluated exactly every MOD_STEP samples and interpolated linearly in
# between (a 6 kHz control rate at 48 kHz): one exp per 8 samples instead of per sample, which
# was the largest single cost of poly16 (1024 modulated cutoff values per block).
MOD_STEP = 8
CURVE_LINEAR = 0


@njit(cache=True, inline="always")
def _mod_value(pmeta, p, base, bufs, srcs, amounts, i):
    n = base[i]
    for k in range(srcs.shape[0]):
        n += amounts[k] * bufs[srcs[k], i]
    if n < 0.0:
        n = 0.0
    elif n > 1.0:
        n = 1.0
    return norm_to_value(int(pmeta[p, PM_CURVE]), pmeta[p, PM_LO], pmeta[p, PM_HI],
                         pmeta[p, PM_SKEW], 0, n)


@njit(cache=True, error_model="numpy")
def pmod_op(bufs, srcs, prs, amounts, pmeta, P, PN, s0, s1):
    """P[dst] = value(PN[param] + sum(amount_k * src_k)): modulation in normalized units."""
    p = prs[0]
    dst = P[prs[1]]
    base = PN[p]
    if int(pmeta[p, PM_CURVE]) == CURVE_LINEAR:
        for i in range(s0, s1):
            dst[i] = _mod_value(pmeta, p, base, bufs, srcs, amounts, i)
        return
    prev = _mod_value(pmeta, p, base, bufs, srcs, amounts, s0)
    dst[s0] = prev
    i = s0
    while i < s1 - 1:
        j = i + MOD_STEP
        if j > s1 - 1:
            j = s1 - 1
        nxt = _mod_value(pmeta, p, base, bufs, srcs, amounts, j)
        step = (nxt - prev) / (j - i)
        for t in range(i + 1, j + 1):
            dst[t] = prev + step * (t - i)
        prev = nxt
        i = j


@njit(cache=True, error_model="numpy")
def sum_op(bufs, io, s0, s1):
    """bufs[io[-1]] = sum of bufs[io[:-1]] (fan-in of several connections into one input)."""
    dst = bufs[io[io.shape[0] - 1]]
    first = bufs[io[0]]
    for i in range(s0, s1):
        dst[i] = first[i]
    for k in range(1, io.shape[0] - 1):
        src = bufs[io[k]]
        for i in range(s0, s1):
            dst[i] += src[i]
