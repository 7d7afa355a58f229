"""Stereo delay (feedback, ping-pong, damping, gliding time) and chorus kernels; global
effects on delay lines in the node's state column. Contract and delay-line helpers:
``instrument.kernels.delay_lines``."""

import math

from instrument.kernels.coefficients import HALF_PI, TWO_PI, onepole_a, ramp_step
from instrument.kernels.delay_lines import GUARD, hermite_read, write_guarded
from instrument.kernels.denormals import flush_denormal
from instrument.kernels.noalias import lane_loop
from instrument.kernels.tempo import context_tempo_bpm, sync_beats
from instrument.layout import CTX_SAMPLE_RATE

# ---- delay ----------------------------------------------------------------------------------

# Header rows. TIME and PP hold their internal smoothers' values (-1: unset, jump on first use).
DL_W, DL_N, DL_TIME, DL_TIME1, DL_LPL, DL_LPR, DL_PP, DL_CT, DL_CP = range(9)
DL_HEADER = 9


@lane_loop
def delay_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Stereo delay with feedback, ping-pong and damping.

    Measured claims (tests/kernels/test_effects.py): an impulse comes back exactly ``time_ms``
    later (a whole number of samples is an exact copy: Hermite interpolation at t = 0); each repeat
    has ``feedback`` times the DC sum of the one before (the damping low-pass in the feedback
    path has unity DC gain); with ``ping_pong`` on, the mono sum goes into the left line and the
    feedback crosses over, so repeats alternate left, right, left (switching crossfades the
    routing through a one-pole). The delay time glides through two one-poles in series (on top
    of the parameter smoothing: no kink at the start of a glide) and is read with Hermite
    interpolation, so a time change bends pitch instead of clicking (a 20 ms step of the raw
    parameter leaves nothing above 3 kHz louder than -60 dB). Mix is equal-power: dry
    cos(pi/2 mix), wet sin(pi/2 mix), exactly 0 and 1 at the ends. ``sync`` other than Off
    replaces ``time_ms`` by a note value at the context's tempo (``kernels.tempo``; 1/8 at
    100 BPM echoes 300 ms later), through the same glide.
    """
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    time_ms = P[pr[0]]
    feedback = P[pr[1]]
    ping_pong = P[pr[2]]
    damping = P[pr[3]]
    mix = P[pr[4]]
    beats = sync_beats(P[pr[5], s0, 0])
    n = s1 - s0
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        ms = sr * 0.001
        tmul = 1.0  # delay in samples = time_ms * ms * tmul + tadd
        tadd = 0.0
        if beats > 0.0:
            tmul = 0.0
            tadd = beats * 60.0 / context_tempo_bpm(ctx, v) * sr
        size = int(col[DL_N])
        base_l = DL_HEADER
        base_r = DL_HEADER + size + GUARD
        dmax = size - 3.0
        w = int(col[DL_W])
        d = col[DL_TIME]
        d1 = col[DL_TIME1]
        if d < 0.0:
            d = min(max(time_ms[s0, v] * ms * tmul + tadd, 2.0), dmax)
            d1 = d
        p = col[DL_PP]
        if p < 0.0:
            p = ping_pong[s0, v]
        lpl = col[DL_LPL]
        lpr = col[DL_LPR]
        ct = col[DL_CT]
        cp = col[DL_CP]
        a = onepole_a(damping[s0, v], sr)
        da = ramp_step(a, onepole_a(damping[s1 - 1, v], sr), n)
        dry = math.sin(HALF_PI * (1.0 - mix[s0, v]))
        wet = math.sin(HALF_PI * mix[s0, v])
        ddry = ramp_step(dry, math.sin(HALF_PI * (1.0 - mix[s1 - 1, v])), n)
        dwet = ramp_step(wet, math.sin(HALF_PI * mix[s1 - 1, v]), n)
        for i in range(s0, s1):
            target = min(max(time_ms[i, v] * ms * tmul + tadd, 2.0), dmax)
            d1 = target + ct * (d1 - target)
            d = d1 + ct * (d - d1)
            rl = hermite_read(col, base_l, size, w, d)
            rr = hermite_read(col, base_r, size, w, d)
            lpl += a * (rl - lpl)
            lpr += a * (rr - lpr)
            pt = ping_pong[i, v]
            p = pt + cp * (p - pt)
            q = 1.0 - p
            g = feedback[i, v]
            xl = in_l[i, v]
            xr = in_r[i, v]
            wl = q * xl + p * 0.5 * (xl + xr) + g * (q * lpl + p * lpr)
            wr = q * xr + g * (q * lpr + p * lpl)
            write_guarded(col, base_l, size, w, flush_denormal(wl))
            write_guarded(col, base_r, size, w, flush_denormal(wr))
            w += 1
            w -= size * (w >= size)
            out_l[i, v] = dry * xl + wet * rl
            out_r[i, v] = dry * xr + wet * rr
            a += da
            dry += ddry
            wet += dwet
        col[DL_W] = w
        col[DL_TIME] = d
        col[DL_TIME1] = d1
        col[DL_PP] = p
        col[DL_LPL] = flush_denormal(lpl)
        col[DL_LPR] = flush_denormal(lpr)


# ---- chorus ---------------------------------------------------------------------------------

CH_W, CH_N, CH_COS, CH_SIN = range(4)
CH_HEADER = 4
_C120 = -0.5
_S120 = 0.8660254037844386  # sin(120 degrees)


@lane_loop
def chorus_kernel(bufs, io, P, pr, st, ctx, s0, s1, nl):
    """Stereo chorus: three taps per side on a sine LFO at ``rate_hz``, 120 degrees apart; the
    right side's taps run a quarter cycle ahead of the left's. Each tap's delay is
    ``delay_ms + depth_ms * sin(phase)`` (measured: an impulse train comes back within
    delay_ms +- depth_ms, sweeping that whole range once per 1 / rate_hz), read with 4-point
    Hermite interpolation. The LFO is a rotating (cos, sin) pair, renormalized every
    segment; its increment is taken at the segment start. Wet = the mean of the three taps;
    mix is linear (dry and wet are correlated): (1 - mix) dry + mix wet.
    """
    in_l = bufs[io[0]]
    in_r = bufs[io[1]]
    out_l = bufs[io[2]]
    out_r = bufs[io[3]]
    rate = P[pr[0]]
    depth_ms = P[pr[1]]
    delay_ms = P[pr[2]]
    mix = P[pr[3]]
    third = 1.0 / 3.0
    for v in range(nl):
        col = st[:, v]
        sr = ctx[CTX_SAMPLE_RATE, v]
        ms = sr * 0.001
        size = int(col[CH_N])
        base_l = CH_HEADER
        base_r = CH_HEADER + size + GUARD
        dmax = size - 3.0
        w = int(col[CH_W])
        c = col[CH_COS]
        s = col[CH_SIN]
        inc = TWO_PI * rate[s0, v] / sr
        cw = math.cos(inc)
        sw = math.sin(inc)
        for i in range(s0, s1):
            base = delay_ms[i, v] * ms
            dep = depth_ms[i, v] * ms
            s1_ = s * _C120 + c * _S120
            c1_ = c * _C120 - s * _S120
            s2_ = s * _C120 - c * _S120
            c2_ = c * _C120 + s * _S120
            wl = (hermite_read(col, base_l, size, w, min(max(base + dep * s, 2.0), dmax))
                  + hermite_read(col, base_l, size, w, min(max(base + dep * s1_, 2.0), dmax))
                  + hermite_read(col, base_l, size, w, min(max(base + dep * s2_, 2.0), dmax)))
            wr = (hermite_read(col, base_r, size, w, min(max(base + dep * c, 2.0), dmax))
                  + hermite_read(col, base_r, size, w, min(max(base + dep * c1_, 2.0), dmax))
                  + hermite_read(col, base_r, size, w, min(max(base + dep * c2_, 2.0), dmax)))
            xl = in_l[i, v]
            xr = in_r[i, v]
            write_guarded(col, base_l, size, w, flush_denormal(xl))
            write_guarded(col, base_r, size, w, flush_denormal(xr))
            w += 1
            w -= size * (w >= size)
            m = mix[i, v]
            out_l[i, v] = (1.0 - m) * xl + m * third * wl
            out_r[i, v] = (1.0 - m) * xr + m * third * wr
            c, s = c * cw - s * sw, s * cw + c * sw
        norm = 1.0 / math.sqrt(c * c + s * s)
        col[CH_COS] = c * norm
        col[CH_SIN] = s * norm
        col[CH_W] = w
