"""Taking over an HTTP connection for `POST /exec/{id}/start`, as dockerd hijacks it: after the
status line the connection carries raw bytes both ways (output out, stdin in) until the exec ends.

aiohttp's C parser only hands websocket upgrades over, so the transport is switched to a protocol of
ours before the 101 goes out: everything the client sends afterwards is stdin, a half-close is the
end of stdin (the write side stays open for the remaining output), and flow control and connection
loss are passed on to aiohttp's own protocol so its writer and handler cancellation keep working."""

from __future__ import annotations

import asyncio

from aiohttp import web


class HijackedConnection(asyncio.Protocol):
    PAUSE_AT_CHUNKS = 64
    """Reading from the client stops while this many chunks wait for a slow process."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._original = transport.get_protocol()
        self._paused = False
        self.stdin: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def read(self) -> bytes | None:
        """The next chunk the client sent; None once it half-closed or left."""
        data = await self.stdin.get()
        if self._paused and self.stdin.qsize() < self.PAUSE_AT_CHUNKS // 4:
            self._paused = False
            self._transport.resume_reading()
        return data

    def data_received(self, data: bytes) -> None:
        self.stdin.put_nowait(data)
        if not self._paused and self.stdin.qsize() >= self.PAUSE_AT_CHUNKS:
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self.stdin.put_nowait(None)
        return True  # keep the transport open: output still has to flow

    def pause_writing(self) -> None:
        self._original.pause_writing()

    def resume_writing(self) -> None:
        self._original.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stdin.put_nowait(None)
        self._original.connection_lost(exc)


def hijack(request: web.Request) -> HijackedConnection:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away before the stream started")
    hijacked = HijackedConnection(transport)
    transport.set_protocol(hijacked)
    return hijacked


class RawStreamResponse(web.StreamResponse):
    """Neither chunked nor length-delimited: the body is whatever follows, until the server closes."""

    _length_check = False
