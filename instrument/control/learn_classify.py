"""What kind of control is moving: the classifier behind MIDI learn.

``ControlClassifier`` watches Control Change traffic after learn is armed, per channel and
controller number, and names the first control that *moves enough*, with its kind:

- **14-bit** (``mode = "14bit"``): CC n (1..31) and CC n + 32 on one channel, both seen (MSB
  then LSB, or LSB refinements of one MSB), three messages of the pair in all.
- **NRPN / RPN**: a parameter number selected by CC 99/98 (NRPN) or 101/100 (RPN), then data
  entry (CC 6, 38) or increment/decrement (CC 96/97): two data messages for one number whose
  14-bit values span at least 2, or any two increments/decrements. RPN 0 (pitch-bend range,
  built in) and the null number 127/127 are never learned.
- **relative encoders**: every value is a small tick (1..15 up / 113..127 down in two's
  complement, 65..79 / 49..63 around 64) and either one value repeats at once (an encoder
  turned slowly sends the same tick again; an absolute knob never repeats a position) or
  two messages in a row jump 48 or more (an encoder reversing: 1 then 127). The encoding is
  told by which zones appear: 1..15 and 113..127 two's complement (``relative_twos``); 1..15
  and 65..79 signed bit (``relative_signed``); 49..63 and 65..79 binary offset
  (``relative_offset``). An encoder turned one way only is ambiguous (1..15 alone is two's
  complement or signed bit upwards; 65..79 alone binary offset upwards or signed bit
  downwards): it is learned as the common reading (two's complement, binary offset) and
  ``guess`` says to turn it both ways. Such an encoder is decided once it is quiet (or after
  ``GUESS_WAIT_MESSAGES``), so turning it back within one gesture is seen.
- **button**: only the values 0 and 127, both seen: absolute with ``takeover = "jump"``.
- **absolute 7-bit** otherwise, once its values span 2 or more: a knob whose pot jitters by
  one tick (64, 65, 64, ...) is never learned.

A control is decided at its ``DECIDE_AFTER``-th message (5: a turned knob sends dozens), or
by ``poll`` once it has been quiet ``QUIET_S`` (a short nudge of 2 to 4 messages). Never
learned: bank select (CC 0/32), sustain (64), the channel mode messages (120..127), plain
CC 6/38/96..101 (NRPN/RPN data and selection), anything in ``ignore``.

Pure logic, no MIDI library, no clock of its own: times come in as ``t`` (seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from instrument.control.mapping import (
    CC_DATA_LSB, CC_DATA_MSB, CC_NRPN_LSB, CC_NRPN_MSB,
    CC_RPN_LSB, CC_RPN_MSB, HIRES_MSB_MAX, PN_CCS,
)

DECIDE_AFTER = 5     # messages of one control before it is decided
QUIET_S = 0.3        # ... or this long without a message from it
GUESS_WAIT_MESSAGES = 40  # an encoder turned one way: wait for quiet, or this many messages
JUMP = 48            # consecutive values this far apart: an encoder reversing, not a knob
NEVER_LEARNED = frozenset({0, 32, 64, *range(120, 128)})  # bank select, sustain, mode messages
_SELECT = {CC_NRPN_MSB: ("nrpn", 0), CC_NRPN_LSB: ("nrpn", 1),
           CC_RPN_MSB: ("rpn", 0), CC_RPN_LSB: ("rpn", 1)}
SELECT_CCS = frozenset(_SELECT)
PN_NULL = 16383

# Tick zones (values) of relative encoders.
_LOW = range(1, 16)        # +1..+15: two's complement and signed bit, up
_HIGH = range(113, 128)    # -15..-1: two's complement, down
_ABOVE = range(65, 80)     # 64 + n: binary offset up, or signed bit down
_BELOW = range(49, 64)     # 64 - n: binary offset down
_KIND_TEXT = {"absolute": "7-bit", "14bit": "14-bit",
              "relative_twos": "relative, two's complement",
              "relative_signed": "relative, signed bit",
              "relative_offset": "relative, binary offset"}


@dataclass(frozen=True)
class LearnedControl:
    """A classified control. ``source`` "cc", "nrpn" or "rpn"; ``number`` the CC (the MSB of
    a 14-bit pair) or the parameter number (MSB * 128 + LSB); ``channel`` 0..15; ``mode`` a
    mapping mode; ``button`` True for a 0/127 switch (learned with jump takeover); ``guess``
    non-empty when the encoding was a guess (what to do to be sure)."""

    source: str
    channel: int
    number: int
    mode: str = "absolute"
    button: bool = False
    guess: str = ""

    def control_text(self) -> str:
        """"CC 21 channel 1", "CC 5/37 channel 1", "NRPN 1/20 channel 3" (channels from 1)."""
        if self.source != "cc":
            what = f"{self.source.upper()} {self.number >> 7}/{self.number & 127}"
        elif self.mode == "14bit":
            what = f"CC {self.number}/{self.number + 32}"
        else:
            what = f"CC {self.number}"
        return f"{what} channel {self.channel + 1}"

    def kind_text(self) -> str:
        if self.button:
            return "button"
        if self.source != "cc":
            return "14-bit " + self.source.upper()
        return _KIND_TEXT[self.mode]

    def table(self, target: str) -> dict:
        """The ``[[cc]]`` table of a mapping that binds this control to ``target``."""
        table: dict = {self.source: [self.number >> 7, self.number & 127]} \
            if self.source != "cc" else {"cc": self.number}
        table["channel"] = self.channel
        table["target"] = target
        if self.source == "cc" and self.mode != "absolute":
            table["mode"] = self.mode
        if self.button:
            table["takeover"] = "jump"
        return table

    def keys(self) -> set[tuple[str, int, int]]:
        """(source, channel, number) of every message number this control uses."""
        if self.source != "cc":
            return {(self.source, self.channel, self.number)}
        keys = {("cc", self.channel, self.number)}
        if self.mode == "14bit":
            keys.add(("cc", self.channel, self.number + 32))
        return keys


class _Seen:
    """What one plain CC has sent since arming."""

    __slots__ = ("values", "last_t")

    def __init__(self):
        self.values: list[int] = []
        self.last_t = 0.0


class ControlClassifier:
    """Feed every Control Change after arming; ``feed``/``poll`` return the first control that
    moved enough, as a ``LearnedControl``, else None. ``ignore``: (source, channel, number)
    keys never to learn (``("cc", ch, n)``, ``("nrpn", ch, pn)``), e.g. controls already
    learned in this learn session. ``reset`` forgets the moves seen (the next target)."""

    def __init__(self, ignore=()):
        self.ignore: set[tuple[str, int, int]] = set(ignore)
        self._pn_kind: list[str | None] = [None] * 16  # NRPN/RPN selection per channel
        self._pn = [[127, 127] for _ in range(16)]
        self._pn_msb = [-1] * 16                     # data entry MSB since the selection
        self.reset()

    def reset(self) -> None:
        """Forget the moves seen so far (not the NRPN/RPN selection)."""
        self._seen: dict[tuple[int, int], _Seen] = {}
        self._pn_data: dict[tuple[str, int, int], list] = {}  # values (int) or "step"

    def takes(self, channel: int, cc: int) -> bool:
        """True for a message the classifier looks at (and the learn session swallows);
        False for what it never learns and the NRPN/RPN selection, which must reach the
        router too (a controller may select once, then send only data)."""
        if cc in NEVER_LEARNED or cc in _SELECT or not 0 <= cc < 128:
            return False
        if cc in PN_CCS:
            return self._pn_kind[channel] is not None
        return True

    def ignored(self, channel: int, cc: int) -> bool:
        """True for a message of a control in ``ignore`` (the NRPN/RPN data of a selected
        ignored number too)."""
        if not self.ignore:
            return False
        if cc in PN_CCS and cc not in _SELECT:
            kind = self._pn_kind[channel]
            return kind is not None and \
                (kind, channel, self._pn[channel][0] * 128 + self._pn[channel][1]) in self.ignore
        return ("cc", channel, cc) in self.ignore

    # -- per message ------------------------------------------------------------------------------

    def feed(self, channel: int, cc: int, value: int, t: float) -> LearnedControl | None:
        if not (0 <= channel < 16 and 0 <= cc < 128 and 0 <= value < 128):
            return None
        if cc in _SELECT:
            kind, half = _SELECT[cc]
            if self._pn_kind[channel] != kind:
                self._pn[channel] = [0, 0]
            self._pn[channel][half] = value
            self._pn_msb[channel] = -1
            number = self._pn[channel][0] * 128 + self._pn[channel][1]
            self._pn_kind[channel] = None if number == PN_NULL else kind
            return None
        if cc in NEVER_LEARNED:
            return None
        if cc in PN_CCS:
            return self._pn_message(channel, cc, value)
        key = (channel, cc)
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen()
        seen.values.append(value)
        seen.last_t = t
        return self._decide(channel, cc, final=False)

    def poll(self, t: float) -> LearnedControl | None:
        """Decide a control that has been quiet for ``QUIET_S`` with what it sent."""
        for (channel, cc), seen in list(self._seen.items()):
            if t - seen.last_t >= QUIET_S and seen.values:
                found = self._decide(channel, cc, final=True)
                if found is not None:
                    return found
        return None

    # -- plain CC ---------------------------------------------------------------------------------

    def _decide(self, channel: int, cc: int, final: bool) -> LearnedControl | None:
        pair = _pair(cc)
        if pair is not None:
            msb = self._seen.get((channel, pair))
            lsb = self._seen.get((channel, pair + 32))
            if msb is not None and lsb is not None:
                if len(msb.values) + len(lsb.values) >= 3 or final:
                    return self._found(LearnedControl("cc", channel, pair, "14bit"))
                return None
        seen = self._seen[(channel, cc)]
        if not final and len(seen.values) < DECIDE_AFTER:
            return None
        found = classify_values(seen.values)
        if found is None:
            return None
        mode, button, guess = found
        if guess and not final and len(seen.values) < GUESS_WAIT_MESSAGES:
            return None  # one way so far: it may still turn back (decided when quiet)
        return self._found(LearnedControl("cc", channel, cc, mode, button, guess))

    # -- NRPN / RPN -------------------------------------------------------------------------------

    def _pn_message(self, ch: int, cc: int, value: int) -> LearnedControl | None:
        kind = self._pn_kind[ch]
        if kind is None:
            return None
        number = self._pn[ch][0] * 128 + self._pn[ch][1]
        if kind == "rpn" and number == 0:
            return None  # pitch-bend sensitivity: built in, never learned
        data = self._pn_data.setdefault((kind, ch, number), [])
        if cc == CC_DATA_MSB:
            self._pn_msb[ch] = value
            data.append(value * 128)
        elif cc == CC_DATA_LSB:
            if self._pn_msb[ch] < 0:
                return None
            data.append(self._pn_msb[ch] * 128 + value)
        else:  # CC_INCREMENT / CC_DECREMENT
            data.append("step")
        steps = sum(1 for v in data if v == "step")
        values = [v for v in data if v != "step"]
        if steps >= 2 or (len(values) >= 2 and max(values) - min(values) >= 2):
            return self._found(LearnedControl(kind, ch, number))
        return None

    def _found(self, control: LearnedControl) -> LearnedControl | None:
        if control.keys() & self.ignore:
            return None
        return control


def _pair(cc: int) -> int | None:
    """The MSB of the 14-bit pair ``cc`` may belong to (None: cannot)."""
    if 1 <= cc <= HIRES_MSB_MAX and cc + 32 not in PN_CCS and cc not in PN_CCS:
        return cc
    if 33 <= cc <= HIRES_MSB_MAX + 32 and cc not in PN_CCS and cc - 32 not in PN_CCS:
        return cc - 32
    return None


def classify_values(values: list[int]) -> tuple[str, bool, str] | None:
    """(mode, button, guess) for the values one plain CC sent, or None: not enough movement
    (fewer than 2 values, or a span of one tick with no repeat)."""
    if len(values) < 2:
        return None
    distinct = set(values)
    if distinct == {0, 127}:
        return "absolute", True, ""
    ticks = [v for v in values if v not in (0, 64)]
    pairs = list(zip(values, values[1:]))
    repeats = any(a == b and a not in (0, 64) for a, b in pairs)
    jumps = any(abs(a - b) >= JUMP for a, b in pairs)
    zones = [z for z in (_LOW, _HIGH, _ABOVE, _BELOW) if any(v in z for v in ticks)]
    in_zones = bool(ticks) and all(any(v in z for z in zones) for v in ticks)
    if in_zones and (repeats or jumps):
        low, high, above, below = (z in zones for z in (_LOW, _HIGH, _ABOVE, _BELOW))
        if low and high:
            return "relative_twos", False, ""
        if low and above and not below:
            return "relative_signed", False, ""
        if below and above:
            return "relative_offset", False, ""
        if high:
            return "relative_twos", False, ""
        if below:
            return "relative_offset", False, ""
        if low:
            return "relative_twos", False, ("turned one way only: two's complement or signed "
                                            "bit; learn it again turning both ways to be sure")
        return "relative_offset", False, ("turned one way only: binary offset or signed bit; "
                                           "learn it again turning both ways to be sure")
    if max(values) - min(values) >= 2:
        return "absolute", False, ""
    return None


__all__ = ["SELECT_CCS", "ControlClassifier", "DECIDE_AFTER", "LearnedControl", "QUIET_S",
           "classify_values"]
