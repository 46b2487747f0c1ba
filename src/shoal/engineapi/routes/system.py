"""/_ping, /version, /info and the /events stream."""

from __future__ import annotations

import logging

from aiohttp import web

from shoal.engineapi import gojson
from shoal.engineapi.backend import EventQuery
from shoal.engineapi.constants import JSON_CONTENT_TYPE
from shoal.engineapi.iterclose import close_iterator
from shoal.engineapi.query import filters_param, time_param
from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import ADVERTISE_SWARM_KEY, RouteTable, backend_of, streaming

log = logging.getLogger(__name__)

_PING_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Content-Type": "text/plain; charset=utf-8",
}


async def _ping_headers(request: web.Request) -> dict[str, str]:
    headers = dict(_PING_HEADERS)
    if request.app[ADVERTISE_SWARM_KEY]:
        headers["Swarm"] = await backend_of(request).swarm_status()
    return headers


async def ping(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"OK", headers=await _ping_headers(request))


async def ping_head(request: web.Request) -> web.StreamResponse:
    return web.Response(headers=await _ping_headers(request))


async def version(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).version())


async def info(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).info())


@streaming
async def events(request: web.Request) -> web.StreamResponse:
    query = EventQuery(
        since=time_param(request.query, "since"),
        until=time_param(request.query, "until"),
        filters=filters_param(request.query),
    )
    stream = backend_of(request).events(query)
    response = web.StreamResponse(headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    # Headers go out at once (dockerd flushes before the first event), so `docker events` starts.
    await response.prepare(request)
    try:
        async for event in stream:
            await response.write(gojson.encode(event))
    except (ConnectionError, OSError):
        raise
    except Exception as exc:  # the 200 is out: end the stream, as dockerd does on an error
        log.warning("event stream failed", exc_info=exc)
    finally:
        await close_iterator(stream)
    await response.write_eof()
    return response


def register(routes: RouteTable) -> None:
    routes.get("/_ping", ping)
    routes.head("/_ping", ping_head)
    routes.get("/version", version)
    routes.get("/info", info)
    routes.get("/events", events)
