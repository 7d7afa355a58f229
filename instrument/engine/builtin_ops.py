"""Built-in plan operations: parameter modulation and fan-in sums."""

import math

from numba import njit

from instrument.layout import CODE_PMOD, CODE_SUM, MOD_STEP, PM_CURVE, PM_HI, PM_LO, PM_SKEW
from instrument.kernels.approx import exp_approx
from instrument.kernels.coefficients import COEFF_STEP
from instrument.kernels.noalias import WIDE_LANES, flat_rows, lane_loop
from instrument.params.curves import norm_to_value

# Modulated values are exact every MOD_STEP samples (``layout``) and interpolated linearly in
# between (a 6 kHz control rate at 48 kHz), and the LOG curve uses exp_approx so the loop across
# voices vectorizes: 134 ns per voice per block with libm exp per lane, the largest cost of
# poly16.
CURVE_LINEAR, CURVE_LOG, CURVE_DB = 0, 1, 3


@njit(cache=True, inline="always")
def _modulated_norm(dst, base, bufs, srcs, amounts, s0, s1, nl):
    """dst[i, v] = base[i] + sum(amount_k * src_k[i, v]) over [s0, s1): one pass per source,
    so every innermost loop runs across lanes and vectorizes (a loop over the sources inside
    the lane loop kept it scalar). The same sums in the same order."""
    for i in range(s0, s1):
        for v in range(nl):
            dst[i, v] = base[i]
    for k in range(srcs.shape[0]):
        src = bufs[srcs[k]]
        amount = amounts[k]
        for i in range(s0, s1):
            for v in range(nl):
                dst[i, v] += amount * src[i, v]


@njit(cache=True, error_model="numpy")
def pmod_op(bufs, srcs, prs, amounts, pmeta, P, PN, s0, s1, nl):
    """P[dst] = value(PN[param] + sum(amount_k * src_k)) per lane: modulation in normalized
    units of the parameter, so an envelope at 1.0 with amount 0.5 moves it half its range.

    Linear and dB parameters are exact on every sample (audio-rate PWM, say); other curves are
    exact at every MOD_STEP-th sample and at the segment's last (the modulation points), linear
    between. When ``prs[2]`` is 1 the parameter is one its module reads only at the segment's
    first sample and the last of every COEFF_STEP chunk (``Module.chunk_params``: filter
    cutoffs), and only those samples are written between the points: the same numbers there.
    """
    p = prs[0]
    dst = P[prs[1]]
    chunk_ends = prs[2] != 0
    base = PN[p]
    curve = int(pmeta[p, PM_CURVE])
    lo = pmeta[p, PM_LO]
    hi = pmeta[p, PM_HI]
    skew = pmeta[p, PM_SKEW]
    log_ratio = math.log(hi / lo) if (curve == CURVE_LOG and lo > 0.0 and hi > lo) else 0.0
    if curve == CURVE_LINEAR or curve == CURVE_DB:  # cheap: exact on every sample
        _modulated_norm(dst, base, bufs, srcs, amounts, s0, s1, nl)
        for i in range(s0, s1):
            for v in range(nl):
                dst[i, v] = lo + (hi - lo) * min(max(dst[i, v], 0.0), 1.0)
        return
    if log_ratio != 0.0 and srcs.shape[0] == 1:  # one source, log curve: poly16's cutoff
        src = bufs[srcs[0]]
        if nl == WIDE_LANES:
            _log_points(dst, base, src, amounts[0], lo, log_ratio, chunk_ends, s0, s1,
                        WIDE_LANES)
        else:
            _log_points(dst, base, src, amounts[0], lo, log_ratio, chunk_ends, s0, s1, nl)
        return
    i = s0
    prev = s0
    while True:
        # Exact values at sample i, all lanes (vectorized: no libm call on the LOG path).
        _modulated_norm(dst, base, bufs, srcs, amounts, i, i + 1, nl)
        if log_ratio != 0.0:
            for v in range(nl):
                dst[i, v] = lo * exp_approx(min(max(dst[i, v], 0.0), 1.0) * log_ratio)
        else:
            for v in range(nl):
                dst[i, v] = norm_to_value(curve, lo, hi, skew, 0, min(max(dst[i, v], 0.0), 1.0))
        if i > s0:
            _between_points(dst, s0, prev, i, chunk_ends, nl)
        if i >= s1 - 1:
            break
        prev = i
        i = min(i + MOD_STEP, s1 - 1)


@njit(cache=True, inline="always")
def _between_points(dst, s0, prev, i, chunk_ends, nl):
    """Fill the samples between the exact points ``prev`` and ``i`` linearly; with
    ``chunk_ends`` only the chunk ends the reader reads (poly16's cutoff modulation)."""
    span = i - prev
    t = prev + 1
    step = 1
    if chunk_ends:
        t = s0 + ((prev - s0) // COEFF_STEP + 1) * COEFF_STEP - 1
        step = COEFF_STEP
    while t < i:
        w = (t - prev) / span
        for v in range(nl):
            dst[t, v] = dst[prev, v] + (dst[i, v] - dst[prev, v]) * w
        t += step


@lane_loop
def _log_points(dst, base, src, amount, lo, log_ratio, chunk_ends, s0, s1, nl):
    """``pmod_op``'s points for one source on a log curve, in one function whose arrays do
    not overlap (``lane_loop``): the same numbers as its general loop (base + amount x
    source, clamped, lo x exp_approx of it times the log ratio; linear between points)."""
    i = s0
    prev = s0
    while True:
        b = base[i]
        for v in range(nl):
            x = b + amount * src[i, v]
            dst[i, v] = lo * exp_approx(min(max(x, 0.0), 1.0) * log_ratio)
        if i > s0:
            _between_points(dst, s0, prev, i, chunk_ends, nl)
        if i >= s1 - 1:
            break
        prev = i
        i = min(i + MOD_STEP, s1 - 1)


@njit(cache=True, error_model="numpy")
def sum_op(bufs, io, s0, s1, nl):
    """bufs[io[-1]] = sum of bufs[io[:-1]] (fan-in of several connections into one input)."""
    dst = bufs[io[io.shape[0] - 1]]
    first = bufs[io[0]]
    second = bufs[io[1]]  # a fan-in has two sources at least: one pass for the first two
    if nl == 1:  # one voice: sample after sample (a loop across one lane per sample costs)
        for i in range(s0, s1):
            dst[i, 0] = first[i, 0] + second[i, 0]
        for k in range(2, io.shape[0] - 1):
            src = bufs[io[k]]
            for i in range(s0, s1):
                dst[i, 0] += src[i, 0]
        return
    _add_rows(first, second, dst, s0, s1, nl)
    for k in range(2, io.shape[0] - 1):
        _accumulate_rows(bufs[io[k]], dst, s0, s1, nl)


@lane_loop
def _add_rows(a, b, dst, s0, s1, nl):
    """dst = a + b over [s0, s1) and ``nl`` lanes (three rows apart: ``lane_loop``); every
    lane of the rows in one flat loop (``flat_rows``): a fan-in of two at 16 voices 295 ->
    153 ns per block alone."""
    if nl == dst.shape[1]:
        fa, fb, fd = flat_rows(a, s0, s1), flat_rows(b, s0, s1), flat_rows(dst, s0, s1)
        for j in range(fd.shape[0]):
            fd[j] = fa[j] + fb[j]
        return
    for i in range(s0, s1):
        for v in range(nl):
            dst[i, v] = a[i, v] + b[i, v]


@lane_loop
def _accumulate_rows(src, dst, s0, s1, nl):
    """dst += src over [s0, s1) and ``nl`` lanes (a fan-in's third source and on)."""
    for i in range(s0, s1):
        for v in range(nl):
            dst[i, v] += src[i, v]


@njit(cache=True, error_model="numpy")
def run_builtin_ops(lo, hi, ops, io, pr, fa, pmeta, P, PN, bufs, st, ctx, s0, s1, nl, eng):
    """``run_ops`` of a renderer without module kernels: ops ``lo..hi-1`` of the built-in
    kinds (CODE_PMOD, CODE_SUM) run, module ops are skipped. What ``engine.render_template``
    dispatches to when imported on its own (tests, tools); ``engine.fused`` generates the
    ``run_ops`` that also calls every registered module's kernel. ``eng`` is not used: the
    generated op timer build sums each op's time into it."""
    for k in range(lo, hi):
        code = ops[k, 0]
        if code == CODE_PMOD:
            pmod_op(bufs, io[ops[k, 1]:ops[k, 2]], pr[ops[k, 3]:ops[k, 4]],
                    fa[ops[k, 7]:ops[k, 8]], pmeta, P, PN, s0, s1, nl)
        elif code == CODE_SUM:
            sum_op(bufs, io[ops[k, 1]:ops[k, 2]], s0, s1, nl)
