"""MPE zones on the control side: the MPE Configuration Message (MCM) read from a port's
Control Changes, and the zone layout the engine keeps (``engine.expression``), mirrored here so
the host knows which channels are member channels (their CC74 is a note's timbre, not a knob)
and can replay the zones into a restarted audio process.

The MCM is RPN 6 (CC101 = 0, CC100 = 6) followed by Data Entry MSB (CC6) = the number of member
channels, on channel 1 (lower zone) or 16 (upper zone); 0 switches the zone off. This decoder
runs for every MIDI input, whatever the controller mapping (also with ``--mapping none``), so an
MPE controller configures the instrument as soon as it is plugged in. It keeps its own RPN
selection per channel: the mapping's router (``cc_router``) reads the same messages for its own
(N)RPN controls and for RPN 0, the pitch-bend range.
"""

from __future__ import annotations

CC_DATA_MSB, CC_NRPN_LSB, CC_NRPN_MSB, CC_RPN_LSB, CC_RPN_MSB = 6, 98, 99, 100, 101
RPN_MCM = 6
CHANNELS = 16
LOWER_MASTER, UPPER_MASTER = 0, 15


def parse_mpe(table, where: str, error) -> tuple[int, int]:
    """A mapping's ``[mpe]`` table -> (lower, upper) member channel counts: the zones set when
    a port with this mapping opens, for an MPE controller that does not send the MCM itself.
    ``error(message, where, fix)`` builds the one-line error to raise."""
    fix = "write [mpe] with lower = 15 (or upper = 15, or both with at most 14 together)"
    if not isinstance(table, dict):
        raise error("mpe must be a table", where, fix)
    extra = sorted(set(table) - {"lower", "upper"})
    if extra:
        raise error(f"unknown key {extra[0]!r}", f"{where}.{extra[0]}", "use lower and upper")
    counts = []
    for key in ("lower", "upper"):
        n = table.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 15:
            raise error(f"{key} = {n!r} is not a number of member channels", f"{where}.{key}",
                        "use a whole number 0..15 (0: no such zone)")
        counts.append(n)
    lower, upper = counts
    if lower and upper and lower + upper > 14:
        raise error(f"lower = {lower} and upper = {upper} overlap", where,
                    "give the two zones at most 14 member channels together")
    if not lower and not upper:
        raise error("no zone", where, fix)
    return lower, upper


class McmDecoder:
    """Feed it a port's Control Changes; ``feed`` returns the member count when one completes
    an MCM on channel 1 or 16 (``None`` otherwise)."""

    def __init__(self):
        self._rpn = [[127, 127] for _ in range(CHANNELS)]  # selected RPN (MSB, LSB); 127: none

    def feed(self, channel: int, cc: int, value: int) -> int | None:
        rpn = self._rpn[channel]
        if cc == CC_RPN_MSB:
            rpn[0] = value
        elif cc == CC_RPN_LSB:
            rpn[1] = value
        elif cc in (CC_NRPN_MSB, CC_NRPN_LSB):
            rpn[0] = rpn[1] = 127  # an NRPN is selected now, not an RPN
        elif cc == CC_DATA_MSB and rpn == [0, RPN_MCM] and channel in (LOWER_MASTER, UPPER_MASTER):
            return min(value, CHANNELS - 1)
        return None


class MpeZones:
    """The lower zone (master channel 0, members 1..n) and the upper zone (master 15, members
    14 down to 15-n), 0-based channels; setting one shrinks the other where they would overlap,
    as the MPE spec says (and as ``engine.expression.set_zone`` does)."""

    def __init__(self):
        self.lower = 0
        self.upper = 0

    def set(self, master: int, members: int) -> None:
        n = min(max(int(members), 0), CHANNELS - 1)
        if master == LOWER_MASTER:
            self.lower = n
            self.upper = min(self.upper, max(14 - n, 0))
        elif master == UPPER_MASTER:
            self.upper = n
            self.lower = min(self.lower, max(14 - n, 0))

    @property
    def on(self) -> bool:
        return self.lower > 0 or self.upper > 0

    def is_member(self, channel: int) -> bool:
        return 1 <= channel <= self.lower or 15 - self.upper <= channel <= 14

    def master_of(self, channel: int) -> int:
        """The master channel of the zone whose member ``channel`` is."""
        return LOWER_MASTER if 1 <= channel <= self.lower else UPPER_MASTER

    def describe(self) -> str:
        parts = []
        if self.lower:
            parts.append(f"lower zone: master channel 1, members 2-{1 + self.lower}")
        if self.upper:
            parts.append(f"upper zone: master channel 16, members {16 - self.upper}-15")
        return "; ".join(parts) or "off"
