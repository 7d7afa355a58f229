"""The module base class: parameters, ports and the kernel are declared once, as class data.

A module class is a description, not a running object: the graph compiler reads its
declarations, sizes its state with ``prepare`` and binds its numba ``kernel`` into the fused
block renderer. The kernel contract is in ``instrument.layout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from instrument.layout import PORT_DEFAULT_ROWS
from instrument.params import ParamSpec

SCOPES = ("voice", "global", "any")


@dataclass(frozen=True)
class Port:
    """A signal input. Unconnected, it reads ``default``: zero, one, pitch, gate or trigger."""

    name: str
    default: str = "zero"
    doc: str = ""


class Module:
    """Base class of every DSP module.

    Subclasses set ``type_name``, ``label``, ``doc``, ``scope``, ``params``, ``inputs``,
    ``outputs``, ``state_size`` (or override ``prepare``) and ``kernel``.
    """

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    scope: ClassVar[str] = "any"
    params: ClassVar[tuple[ParamSpec, ...]] = ()
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    state_size: ClassVar[int] = 0
    kernel: ClassVar[Any] = None
    # Parameters the kernel reads only at a segment's first sample and at the last sample of
    # every COEFF_STEP chunk from there (filter cutoffs, turned into coefficients per chunk):
    # a modulation into one writes only those samples (``engine.builtin_ops.pmod_op``).
    chunk_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def prepare(cls, sample_rate: float, block_size: int) -> int:
        """Return how many float64 state slots one instance needs at this rate and block size."""
        return cls.state_size

    @classmethod
    def reset_state(cls, state: np.ndarray, sample_rate: float) -> None:
        """Fill a freshly allocated state vector; the default is all zeros."""
        state[:] = 0.0

    @classmethod
    def read_at_points(cls, state: np.ndarray) -> bool:
        """Called with a fresh state (one lane's) when the plan finds every output of this node
        read only at the modulation points (``layout.MOD_STEP``), by modulations of parameters
        whose curve is neither linear nor dB. A kernel that can then write those samples alone
        marks it in ``state`` and returns True; by default every sample is written (False)."""
        return False

    @classmethod
    def param(cls, name: str) -> ParamSpec:
        for spec in cls.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(p.name for p in cls.params)

    @classmethod
    def input_names(cls) -> tuple[str, ...]:
        return tuple(p.name for p in cls.inputs)

    @classmethod
    def problems(cls) -> list[str]:
        """Declaration problems (empty when the class is sane)."""
        found: list[str] = []
        if not cls.type_name or not cls.type_name.isidentifier():
            found.append(f"type_name {cls.type_name!r} is not an identifier")
        if cls.scope not in SCOPES:
            found.append(f"scope {cls.scope!r} is not one of {', '.join(SCOPES)}")
        names = [p.name for p in cls.params] + [p.name for p in cls.inputs] + list(cls.outputs)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            found.append(f"names used twice among params and ports: {', '.join(dupes)}")
        for name in cls.chunk_params:
            if name not in cls.param_names():
                found.append(f"chunk_params names {name!r}, which is not a parameter")
        for port in cls.inputs:
            if port.default not in PORT_DEFAULT_ROWS:
                found.append(f"input {port.name!r} default {port.default!r} is unknown")
        for spec in cls.params:
            found.extend(f"param {spec.name}: {p}" for p in spec.problems())
        if cls.kernel is None or not hasattr(cls.kernel, "py_func"):
            found.append("kernel is not a numba @njit function")
        return found


# The ports of a global stereo effect (delay, chorus, reverb, drive, eq). An input and an output
# cannot share a name, so a chain reads "voices.left -> dly.left", "dly.out_left -> rev.left",
# "rev.out_left -> main.left".
STEREO_IN = (Port("left", doc="Left input."), Port("right", doc="Right input."))
STEREO_OUT = ("out_left", "out_right")


def ceil_samples(ms: float, sample_rate: float) -> int:
    """Whole samples that hold ``ms`` milliseconds at ``sample_rate`` (rounded up)."""
    return math.ceil(ms * 0.001 * sample_rate)
