"""What the filter kernels share: the key-tracked, prewarped cutoff. Voice lanes; contract:
``instrument.layout``. The filters: ``kernels.svf`` (multimode state-variable, and
svf_lowpass), ``kernels.ladder`` (4-pole ladder), ``kernels.onepole`` (one-pole, and the DC
blocker's coefficient).

All are trapezoidal (TPT, zero-delay-feedback) designs after Zavalishin, "The Art of VA
Filter Design": their small-signal magnitude responses are the bilinear transforms of the
analog prototypes with the cutoff prewarped, and they stay stable under audio-rate cutoff
modulation. Coefficients are exact every COEFF_STEP samples (tan by polynomial,
``approx.tan_pi``), with a per-sample linear ramp written to state in between, then read only
in the recursive loop across voices, which therefore vectorizes (``coefficients``).

Key tracking: the cutoff is multiplied by ``(key / 261.63 Hz) ** key_track`` (one octave per
octave at ``key_track`` 1, middle C unchanged), evaluated with the coefficients every
COEFF_STEP samples by ``ln_approx``/``exp_approx`` (no libm in the loops across voices). A key
input of 0 Hz or less (the global graph has no voice pitch) means no tracking.

Denormals: each kernel flushes state below DENORMAL_FLOOR to 0 at the end of every segment, so
a decaying tail turns into exact zeros instead of subnormal numbers. (Without the flush, the
release tails in tests/kernels/test_filters.py turn subnormal after 2-5 s and those blocks cost
10-55% more on the AMD EPYC the tests ran on; many Intel cores charge far more per subnormal
operation.)

Measured (tests/kernels/test_filters.py, AMD EPYC, 48 kHz, 16 voices as lanes, ns per voice per
64 samples; svf_lowpass, then a kernel of its own, measured 100-105 on the same machine): svf
111 (low-pass) to 134 (high-pass), ladder 171, one-pole 64; key tracking adds ~40-45. The
ladder's output DC blocker (``dc_block_hz``, on or off) added 20-30 ns, about 8%, measured on
another (2-core) machine: 254-271 ns before, 283-291 after. From 4 to 15 voices the ladder runs
in lane blocks (``kernels.lane_blocks``): its plain loop ran them one lane at a time.
"""

from numba import njit

from instrument.kernels.approx import exp_approx, ln_approx, tan_pi

C4_HZ = 261.6255653005986  # MIDI note 60
_INV_C4 = 1.0 / C4_HZ
KEY_RATIO_MIN = 1.0 / 256.0  # key ratios are clamped to +-8 octaves around middle C
KEY_RATIO_MAX = 256.0
MIN_CUTOFF_HZ = 1.0
MAX_CUTOFF_RATIO = 0.49  # of the sample rate


@njit(cache=True, inline="always")
def key_cutoff(cutoff_hz, key_track, key_hz):
    """The cutoff moved by key tracking: ``cutoff_hz * (key_hz / C4_HZ) ** key_track``;
    ``key_hz`` <= 0 (or NaN) means middle C, ``key_track`` is clamped to [0, 1].

    The clamps are written as conditional expressions, which LLVM turns into vector selects:
    with min(max(...)) here the coefficient loop stopped vectorizing (one-pole: 245 ns per
    voice per block against 105 ns)."""
    r = key_hz * _INV_C4 if key_hz > 0.0 else 1.0
    r = KEY_RATIO_MIN if r < KEY_RATIO_MIN else r
    r = KEY_RATIO_MAX if r > KEY_RATIO_MAX else r
    kt = key_track if key_track > 0.0 else 0.0
    kt = 1.0 if kt > 1.0 else kt
    return cutoff_hz * exp_approx(kt * ln_approx(r))


@njit(cache=True, inline="always")
def any_tracking(key_track, i, nl):
    """True when some lane has key tracking at sample ``i``; otherwise the coefficient loops
    skip key_cutoff (about 45 ns per voice per 64 samples)."""
    for v in range(nl):
        if key_track[i, v] != 0.0:
            return True
    return False


@njit(cache=True, inline="always")
def prewarp(cutoff_hz, sample_rate):
    """g = tan(pi * fc / fs), fc clamped to [MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * fs]."""
    ratio = cutoff_hz / sample_rate
    ratio = ratio if ratio < MAX_CUTOFF_RATIO else MAX_CUTOFF_RATIO
    ratio = ratio if ratio > MIN_CUTOFF_HZ / sample_rate else MIN_CUTOFF_HZ / sample_rate
    return tan_pi(ratio)


@njit(cache=True, inline="always")
def chunk_prewarp(cutoff, kt, key, i, nl, sr, st, row):
    """st[row, v] = prewarp of lane v's (key-tracked) cutoff at sample ``i``. Two loops, so
    that each vectorizes; the untracked one skips key_cutoff."""
    if any_tracking(kt, i, nl):
        for v in range(nl):
            st[row, v] = prewarp(key_cutoff(cutoff[i, v], kt[i, v], key[i, v]), sr)
    else:
        for v in range(nl):
            st[row, v] = prewarp(cutoff[i, v], sr)
