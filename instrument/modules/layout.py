"""Shared numbers between the engine and module kernels: reserved buffer rows and context slots.

Every kernel has the signature ``kernel(bufs, io, P, pr, st, ctx, s0, s1)``:

- ``bufs``: float64 ``(n_rows, block_size)``; a kernel reads and writes ``bufs[row, s0:s1]``.
- ``io``: int64 rows of the node's inputs (declaration order) then its outputs.
- ``P``: float64 ``(n_param_rows, block_size)``, per-sample parameter values in display units,
  already smoothed and modulated; ``pr[k]`` is the row of the node's k-th declared parameter.
- ``st``: float64 state of this node instance (one per voice for voice nodes), sized by
  ``Module.prepare`` and initialised by ``Module.reset_state``.
- ``ctx``: float64 context of the voice (or the global context for global nodes), slots below.
- ``s0, s1``: the sample range to process (a block is split at event offsets).

A kernel allocates nothing, raises nothing and returns nothing.
"""

# Reserved buffer rows. Unconnected inputs read one of these, as their Port.default says.
ROW_ZERO = 0  # all zeros, never written
ROW_ONE = 1  # all ones, never written
ROW_PITCH = 2  # voice pitch in Hz per sample (glide and pitch bend applied)
ROW_GATE = 3  # 1.0 while the key (or sustain) holds the voice, else 0.0
ROW_TRIGGER = 4  # 1.0 on the sample a note starts (or retriggers), else 0.0
ROW_BUS_L = 5  # sum of all voices, left
ROW_BUS_R = 6  # sum of all voices, right
ROW_OUT_L = 7  # global graph output, left
ROW_OUT_R = 8  # global graph output, right
N_RESERVED_ROWS = 9

PORT_DEFAULT_ROWS = {
    "zero": ROW_ZERO,
    "one": ROW_ONE,
    "pitch": ROW_PITCH,
    "gate": ROW_GATE,
    "trigger": ROW_TRIGGER,
}

# Context slots (float64 vector per voice, and one global).
CTX_SAMPLE_RATE = 0
CTX_NOTE = 1  # MIDI note number of the voice (fractional during glide is in ROW_PITCH only)
CTX_VELOCITY = 2  # 0..1
CTX_MOD_WHEEL = 3  # 0..1 (CC1)
CTX_PRESSURE = 4  # 0..1 (channel or poly aftertouch)
CTX_VOICE_INDEX = 5
CTX_RESET = 6  # 1.0 during the first segment after the voice was (re)started from silence
CTX_PEAK = 7  # written by output kernels: peak level this block (voice stealing, freeing)
CTX_WIDTH = 16
