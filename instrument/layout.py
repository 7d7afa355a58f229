"""Every array layout in one place: the numbers the plan compiler, the native block renderer
and the module kernels share. Plain ints, so numba treats them as compile-time constants.
(The event rows the engine reads are described with their kinds in ``engine.events``.)

Part 1, the kernel contract: reserved buffer rows and context slots.

Voices are processed as lanes: every voice-graph array has the active voices side by side in
its last axis, so a kernel's inner loop runs across voices, which numba/LLVM turn into SIMD.
(Measured here: a state-variable filter costs 0.84 ns per voice-sample in lanes against 4.3 ns
one voice at a time, a PolyBLEP saw 0.63 ns against 2.6 ns.) The global graph uses the same
contract with one lane.

Every kernel has the signature ``kernel(bufs, io, P, pr, st, ctx, s0, s1, nl)``:

- ``bufs``: float64 ``(n_rows, block_size, lanes)``; a kernel reads and writes
  ``bufs[row, s0:s1, :nl]``.
- ``io``: int64 rows of the node's inputs (declaration order) then its outputs.
- ``P``: float64 ``(n_param_rows, block_size, lanes)``, per-sample, per-lane parameter values in
  display units, already smoothed and modulated; ``pr[k]`` is the row of the k-th declared
  parameter.
- ``st``: float64 ``(state_size, lanes)``: this node's state, one column per lane; sized by
  ``Module.prepare`` and initialised by ``Module.reset_state`` (given one column).
- ``ctx``: float64 ``(CTX_WIDTH, lanes)``: per-lane context, slots below; the engine's has
  a steady flag per parameter row after them (``CTX_STEADY``, ``kernels.steady``).
- ``s0, s1``: the sample range to process (a block is split at event offsets).
- ``nl``: the number of lanes to process: the active voices, and above LANE_MULTIPLE voices
  up to LANE_BLOCK - 1 idle lanes beside them (fresh silent voices that nothing hears; see
  ``kernel_lanes`` in ``engine.render_template``); 1 in the global graph.

Two reads are sparse, and the plan compiler tells the writers so:

- a parameter a module lists in ``Module.chunk_params`` (a filter's cutoff) is read only at
  ``s0`` and at the last sample of every COEFF_STEP chunk from ``s0``; a modulation into it
  writes only those samples;
- a modulation of a parameter whose curve is neither linear nor dB reads its sources only at
  the modulation points ``s0, s0 + MOD_STEP, s0 + 2 * MOD_STEP, ...`` and ``s1 - 1``. A node
  whose every output is read that way only is told with ``Module.read_at_points``, and its
  kernel may then write those points alone (poly16's filter envelope).

A kernel allocates nothing, raises nothing and returns nothing. Lane ``v`` of every array is the
same voice, and no lane reads another; lanes at and past ``nl`` must not be touched, except that
a kernel in lane blocks (``kernels.lane_blocks``) may run idle lanes up to the end of its last
block when the arrays hold them. An op's output rows are never its input rows (the plan
compiler takes them before it frees the inputs' rows), which lets a kernel's hot lane loops
promise LLVM that their arrays do not overlap (``kernels.noalias.lane_loop``).

Part 2, the plan and the engine: column and slot numbers of the compiled plan's arrays (ops, cfg,
parameter metadata and state), of the voice table and the engine slots, and the block state's
directory.
"""

# ---- part 1: the kernel contract ----------------------------------------------------------------

# LLVM runs a lane loop in SIMD steps and the lanes past the last whole step one at a time, so
# voice kernels run more than LANE_MULTIPLE voices on a whole number of LANE_BLOCKs, idle lanes
# included, when the polyphony allows (``lanes.padded_lanes``); and recursive filters that
# LLVM leaves scalar below 16 lanes run in blocks of LANE_BLOCK (``kernels.lane_blocks``).
# Measured, not derived, on an AMD EPYC (Zen 4, AVX-512): 1-4 voices run cheapest as they are,
# and 9-12 voices on 16 lanes cost less than on 12 (keys 30-33 -> 21-22 us per block).
# 8 doubles are one AVX-512 register, two AVX2 ones, four NEON ones.
LANE_MULTIPLE = 4
LANE_BLOCK = 8

# Modulations of non-linear parameters are exact every MOD_STEP samples and at a segment's
# last (the modulation points), linear between (``engine.builtin_ops.pmod_op``).
MOD_STEP = 8

# Reserved buffer rows (the same numbers in the voice and the global buffers). Unconnected
# inputs read one of the first five, as their Port.default says.
ROW_ZERO = 0  # all zeros, never written
ROW_ONE = 1  # all ones, never written
ROW_PITCH = 2  # voice pitch in Hz per sample (glide and pitch bend applied); voice graph only
ROW_GATE = 3  # 1.0 while the key (or sustain) holds the voice, else 0.0; voice graph only
ROW_TRIGGER = 4  # 1.0 on the sample a note starts (or retriggers), else 0.0; voice graph only
# The graph's output node writes here (voice: per voice; global: main out), or the nodes that
# feed it, when it runs no op (``graph.compile.direct_outputs``).
ROW_OUT_L = 5
ROW_OUT_R = 6
ROW_BUS_L = 7  # global graph only: the sum of all voices (the 'voices' node's outputs)
ROW_BUS_R = 8
ROW_SINK = 9  # outputs nobody reads are bound here; a kernel may skip writing them
N_RESERVED_ROWS = 10

PORT_DEFAULT_ROWS = {
    "zero": ROW_ZERO,
    "one": ROW_ONE,
    "pitch": ROW_PITCH,
    "gate": ROW_GATE,
    "trigger": ROW_TRIGGER,
}

# Context slots: ctx[slot, lane].
CTX_SAMPLE_RATE = 0
CTX_NOTE = 1  # MIDI note number of the voice
CTX_VELOCITY = 2  # 0..1
CTX_MOD_WHEEL = 3  # 0..1 (CC1)
CTX_PRESSURE = 4  # 0..1 (channel or poly aftertouch)
CTX_RESET = 5  # 1.0 during the first segment after the voice started from silence
CTX_PEAK = 6  # the voice's output peak this block (engine-written; stealing and freeing)
CTX_GATE_ROW = 7  # the gate the lane's ROW_GATE holds over the whole block, or -1.0 (below)
CTX_PITCH_NOW = 8  # engine scratch: the lane's pitch at the segment's start
CTX_LAST_PEAK = 9  # the voice's peak in the previous block
CTX_TIMBRE = 10  # 0..1 (CC74: of the voice's MPE member channel, else of any channel)
CTX_TEMPO_BPM = 11  # tempo (MIDI clock, /tempo); 0 outside the engine: kernels.tempo defaults it
CTX_TRANSPORT = 12  # count of MIDI start/continue downbeats (a change restarts synced LFOs)
CTX_SONG_BEATS = 13  # song position in beats at the last of those downbeats
# 1.0 while the lane's ROW_PITCH holds one value (CTX_PITCH_NOW) through the segment: no glide
# or bend moving (engine-written; 0 outside the engine, so kernels take their general path)
CTX_PITCH_STEADY = 14
# The value the lane's ROW_PITCH (and ROW_GATE: CTX_GATE_ROW) holds over the whole block, or
# -1.0 when not one value (engine-written): the engine rewrites a row only when its value
# changes (``engine.render_template._voice_rows``); a voice moving lanes does not take them.
CTX_PITCH_ROW = 15
CTX_WIDTH = 16
# The engine's context has one more row per parameter row after CTX_WIDTH: ctx[CTX_STEADY +
# row, 0] is 1.0 while P[row] holds one value per lane through the segment (its sample s0),
# a settled parameter; 0.0 while it moves (smoothing, a modulation). A kernel reads it through
# ``kernels.steady.row_steady``; run alone (ctx of CTX_WIDTH rows) every row counts as moving.
CTX_STEADY = CTX_WIDTH


# ---- part 2: the plan and the engine ------------------------------------------------------------

# ops: int64 (n_ops, OP_WIDTH), one row per operation, voice ops first.
OP_CODE, OP_IO0, OP_IO1, OP_PR0, OP_PR1, OP_ST0, OP_ST1, OP_FA0, OP_FA1, OP_NODE = range(10)
OP_WIDTH = 10

# Built-in op codes; module kernels get codes from FIRST_MODULE_CODE up.
# P[dst] = value(norm(param) + sum(amount_k * bufs[src_k])); io=srcs, pr=[param, dst, chunk
# ends] (chunk ends 1: dst is read only at chunk ends, ``Module.chunk_params``)
CODE_PMOD = 0
CODE_SUM = 1  # bufs[dst] = sum(bufs[src_k]); io=srcs + [dst]
FIRST_MODULE_CODE = 2

# cfg: int64 plan configuration.
CFG_N_VOICE_OPS, CFG_N_OPS, CFG_N_PARAMS, CFG_N_VOICES, CFG_MODE, CFG_STEAL = range(6)
# 1 when the voice graph's output node has only its mono ``in`` patched: its out_right is then
# the sink and the engine sums ROW_OUT_L into both sides of the bus.
CFG_MONO_VOICE = 6
CFG_WIDTH = 8
MODE_POLY, MODE_MONO, MODE_LEGATO = 0, 1, 2
MODES = {"poly": MODE_POLY, "mono": MODE_MONO, "legato": MODE_LEGATO}
STEAL_OLDEST, STEAL_QUIETEST, STEAL_SAME_NOTE = 0, 1, 2
STEAL_POLICIES = {"oldest": STEAL_OLDEST, "quietest": STEAL_QUIETEST, "same_note": STEAL_SAME_NOTE}

# pmeta: float64 (n_params, PM_WIDTH).
(PM_CURVE, PM_LO, PM_HI, PM_SKEW, PM_KIND, PM_SMOOTH_MODE, PM_COEFF, PM_RAMP_SAMPLES, PM_SCOPE,
 PM_ROW) = range(10)
PM_WIDTH = 10
SCOPE_VOICE, SCOPE_GLOBAL = 0, 1

# pstate: float64 (n_params, PS_WIDTH).
PS_CURRENT, PS_STEP, PS_REMAINING, PS_TARGET, PS_FILLED = range(5)
PS_WIDTH = 5  # PS_FILLED: the value the whole row holds, or -1 while it is not uniform

# voices: float64 (n_voices, V_WIDTH), one row per lane. Active voices occupy lanes
# 0..E_ACTIVE_VOICES-1; a freed voice's lane is filled by the last active one.
(V_ACTIVE, V_NOTE, V_KEY_DOWN, V_SUSTAINED, V_AGE, V_PITCH, V_PITCH_TARGET, V_TRIGGER,
 V_QUIET_BLOCKS) = range(9)
# MPE (engine.expression): the voice's MIDI channel, whether it follows that member channel's
# bend/pressure/timbre (the newest note on a channel does), and its own bend in semitones
# (smoothed value and target; both 0 outside MPE).
V_CHANNEL, V_MEMBER, V_BEND, V_BEND_TARGET = range(10, 14)
V_WIDTH = 14

# eng: float64 engine slots (per plan).
(E_BEND, E_BEND_TARGET, E_BEND_RANGE_ST, E_SUSTAIN, E_MOD_WHEEL, E_PRESSURE, E_AGE,
 E_GLIDE_COEFF, E_BEND_COEFF, E_BAD_EVENTS, E_NOTES_STOLEN, E_ACTIVE_VOICES, E_HELD_STAMP,
 E_LAST_PITCH, E_TEMPO_BPM, E_TRANSPORT) = range(16)
# MPE zones (engine.expression): member channel counts of the lower zone (master channel 1,
# members 2..) and the upper zone (master 16, members 15 down), each zone's member bend range,
# the timbre (CC74) of non-member channels, and per channel 0..15 the last member-channel bend
# (-1..1), pressure and timbre (0..1) at E_CH_BEND + ch, E_CH_PRESSURE + ch, E_CH_TIMBRE + ch.
E_MPE_LOWER, E_MPE_UPPER, E_MPE_LOWER_RANGE_ST, E_MPE_UPPER_RANGE_ST, E_TIMBRE = range(16, 21)
E_SONG_BEATS = 21  # tempo (E_TEMPO_BPM), start/continue count and song position: events.TEMPO
E_CH_BEND, E_CH_PRESSURE, E_CH_TIMBRE = 24, 40, 56
E_WIDTH = 72
# Past E_WIDTH: nanoseconds summed by the timed renderer (``engine.fused.build_renderer(...,
# timed=True)``, for ``benchmarks/op_time.py``) per stage of a block, then per op k at
# T_OPS + k. The renderer the instrument plays with is generated without clock reads and
# never writes them; an instance sizes its ``eng`` with ``eng_width``.
T_PARAMS, T_VOICE_ROWS, T_SUM_VOICES, T_OUTPUT, T_BLOCK = range(E_WIDTH, E_WIDTH + 5)
T_OPS = E_WIDTH + 5


def eng_width(n_ops: int) -> int:
    """The length of a plan's ``eng``: the engine slots and the timed renderer's sums."""
    return T_OPS + n_ops


# A released voice is freed after its output stays below this peak for a whole block (-100 dB).
SILENCE_PEAK = 1e-5

# The block state (engine.block_state): every array one block renders with, by name, one row
# each of an int64 (BS_COUNT, BS_WIDTH) directory: address, then the shape (unused dims 0).
# Plan data first (read-only), then the instance's state, then its output.
BLOCK_STATE_FIELDS = (
    # name, dtype, ndim
    ("cfg", "int64", 1), ("ops", "int64", 2), ("io", "int64", 1), ("pr", "int64", 1),
    ("fa", "float64", 1), ("pmeta", "float64", 2), ("vinit", "float64", 1),
    ("ginit", "float64", 1),
    ("pstate", "float64", 2), ("ptarget", "float64", 1), ("vP", "float64", 3),
    ("gP", "float64", 3), ("PN", "float64", 2), ("vbufs", "float64", 3),
    ("gbufs", "float64", 3), ("voices", "float64", 2), ("vctx", "float64", 2),
    ("vstate", "float64", 2), ("gctx", "float64", 2), ("gstate", "float64", 2),
    ("eng", "float64", 1), ("held", "float64", 1), ("mix", "float64", 2),
)
(BS_CFG, BS_OPS, BS_IO, BS_PR, BS_FA, BS_PMETA, BS_VINIT, BS_GINIT, BS_PSTATE, BS_PTARGET, BS_VP,
 BS_GP, BS_PN, BS_VBUFS, BS_GBUFS, BS_VOICES, BS_VCTX, BS_VSTATE, BS_GCTX, BS_GSTATE, BS_ENG,
 BS_HELD, BS_MIX) = range(len(BLOCK_STATE_FIELDS))
BS_COUNT = len(BLOCK_STATE_FIELDS)
BS_ADDRESS, BS_DIM0, BS_DIM1, BS_DIM2 = range(4)
BS_WIDTH = 4

# The tempo the CTX_TEMPO_BPM slot carries: its range and default (also the Standard MIDI File
# default). Here, not in kernels.tempo, so the host's MIDI clock reads them without importing
# numba (0.23 s of the host's start, before it could start the audio process).
MIN_TEMPO_BPM = 20.0
MAX_TEMPO_BPM = 300.0
DEFAULT_TEMPO_BPM = 120.0

# live_block's ``n_events`` for the audio callback's own block (ring, output stage, status);
# 0 or more renders those events only (engine.render_template.live_block).
LIVE = -1
