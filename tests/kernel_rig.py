"""The kernel tests' harness besides the package's ``instrument.modules.kernel_args`` (which
module validation uses too): ``segment_bounds``, a block's split points as (s0, s1) pairs."""

from __future__ import annotations

import itertools

BLOCK = 64


def segment_bounds(segments, block: int = BLOCK) -> list[tuple[int, int]]:
    """(s0, s1) of each segment of a block split at ``segments`` (which start with 0)."""
    bounds = list(segments) if segments[-1] == block else list(segments) + [block]
    return list(itertools.pairwise(bounds))
