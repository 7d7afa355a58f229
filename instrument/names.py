"""Suggestions for misspelled names in error messages."""

from __future__ import annotations

import difflib


def nearest(name: str, candidates) -> str:
    """"did you mean 'x'?" for the closest candidate, else a short list of what exists."""
    candidates = sorted(candidates)
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    if match:
        return f"did you mean '{match[0]}'?"
    if not candidates:
        return "there is none"
    shown = ", ".join(candidates[:12]) + (", ..." if len(candidates) > 12 else "")
    return f"valid: {shown}"
