"""A message stream over a WebSocket, the same on both ends: each binary frame is one envelope
(``codec``); an error envelope ends the stream and is raised on the receiving side."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import aiohttp

from shoal.api import errors
from shoal.rpc import codec


class StreamClosed(errors.Unavailable):
    """The other end closed the stream (or the connection went away)."""


class _WebSocket(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class MessageStream:
    def __init__(self, ws: _WebSocket, peer: str) -> None:
        self._ws = ws
        self.peer = peer

    async def send(self, message: Any) -> None:
        try:
            await self._ws.send_bytes(codec.encode_result(message))
        except (ConnectionError, RuntimeError) as exc:  # aiohttp raises these on a closing socket
            raise StreamClosed(f"stream to {self.peer} closed: {exc}") from None

    async def fail(self, error: errors.ShoalError) -> None:
        """Send ``error`` as the stream's last message and close it."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._ws.send_bytes(codec.encode_error(error))
        await self.close()

    async def recv(self, timeout: float | None = None) -> Any:
        """The next message; raises StreamClosed when the stream ends, or the error the peer sent."""
        msg = await self._ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.BINARY:
            return codec.decode_response(msg.data)
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise StreamClosed(f"stream from {self.peer} failed: {msg.data}")
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            raise StreamClosed(f"stream from {self.peer} closed")
        raise codec.ProtocolError(f"unexpected {msg.type.name} frame from {self.peer}")

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._ws.close()
