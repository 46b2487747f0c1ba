"""/images (inspect, import from a tarball) and /distribution (registry lookup)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shoal.api.errors import NotImplementedYet, ShoalError
from shoal.engineapi import gojson
from shoal.engineapi.constants import JSON_CONTENT_TYPE
from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import RouteTable, backend_of

_CHUNK = 64 * 1024


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).image_inspect(request.match_info["name"]))


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(_CHUNK):
        yield chunk


async def create(request: web.Request) -> web.StreamResponse:
    """Only `fromSrc=-` (docker import of the request body); pulling needs a registry we lack."""
    query = request.query
    if query.get("fromSrc") != "-":
        raise NotImplementedYet("pulling images is not supported; use docker import (fromSrc=-)")
    progress = backend_of(request).image_import(
        _body_chunks(request),
        repo=query.get("repo", ""),
        tag=query.get("tag", ""),
        changes=query.getall("changes", []),
        message=query.get("message", ""),
    )
    first = await anext(progress)  # a bad tarball or name fails before the 200 goes out
    response = web.StreamResponse(headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(gojson.encode(first))
    try:
        async for message in progress:
            await response.write(gojson.encode(message))
    except ShoalError as exc:  # after the 200, dockerd reports failures as an error message
        await response.write(gojson.encode({"errorDetail": {"message": str(exc)}, "error": str(exc)}))
    await response.write_eof()
    return response


async def distribution(request: web.Request) -> web.StreamResponse:
    auth = request.headers.get("X-Registry-Auth") or None
    result = await backend_of(request).distribution_inspect(request.match_info["name"], auth)
    return json_response(result)


def register(routes: RouteTable) -> None:
    routes.get("/images/{name:.+}/json", inspect)
    routes.post("/images/create", create)
    routes.get("/distribution/{name:.+}/json", distribution)
