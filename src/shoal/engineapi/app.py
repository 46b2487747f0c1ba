"""The aiohttp application: version check, error mapping and dockerd's headers around every route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web

from shoal.engineapi.backend import Backend
from shoal.engineapi.constants import API_VERSION, OS_TYPE, SERVER_HEADER
from shoal.engineapi.errors import error_response, message_response
from shoal.engineapi.responses import BareStreamResponse
from shoal.engineapi.routes import ALL_ROUTE_MODULES
from shoal.engineapi.routing import ADVERTISE_SWARM_KEY, BACKEND_KEY, STREAMING_HANDLERS, Handler, RouteTable
from shoal.engineapi.versioning import version_error

log = logging.getLogger(__name__)

OPEN_STREAMS_KEY = web.AppKey("shoal.engineapi.open_streams", set[asyncio.Task[object]])

MAX_REQUEST_BODY = 64 * 1024 * 1024
"""JSON bodies (specs, base64 secret data); image tarballs are streamed, not buffered."""


@web.middleware
async def daemon_semantics(request: web.Request, handler: Handler) -> web.StreamResponse:
    requested = request.match_info.get("api_version")
    if requested is not None:
        refused = version_error(requested)
        if refused is not None:
            return refused
    try:
        if request.match_info.route.handler in STREAMING_HANDLERS:
            return await _run_stream(request, handler)
        return await _run_to_completion(handler(request))
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return message_response(404, "page not found")
        return message_response(exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return error_response(exc)


async def _run_to_completion(call: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    """A client that hangs up must not cut a state change in half: the call goes on without it."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_log_orphaned_failure)
        raise


def _log_orphaned_failure(task: asyncio.Future[web.StreamResponse]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("request failed after its client left", exc_info=task.exception())


async def _run_stream(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Streams are cancelled when the client leaves (aiohttp's handler cancellation) and when the
    server shuts down, so an idle `docker events` does not hold shutdown up."""
    task = asyncio.current_task()
    assert task is not None
    open_streams = request.app[OPEN_STREAMS_KEY]
    open_streams.add(task)
    try:
        return await handler(request)
    finally:
        open_streams.discard(task)


async def _end_open_streams(app: web.Application) -> None:
    open_streams = app[OPEN_STREAMS_KEY]
    for task in tuple(open_streams):
        task.cancel()


async def _add_daemon_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Api-Version"] = API_VERSION
    headers["Docker-Experimental"] = "false"
    headers["Ostype"] = OS_TYPE
    headers["Server"] = SERVER_HEADER
    if request.method == "HEAD" and "Content-Length" not in headers:
        headers["Content-Length"] = "0"  # as dockerd answers HEAD /_ping
    if isinstance(response, BareStreamResponse):
        headers.popall("Content-Type", None)


def make_app(backend: Backend, *, advertise_swarm_status: bool = False) -> web.Application:
    """`advertise_swarm_status` adds the `Swarm` header to /_ping, as daemons newer than 20.10 do."""
    app = web.Application(middlewares=[daemon_semantics], client_max_size=MAX_REQUEST_BODY)
    app[BACKEND_KEY] = backend
    app[ADVERTISE_SWARM_KEY] = advertise_swarm_status
    open_streams: set[asyncio.Task[object]] = set()
    app[OPEN_STREAMS_KEY] = open_streams
    app.on_response_prepare.append(_add_daemon_headers)
    app.on_shutdown.append(_end_open_streams)
    routes = RouteTable(app)
    for module in ALL_ROUTE_MODULES:
        module.register(routes)
    return app
