"""Amplitude and mixing kernels. Contract: ``instrument.modules.layout``."""

from numba import njit

from instrument.modules.layout import CTX_PEAK, CTX_VELOCITY


@njit(cache=True, error_model="numpy")
def vca_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """out = in * cv * gain * velocity scaling (1 - amount + amount * velocity)."""
    x = bufs[io[0]]
    cv = bufs[io[1]]
    out = bufs[io[2]]
    gain = P[pr[0]]
    vel_amount = P[pr[1]]
    vel = ctx[CTX_VELOCITY]
    for i in range(s0, s1):
        a = vel_amount[i]
        out[i] = x[i] * cv[i] * gain[i] * (1.0 - a + a * vel)


@njit(cache=True, error_model="numpy")
def gain_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """out = in * 10**(gain_db / 20); the factor is interpolated between segment ends."""
    x = bufs[io[0]]
    out = bufs[io[1]]
    gdb = P[pr[0]]
    n = s1 - s0
    a0 = 10.0 ** (gdb[s0] / 20.0)
    da = (10.0 ** (gdb[s1 - 1] / 20.0) - a0) / n if n > 1 else 0.0
    for i in range(s0, s1):
        out[i] = x[i] * (a0 + da * (i - s0))


@njit(cache=True, error_model="numpy")
def mixer_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """out = sum of four inputs, each times its linear level."""
    a, b, c, d = bufs[io[0]], bufs[io[1]], bufs[io[2]], bufs[io[3]]
    out = bufs[io[4]]
    la, lb, lc, ld = P[pr[0]], P[pr[1]], P[pr[2]], P[pr[3]]
    for i in range(s0, s1):
        out[i] = a[i] * la[i] + b[i] * lb[i] + c[i] * lc[i] + d[i] * ld[i]


@njit(cache=True, error_model="numpy")
def output_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """Adds (in + left, in + right) onto the bus rows bound to its outputs; records the peak."""
    mono = bufs[io[0]]
    left = bufs[io[1]]
    right = bufs[io[2]]
    bus_l = bufs[io[3]]
    bus_r = bufs[io[4]]
    peak = ctx[CTX_PEAK]
    for i in range(s0, s1):
        l = mono[i] + left[i]
        r = mono[i] + right[i]
        bus_l[i] += l
        bus_r[i] += r
        m = abs(l) if abs(l) > abs(r) else abs(r)
        if m > peak:
            peak = m
    ctx[CTX_PEAK] = peak


@njit(cache=True, error_model="numpy")
def nop_kernel(bufs, io, P, pr, st, ctx, s0, s1):
    """Does nothing (source nodes whose outputs are bound to reserved rows)."""
    return
