"""/images (list, inspect, history, pull, import, load, save, tag, remove, prune), /distribution
(registry lookup) and /auth (docker login): each route one call on the Backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web

from shoal.engineapi import gojson
from shoal.engineapi.constants import JSON_CONTENT_TYPE
from shoal.engineapi.query import bool_param, filters_param
from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import RouteTable, backend_of, streaming

_CHUNK = 64 * 1024


def _registry_auth(request: web.Request) -> str | None:
    return request.headers.get("X-Registry-Auth") or None


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(_CHUNK):
        yield chunk


async def _message_stream(request: web.Request, messages: AsyncIterator[Any] | Iterable[Any]) -> web.StreamResponse:
    """JSON messages one per line, as dockerd streams progress (the CLI draws them as they come)."""
    response = web.StreamResponse(headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if isinstance(messages, AsyncIterator):
        async for message in messages:
            await response.write(gojson.encode(message))
    else:
        for message in messages:
            await response.write(gojson.encode(message))
    await response.write_eof()
    return response


async def _tar_stream(request: web.Request, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def list_images(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).images_list(filters_param(request.query)))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).image_inspect(request.match_info["name"]))


async def history(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).image_history(request.match_info["name"]))


def pull_reference(image: str, tag: str) -> str:
    """fromImage + tag as the CLI sends them: a tag, or a digest (`tag=sha256:...`), or neither."""
    if not tag:
        return image
    return f"{image}@{tag}" if ":" in tag else f"{image}:{tag}"


@streaming
async def create(request: web.Request) -> web.StreamResponse:
    """`fromSrc=-`: docker import of the request body; `fromImage`: a pull."""
    query = request.query
    backend = backend_of(request)
    if query.get("fromSrc") == "-":
        answer = await backend.image_import(
            _body_chunks(request),
            repo=query.get("repo", ""),
            tag=query.get("tag", ""),
            changes=query.getall("changes", []),
            message=query.get("message", ""),
        )
        return await _message_stream(request, answer)
    ref = pull_reference(query.get("fromImage", ""), query.get("tag", ""))
    progress = await backend.image_pull(ref, query.get("platform") or None, _registry_auth(request))
    return await _message_stream(request, progress)


async def load(request: web.Request) -> web.StreamResponse:
    answer = await backend_of(request).image_load(_body_chunks(request), bool_param(request.query, "quiet"))
    return await _message_stream(request, answer)


@streaming
async def save_many(request: web.Request) -> web.StreamResponse:
    return await _tar_stream(request, await backend_of(request).image_save(request.query.getall("names", [])))


@streaming
async def save_one(request: web.Request) -> web.StreamResponse:
    return await _tar_stream(request, await backend_of(request).image_save([request.match_info["name"]]))


async def tag(request: web.Request) -> web.StreamResponse:
    query = request.query
    await backend_of(request).image_tag(request.match_info["name"], query.get("repo", ""), query.get("tag", ""))
    return web.Response(status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    query = request.query
    answer = await backend_of(request).image_remove(
        request.match_info["name"], bool_param(query, "force"), bool_param(query, "noprune")
    )
    return json_response(answer)


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).images_prune(filters_param(request.query)))


async def distribution(request: web.Request) -> web.StreamResponse:
    result = await backend_of(request).distribution_inspect(request.match_info["name"], _registry_auth(request))
    return json_response(result)


async def auth(request: web.Request) -> web.StreamResponse:
    body = gojson.decode_object(await request.read(), "registry.AuthConfig")
    return json_response(await backend_of(request).auth(body))


def register(routes: RouteTable) -> None:
    # Fixed paths before the {name} ones: a name may contain slashes.
    routes.get("/images/json", list_images)
    routes.get("/images/get", save_many)
    routes.post("/images/create", create)
    routes.post("/images/load", load)
    routes.post("/images/prune", prune)
    routes.get("/images/{name:.+}/json", inspect)
    routes.get("/images/{name:.+}/history", history)
    routes.get("/images/{name:.+}/get", save_one)
    routes.post("/images/{name:.+}/tag", tag)
    routes.delete("/images/{name:.+}", remove)
    routes.get("/distribution/{name:.+}/json", distribution)
    routes.post("/auth", auth)
