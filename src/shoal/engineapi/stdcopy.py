"""Docker's stdcopy framing and log-line layout.

A frame is an 8-byte header [stream, 0, 0, 0, payload length as uint32 big-endian] then the payload.
A log line is `[<RFC3339Nano fixed> ][<k=v,k=v> ]<text>`: details (sorted attributes) first, then the
timestamp is put in front of them, as moby's WriteLogStream does."""

from __future__ import annotations

import struct
from urllib.parse import quote_plus

from shoal.base.clock import rfc3339
from shoal.engineapi.backend import LogMessage

_HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = _HEADER.size
_MAX_FRAME = 0xFFFFFFFF


def frame(stream: int, payload: bytes) -> bytes:
    if len(payload) > _MAX_FRAME:
        raise ValueError("stdcopy frame too large")
    return _HEADER.pack(stream, len(payload)) + payload


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split a complete multiplexed byte string back into (stream, payload) frames."""
    frames: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_SIZE:
            raise ValueError("truncated stdcopy header")
        stream, length = _HEADER.unpack_from(data, offset)
        offset += HEADER_SIZE
        if len(data) - offset < length:
            raise ValueError("truncated stdcopy payload")
        frames.append((stream, data[offset : offset + length]))
        offset += length
    return frames


def details_prefix(attrs: dict[str, str]) -> bytes:
    """`k=v,k=v ` sorted by key, keys and values query-escaped as Go's url.QueryEscape does."""
    parts = [f"{quote_plus(key)}={quote_plus(value)}" for key, value in sorted(attrs.items())]
    return (",".join(parts) + " ").encode()


def log_line(message: LogMessage, *, timestamps: bool, details: bool) -> bytes:
    line = message.data
    if details:
        line = details_prefix(message.attrs) + line
    if timestamps:
        line = rfc3339(message.timestamp).encode() + b" " + line
    return line
