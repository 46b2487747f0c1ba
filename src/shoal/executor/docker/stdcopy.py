"""Docker's stdcopy framing: the engine multiplexes a non-TTY container's stdout and stderr on one stream
as frames of an 8-byte header `[stream, 0, 0, 0, length as uint32 big-endian]` followed by the payload.
Pure code, so it is tested without an engine."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from enum import IntEnum

HEADER = struct.Struct(">BxxxI")


class Stream(IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2


@dataclass
class FrameDecoder:
    """Feed bytes as they arrive; whole frames come out. Partial headers and payloads are kept."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[tuple[Stream, bytes]]:
        self._buffer.extend(data)
        frames: list[tuple[Stream, bytes]] = []
        while len(self._buffer) >= HEADER.size:
            stream_number, length = HEADER.unpack_from(self._buffer)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            frames.append((Stream(stream_number), payload))
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back because their frame is not complete yet."""
        return len(self._buffer)


def encode_frame(stream: Stream, payload: bytes) -> bytes:
    return HEADER.pack(int(stream), len(payload)) + payload


async def demultiplex(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[Stream, bytes]]:
    decoder = FrameDecoder()
    async for chunk in chunks:
        for frame in decoder.feed(chunk):
            yield frame


class LineSplitter:
    """Re-cuts a byte stream into lines (keeping the newline); the last unterminated piece waits."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        pieces = (self._partial + data).split(b"\n")
        self._partial = pieces.pop()
        return [piece + b"\n" for piece in pieces]

    def flush(self) -> bytes:
        rest, self._partial = self._partial, b""
        return rest
