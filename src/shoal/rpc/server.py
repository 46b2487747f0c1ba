"""The cluster-port listener: routes registered with who may call them, checked from the caller's
certificate before a byte of the request body is read (DESIGN.md: nothing from the network is
deserialized before the route knows who sent it).

Unary routes are POSTs whose bodies are msgpack envelopes; stream routes are WebSockets carrying one
envelope per binary frame. Handlers raise shoal.api.errors types, which reach the caller with their
category; anything else is logged and reaches the caller as Unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shoal.api import errors
from shoal.rpc import codec
from shoal.rpc.identity import Access, PeerIdentity, PeerPolicy, peer_identity
from shoal.rpc.stream import MessageStream

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/vnd.shoal.msgpack"


@dataclass(frozen=True)
class Caller:
    identity: PeerIdentity | None
    remote: str


UnaryHandler = Callable[[Caller, Any], Awaitable[Any]]
StreamHandler = Callable[[Caller, MessageStream], Awaitable[None]]


def _reply(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=CONTENT_TYPE)


class RpcServer:
    def __init__(self, policy: PeerPolicy) -> None:
        self.policy = policy
        self.app = web.Application(client_max_size=codec.MAX_MESSAGE_BYTES)
        self.app.on_shutdown.append(self._close_streams)
        self.refused = 0
        self._streams: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._stream_handlers: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._runner: web.AppRunner | None = None

    # -- routes
    def unary(self, path: str, access: Access, handler: UnaryHandler) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            caller, refused = self._admit(request, access)
            if refused is not None:
                return refused
            try:
                body = codec.decode_request(await request.read())
                result = await handler(caller, body)
            except errors.ShoalError as exc:
                return _reply(codec.encode_error(exc))
            except Exception as exc:
                log.exception("cluster call %s from %s failed", path, caller.remote)
                return _reply(codec.encode_error(errors.Unknown(f"{path}: {exc}")))
            return _reply(codec.encode_result(result))

        self.app.router.add_post(path, serve)

    def stream(self, path: str, access: Access, handler: StreamHandler) -> None:
        async def serve(request: web.Request) -> web.StreamResponse:
            caller, refused = self._admit(request, access)
            if refused is not None:
                return refused
            ws = web.WebSocketResponse(max_msg_size=codec.MAX_MESSAGE_BYTES, compress=False, heartbeat=None)
            await ws.prepare(request)
            self._streams.add(ws)
            handler_task = asyncio.current_task()
            if handler_task is not None:
                self._stream_handlers.add(handler_task)
            stream = MessageStream(ws, caller.remote)
            try:
                await handler(caller, stream)
            except errors.ShoalError as exc:
                await stream.fail(exc)
            except Exception as exc:
                log.exception("cluster stream %s from %s failed", path, caller.remote)
                await stream.fail(errors.Unknown(f"{path}: {exc}"))
            finally:
                await stream.close()
            return ws

        self.app.router.add_get(path, serve)

    def _admit(self, request: web.Request, access: Access) -> tuple[Caller, web.Response | None]:
        transport = request.transport
        ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
        caller = Caller(peer_identity(ssl_object), request.remote or "?")
        refusal = self.policy.refusal(caller.identity, access)
        if refusal is None:
            return caller, None
        self.refused += 1
        log.warning("cluster call %s from %s refused: %s", request.path, caller.remote, refusal)
        return caller, _reply(codec.encode_error(errors.Forbidden(f"permission denied: {refusal}")), 403)

    # -- lifecycle
    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen on host:port (0 picks a port) and return the bound port. ``ssl_context`` None (plain
        TCP) is for benchmarks and tests only: no caller then has an identity."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        self._runner = runner
        return int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _close_streams(self, _app: web.Application) -> None:
        # Open stream handlers would otherwise hold up the listener's shutdown: a handler may be
        # waiting on something else than its socket (a store watch), so it is cancelled too.
        for task in list(self._stream_handlers):
            task.cancel()
        for ws in list(self._streams):
            with contextlib.suppress(Exception):
                await ws.close()
