"""What the oscillator modules share: pitch parameters, the pitch input and the base class of
the minBLEP shapes. Voice scope: they follow the voice pitch unless ``pitch`` is patched.
The oscillators: ``modules.osc_saw`` (saw, sync_saw), ``modules.osc_pulse`` (pulse,
triangle, sub), ``modules.osc_stack`` (unison, fm2), ``modules.osc_basic`` (saw_fast, sine);
kernels and their measured claims: ``instrument.kernels.minblep`` and the files it names."""

from instrument.kernels.minblep import state_rows
from instrument.modules.base import Module, Port
from instrument.params import Kind, ParamSpec

PITCH_PARAMS = (
    ParamSpec("transpose_st", "Transpose", "st", -48, 48, 0, kind=Kind.INTEGER,
              doc="Whole semitones added to the voice pitch."),
    ParamSpec("detune_cents", "Detune", "cents", -100.0, 100.0, 0.0,
              doc="Fine tuning in cents (1/100 semitone)."),
    ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
              doc="Peak amplitude of the output."),
)
# The minBLEP shapes: level is the amplitude of the waveform; band-limited edges overshoot it.
BLEP_PARAMS = PITCH_PARAMS[:2] + (
    ParamSpec("level", "Level", "", 0.0, 1.0, 0.5, smoothing_ms=20.0,
              doc="Amplitude of the waveform (-level..level); the band-limited jumps "
                  "overshoot to about 1.4 x level."),
)
PITCH_IN = Port("pitch", default="pitch", doc="Frequency in Hz; the voice pitch by default.")


class Blep(Module):
    """A minBLEP oscillator: fixed state rows plus correction buffers sized by the block."""

    fixed_rows = 0
    buffers = 1

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        return state_rows(cls.fixed_rows, block_size, cls.buffers)
