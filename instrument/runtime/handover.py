"""The host -> audio process command pipe: length-prefixed pickled messages on the audio
process's stdin.

The host compiles every preset itself and sends the finished ``Plan`` (plain arrays and
metadata, ~5-450 KB pickled) so the audio process never parses or compiles a file while its
stream plays: adopting a plan is unpickling it and preparing an instance (about a millisecond
of Python), then a pointer swap at the top of a block. This also ends the race where a file
changed between the host's read and the audio process's read.

Messages: ``("plan", table, plan)`` play ``plan`` with parameter table ``table``;
``("quit",)``. The pipe connects a parent to its own child, so pickle is safe here; nothing
from the network is ever unpickled.
"""

from __future__ import annotations

import pickle
import struct

_HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 64 << 20  # far above any plan (the largest shipped one pickles to 450 KB)


def encode(message: tuple) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def write_message(stream, message: tuple) -> None:
    """Send one message (raises OSError/BrokenPipeError when the reader is gone)."""
    stream.write(encode(message))
    stream.flush()


def read_message(stream) -> tuple | None:
    """The next message from a binary stream; None at end of input (the host is gone) or on a
    frame that cannot be read."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE_BYTES:
        return None
    payload = _read_exactly(stream, size)
    if payload is None:
        return None
    message = pickle.loads(payload)
    return message if isinstance(message, tuple) and message else None


def _read_exactly(stream, n: int) -> bytes | None:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
