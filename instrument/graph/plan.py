"""The compiled plan: flat, read-only arrays that the native renderer walks, plus the names
needed to talk about them (parameter paths, macros) and a readable text form."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from instrument.params import ParamSpec


@dataclass(frozen=True)
class ParamSlot:
    """One parameter of the plan: index into the parameter table, ``node.param`` path."""

    index: int
    path: str
    node: str
    spec: ParamSpec
    initial_norm: float


@dataclass(frozen=True)
class MacroSlot:
    """A macro: each target is (parameter index, normalized value at 0, normalized value at 1)."""

    index: int
    name: str
    label: str
    targets: tuple[tuple[int, float, float], ...]
    initial_norm: float

    def targets_for(self, macro_norm: float) -> list[tuple[int, float]]:
        m = min(max(float(macro_norm), 0.0), 1.0)
        return [(idx, lo + m * (hi - lo)) for idx, lo, hi in self.targets]


@dataclass(frozen=True)
class Plan:
    """Immutable result of compiling a preset for one sample rate and block size.

    The audio side reads these arrays and never writes them (they are flagged read-only);
    everything that changes while playing lives in a ``PlanInstance``. A plan is plain data
    (arrays, numbers, text, parameter metadata): it pickles, so the host compiles a preset once
    and hands the audio process the finished plan; the native renderer is named by key and
    bound by the engine in the process that plays it.
    """

    name: str
    sample_rate: float
    block_size: int
    cfg: np.ndarray
    ops: np.ndarray
    io: np.ndarray
    pr: np.ndarray
    fa: np.ndarray
    pmeta: np.ndarray
    n_voice_rows: int
    n_global_rows: int
    n_voice_param_rows: int
    n_global_param_rows: int
    vinit: np.ndarray
    ginit: np.ndarray
    vlayout: np.ndarray  # (nodes, 2): each voice node's state rows [start, end)
    glayout: np.ndarray  # the same for the global graph's nodes
    glide_ms: float
    bend_range_st: float
    params: tuple[ParamSlot, ...]
    macros: tuple[MacroSlot, ...]
    renderer_key: str = field(repr=False, compare=False)  # engine.fused.renderer_for_key
    text: str = field(default="", repr=False, compare=False)

    def param_index(self, path: str) -> int:
        for slot in self.params:
            if slot.path == path:
                return slot.index
        raise KeyError(path)

    def macro(self, name: str) -> MacroSlot:
        for slot in self.macros:
            if slot.name == name:
                return slot
        raise KeyError(name)

    def __str__(self) -> str:
        return self.text


def freeze(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.flags.writeable = False
