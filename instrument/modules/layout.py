"""Shared numbers between the engine and module kernels: the kernel contract, reserved buffer
rows and context slots.

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
- ``ctx``: float64 ``(CTX_WIDTH, lanes)``: per-lane context, slots below.
- ``s0, s1``: the sample range to process (a block is split at event offsets).
- ``nl``: the number of lanes to process (the active voices; 1 in the global graph).

A kernel allocates nothing, raises nothing and returns nothing. Lane ``v`` of every array is the
same voice; lanes at and past ``nl`` must not be touched.
"""

# Reserved buffer rows (the same numbers in the voice and the global buffers). Unconnected
# inputs read one of the first five, as their Port.default says.
ROW_ZERO = 0  # all zeros, never written
ROW_ONE = 1  # all ones, never written
ROW_PITCH = 2  # voice pitch in Hz per sample (glide and pitch bend applied); voice graph only
ROW_GATE = 3  # 1.0 while the key (or sustain) holds the voice, else 0.0; voice graph only
ROW_TRIGGER = 4  # 1.0 on the sample a note starts (or retriggers), else 0.0; voice graph only
ROW_OUT_L = 5  # the graph's output node writes here (voice: per voice; global: main out)
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
CTX_GATE_NOW = 7  # engine scratch
CTX_PITCH_NOW = 8  # engine scratch
CTX_LAST_PEAK = 9  # the voice's peak in the previous block
CTX_TIMBRE = 10  # 0..1 (CC74: of the voice's MPE member channel, else of any channel)
CTX_TEMPO_BPM = 11  # tempo (MIDI clock, /tempo); 0 outside the engine: kernels.tempo defaults it
CTX_TRANSPORT = 12  # count of MIDI start/continue downbeats (a change restarts synced LFOs)
CTX_SONG_BEATS = 13  # song position in beats at the last of those downbeats
CTX_WIDTH = 14
