"""Calls to other nodes' cluster ports: unary calls and message streams, with the same envelopes as
the server. Failing to reach a peer is errors.Unavailable naming the address; an error raised by the
peer's handler comes back with its category. Each call dials with the node's current certificate
(rpc.tls.current): after a renewal new connections present the new one, open ones stay as they are."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp

from shoal.api import errors
from shoal.rpc import codec, tls
from shoal.rpc.server import CONTENT_TYPE
from shoal.rpc.stream import MessageStream

DEFAULT_TIMEOUT = 10.0


class RpcClient:
    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        """``ssl_context`` None dials plain TCP (benchmarks and tests only)."""
        self._ssl = ssl_context
        self._scheme = "https" if ssl_context is not None else "http"
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=self._ssl or False))
        return self._session

    def _dial_ssl(self) -> ssl.SSLContext | bool:
        return False if self._ssl is None else tls.current(self._ssl)

    async def call(self, address: str, path: str, body: Any, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        url = f"{self._scheme}://{address}{path}"
        try:
            async with self._http().post(url, data=codec.encode_request(body), ssl=self._dial_ssl(),
                                         headers={"Content-Type": CONTENT_TYPE},
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                data = await response.read()
                if response.status not in (200, 403) or response.content_type != CONTENT_TYPE:
                    raise errors.Unavailable(f"{address} does not serve {path} (HTTP {response.status})")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.Unavailable(f"cannot reach {address}: {_describe(exc)}") from None
        return codec.decode_response(data)

    async def stream(self, address: str, path: str, *, timeout: float = DEFAULT_TIMEOUT) -> MessageStream:
        url = f"{self._scheme}://{address}{path}"
        try:
            ws = await self._http().ws_connect(url, ssl=self._dial_ssl(), max_msg_size=codec.MAX_MESSAGE_BYTES,
                                               compress=0, heartbeat=None,
                                               timeout=aiohttp.ClientWSTimeout(ws_close=timeout))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 403:
                raise errors.Forbidden(f"permission denied: {address} refused {path}") from None
            raise errors.Unavailable(f"{address} does not serve {path} (HTTP {exc.status})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.Unavailable(f"cannot reach {address}: {_describe(exc)}") from None
        return MessageStream(ws, address)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
