"""Decode untrusted OSC 1.0 datagrams, validating every byte before trusting it.

``decode_datagram(data)`` returns the messages of one UDP datagram as ``(address, args)``
pairs, or raises ``MalformedDatagram`` (a fixed reason text, never the datagram's content) and
the whole datagram is dropped: half of a bundle applied would be worse than none.

Why not python-osc's parser: a bundle element of size -4 sent it into an endless loop (one core
burnt, 1.7 MB/s of warnings on the root logger), unknown type tags log a warning per datagram,
and it decodes a 60 KB string before anyone can say no. Here every loop is bounded by the
datagram's length and by the limits below, and nothing is logged.

Accepted (anything else is malformed):

- at most ``MAX_DATAGRAM_BYTES`` bytes, a multiple of 4;
- a message: address string starting with '/', NUL-terminated, padded with NULs to a multiple
  of 4, valid UTF-8; then either nothing (no arguments, as python-osc and old senders do) or a
  type tag string starting with ',' whose tags are all in ``ACCEPTED_TYPE_TAGS`` (at most
  ``MAX_ARGS_PER_MESSAGE``), then exactly the argument bytes the tags describe, no trailing
  bytes;
- a bundle: ``#bundle\\0``, an 8-byte time tag (ignored: messages apply on arrival), then
  elements, each an int32 size (positive, a multiple of 4, within the bytes left) followed by a
  message or bundle of exactly that size; bundles nested at most ``MAX_BUNDLE_DEPTH`` deep, at
  most ``MAX_ELEMENTS_PER_DATAGRAM`` elements in the whole datagram.

Cost (measured on the development machine, x86-64): 1.3-2 us for a one-float message (python-osc:
3-3.5 us), ~1 us to reject a malformed datagram, under 1 ms for the costliest acceptable
datagram (8 KiB of messages with 16 string arguments each). A 60 KB string datagram (8 ms of
host CPU through python-osc) is refused on its length alone.
"""

from __future__ import annotations

import struct

# TouchOSC and similar surfaces send messages and bundles of a few hundred bytes; 8 KiB leaves
# room for large bundles and long preset names while capping what one datagram can cost.
MAX_DATAGRAM_BYTES = 8192
MAX_BUNDLE_DEPTH = 4  # a bundle inside a bundle inside ... : 4 levels
MAX_ELEMENTS_PER_DATAGRAM = 256  # messages and bundles together, in the whole datagram
MAX_ARGS_PER_MESSAGE = 16  # our addresses take at most 2; T/F/N tags carry no bytes at all

# i int32, f float32, s string, b blob (the OSC 1.0 core), h int64, d float64, S symbol,
# T true, F false, N nil. Arrays ('[' ']'), time tags, colours, MIDI and chars are refused.
ACCEPTED_TYPE_TAGS = "ifsbhdSTFN"
_ACCEPTED_TAG_BYTES = ACCEPTED_TYPE_TAGS.encode("ascii")

BUNDLE_HEADER = b"#bundle\x00"
_BUNDLE_PREAMBLE_BYTES = len(BUNDLE_HEADER) + 8  # header + time tag

_INT32 = struct.Struct(">i")
_FIXED_ARGS = {  # tag -> (decoder, bytes)
    ord("i"): (_INT32, 4),
    ord("f"): (struct.Struct(">f"), 4),
    ord("h"): (struct.Struct(">q"), 8),
    ord("d"): (struct.Struct(">d"), 8),
}
_CONSTANT_ARGS = {ord("T"): True, ord("F"): False, ord("N"): None}
_STRING_TAGS = (ord("s"), ord("S"))
_BLOB_TAG = ord("b")
_SLASH = ord("/")
_COMMA = ord(",")


class MalformedDatagram(ValueError):
    """A datagram that is not acceptable OSC; ``reason`` is a fixed, loggable text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_datagram(data: bytes) -> list[tuple[str, list]]:
    """The messages of ``data`` in order, as ``(address, args)``; raises MalformedDatagram
    for anything the module docstring does not accept. Never any other exception for bytes
    input, and at most O(len(data)) work."""
    size = len(data)
    if size == 0:
        raise MalformedDatagram("empty datagram")
    if size > MAX_DATAGRAM_BYTES:
        raise MalformedDatagram(f"datagram over {MAX_DATAGRAM_BYTES} bytes")
    if size % 4:
        raise MalformedDatagram("datagram size not a multiple of 4")
    messages: list[tuple[str, list]] = []
    _decode_element(data, 0, size, 0, messages, [0])
    return messages


def _decode_element(data: bytes, start: int, end: int, depth: int,
                    messages: list, elements: list[int]) -> None:
    """Decode the message or bundle in ``data[start:end]`` into ``messages``; ``elements``
    is the one-item running count of elements in the whole datagram."""
    elements[0] += 1
    if elements[0] > MAX_ELEMENTS_PER_DATAGRAM:
        raise MalformedDatagram(f"more than {MAX_ELEMENTS_PER_DATAGRAM} elements")
    if data[start] == _SLASH:  # an address starts with '/': the message's own check too
        messages.append(_decode_message(data, start, end))
    elif data.startswith(BUNDLE_HEADER, start, end):
        _decode_bundle(data, start, end, depth + 1, messages, elements)
    else:
        raise MalformedDatagram("neither a message ('/') nor a bundle ('#bundle')")


def _decode_bundle(data: bytes, start: int, end: int, depth: int,
                   messages: list, elements: list[int]) -> None:
    if depth > MAX_BUNDLE_DEPTH:
        raise MalformedDatagram(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    index = start + _BUNDLE_PREAMBLE_BYTES
    if index > end:
        raise MalformedDatagram("bundle shorter than its header and time tag")
    # Each pass consumes at least 8 bytes (size and a 4-byte minimum element), so this loop
    # runs at most len(data) / 8 times; the element bound stops it sooner.
    while index < end:
        if index + 4 > end:
            raise MalformedDatagram("bundle element size truncated")
        (element_size,) = _INT32.unpack_from(data, index)
        index += 4
        if element_size <= 0:
            raise MalformedDatagram("bundle element size not positive")
        if element_size % 4:
            raise MalformedDatagram("bundle element size not a multiple of 4")
        if element_size > end - index:
            raise MalformedDatagram("bundle element larger than the bytes left")
        _decode_element(data, index, index + element_size, depth, messages, elements)
        index += element_size


def _decode_message(data: bytes, start: int, end: int) -> tuple[str, list]:
    address, index = _read_string(data, start, end, "address")
    if index == end:
        return address, []
    if data[index] != _COMMA:
        raise MalformedDatagram("type tag string does not start with ','")
    tag_end = data.find(b"\x00", index, end)
    if tag_end < 0:
        raise MalformedDatagram("type tag string not NUL-terminated")
    tags = data[index + 1:tag_end]
    if len(tags) > MAX_ARGS_PER_MESSAGE:
        raise MalformedDatagram(f"more than {MAX_ARGS_PER_MESSAGE} arguments")
    if tags.translate(None, _ACCEPTED_TAG_BYTES):
        raise MalformedDatagram("type tag not accepted (accepted: " + ACCEPTED_TYPE_TAGS + ")")
    index = _skip_padding(data, tag_end, end, "type tag string")
    args = []
    for tag in tags:
        value, index = _read_argument(data, index, end, tag)
        args.append(value)
    if index != end:
        raise MalformedDatagram("bytes after the last argument")
    return address, args


def _read_argument(data: bytes, index: int, end: int, tag: int):
    fixed = _FIXED_ARGS.get(tag)
    if fixed is not None:
        decoder, size = fixed
        if index + size > end:
            raise MalformedDatagram("argument truncated")
        return decoder.unpack_from(data, index)[0], index + size
    if tag in _CONSTANT_ARGS:
        return _CONSTANT_ARGS[tag], index
    if tag in _STRING_TAGS:
        return _read_string(data, index, end, "string argument")
    return _read_blob(data, index, end)  # 'b': the only tag left after the filter


def _read_string(data: bytes, start: int, end: int, what: str) -> tuple[str, int]:
    """An OSC string at ``start``: its text and the index after its padding."""
    nul = data.find(b"\x00", start, end)
    if nul < 0:
        raise MalformedDatagram(f"{what} not NUL-terminated")
    try:
        text = data[start:nul].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedDatagram(f"{what} not UTF-8") from None
    return text, _skip_padding(data, nul, end, what)


def _skip_padding(data: bytes, nul: int, end: int, what: str) -> int:
    """The index after the NUL at ``nul`` and the NULs padding it to a multiple of 4 bytes
    (offsets inside a datagram are multiples of 4, so absolute alignment is the same)."""
    padded_end = (nul // 4 + 1) * 4
    if padded_end > end:
        raise MalformedDatagram(f"{what} padding truncated")
    if data.count(0, nul, padded_end) != padded_end - nul:
        raise MalformedDatagram(f"{what} padding not NUL")
    return padded_end


def _read_blob(data: bytes, index: int, end: int) -> tuple[bytes, int]:
    if index + 4 > end:
        raise MalformedDatagram("blob size truncated")
    (size,) = _INT32.unpack_from(data, index)
    index += 4
    if size < 0 or size > end - index:
        raise MalformedDatagram("blob size out of range")
    padded_end = index + (size + 3) // 4 * 4
    if padded_end > end:
        raise MalformedDatagram("blob padding truncated")
    if data.count(0, index + size, padded_end) != padded_end - index - size:
        raise MalformedDatagram("blob padding not NUL")
    return data[index:index + size], padded_end
