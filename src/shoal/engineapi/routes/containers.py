"""/containers: the tasks' containers on this node (list, inspect, logs, exec create, kill, stop, rm,
pause, wait, stats, top, and the archive calls of `docker cp`)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from aiohttp import web

from shoal.api.errors import InvalidArgument, ShoalError
from shoal.engineapi import gojson
from shoal.engineapi.backend import STDERR, STDOUT, ContainerListQuery
from shoal.engineapi.constants import JSON_CONTENT_TYPE, RAW_STREAM_CONTENT_TYPE
from shoal.engineapi.gojson import decode_object
from shoal.engineapi.hijack import RawStreamResponse, hijack
from shoal.engineapi.iterclose import close_iterator
from shoal.engineapi.logstream import has_tty, write_log_stream
from shoal.engineapi.query import bool_param, filters_param, int_param, log_options
from shoal.engineapi.responses import empty_ok, json_response, no_content
from shoal.engineapi.routing import RouteTable, backend_of, streaming
from shoal.engineapi.stdcopy import frame


async def list_containers(request: web.Request) -> web.StreamResponse:
    query = request.query
    limit = int_param(query, "limit")
    listing = ContainerListQuery(
        all=bool_param(query, "all"),
        limit=limit if limit is not None and limit > 0 else None,
        size=bool_param(query, "size"),
        filters=filters_param(query),
    )
    return json_response(await backend_of(request).containers_list(listing))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).container_inspect(request.match_info["id"]))


@streaming
async def logs(request: web.Request) -> web.StreamResponse:
    options = log_options(request.query)
    backend = backend_of(request)
    ref = request.match_info["id"]
    container = await backend.container_inspect(ref)
    tty = has_tty(container, "Config", "Tty")
    return await write_log_stream(request, backend.container_logs(ref, options), options, multiplexed=not tty)


async def exec_create(request: web.Request) -> web.StreamResponse:
    config = decode_object(await request.read(), "types.ExecConfig")
    exec_id = await backend_of(request).exec_create(request.match_info["id"], config)
    return json_response({"Id": exec_id}, status=201)


async def kill(request: web.Request) -> web.StreamResponse:
    await backend_of(request).container_kill(request.match_info["id"], request.query.get("signal", ""))
    return no_content()


async def stop(request: web.Request) -> web.StreamResponse:
    stopped = await backend_of(request).container_stop(request.match_info["id"], int_param(request.query, "t"))
    return no_content() if stopped else web.Response(status=304)


async def restart(request: web.Request) -> web.StreamResponse:
    await backend_of(request).container_restart(request.match_info["id"], int_param(request.query, "t"))
    return no_content()


async def remove(request: web.Request) -> web.StreamResponse:
    query = request.query
    await backend_of(request).container_remove(request.match_info["id"], bool_param(query, "force"),
                                               bool_param(query, "v"))
    return no_content()


async def pause(request: web.Request) -> web.StreamResponse:
    await backend_of(request).container_pause(request.match_info["id"])
    return no_content()


async def unpause(request: web.Request) -> web.StreamResponse:
    await backend_of(request).container_unpause(request.match_info["id"])
    return no_content()


@streaming
async def wait(request: web.Request) -> web.StreamResponse:
    """As dockerd: the 200 goes out at once (the CLI's attach and run wait for it before going on), the
    body when the container stops; a missing container or a bad condition is refused before."""
    backend = backend_of(request)
    ref, condition = request.match_info["id"], request.query.get("condition", "")
    if condition not in ("", "not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    await backend.container_inspect(ref)
    response = web.StreamResponse(headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        answer = await backend.container_wait(ref, condition)
    except ShoalError as exc:
        answer = {"StatusCode": -1, "Error": {"Message": str(exc)}}
    await response.write(gojson.encode(answer))
    await response.write_eof()
    return response


async def top(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).container_top(request.match_info["id"],
                                                                 request.query.get("ps_args", "")))


@streaming
async def stats(request: web.Request) -> web.StreamResponse:
    query = request.query
    messages = await backend_of(request).container_stats(
        request.match_info["id"], bool_param(query, "stream", True), bool_param(query, "one-shot"))
    response = web.StreamResponse(headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for message in messages:
        await response.write(gojson.encode(message))
    await response.write_eof()
    return response


@streaming
async def attach(request: web.Request) -> web.StreamResponse:
    """The container's output from now on (and before, with `logs=1`) on a hijacked connection, as
    dockerd attaches; a task's container has no open stdin, so what the client sends is dropped."""
    query = request.query
    backend = backend_of(request)
    ref = request.match_info["id"]
    tty = has_tty(await backend.container_inspect(ref), "Config", "Tty")
    output = await backend.container_attach(ref, bool_param(query, "stream"), bool_param(query, "logs"))
    await request.read()  # the request must be consumed before the connection is taken over
    hijack(request)
    if "Upgrade" in request.headers:
        response = RawStreamResponse(status=101, reason="UPGRADED")
        response.headers["Connection"] = "Upgrade"
        response.headers["Upgrade"] = "tcp"
    else:
        response = RawStreamResponse(status=200)
    response.headers["Content-Type"] = RAW_STREAM_CONTENT_TYPE
    response.force_close()
    await response.prepare(request)
    wanted = {STDOUT} if not bool_param(query, "stderr") else ({STDERR} if not bool_param(query, "stdout")
                                                             else {STDOUT, STDERR})
    try:
        async for stream, data in output:
            if stream in wanted:
                await response.write(data if tty else frame(stream, data))
    finally:
        await close_iterator(output)
    await response.write_eof()
    return response


PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path_stat_header(stat: dict[str, object]) -> str:
    return base64.b64encode(gojson.encode(stat).rstrip(b"\n")).decode()


async def archive_head(request: web.Request) -> web.StreamResponse:
    stat = await backend_of(request).container_archive_stat(request.match_info["id"], request.query.get("path", ""))
    return web.Response(status=200, headers={PATH_STAT_HEADER: _path_stat_header(stat)})


@streaming
async def archive_get(request: web.Request) -> web.StreamResponse:
    stat, chunks = await backend_of(request).container_archive_get(request.match_info["id"],
                                                                   request.query.get("path", ""))
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                           PATH_STAT_HEADER: _path_stat_header(stat)})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(64 * 1024):
        yield chunk


async def archive_put(request: web.Request) -> web.StreamResponse:
    query = request.query
    await backend_of(request).container_archive_put(
        request.match_info["id"], query.get("path", ""), _body(request),
        bool_param(query, "noOverwriteDirNonDir"))
    return empty_ok()


def register(routes: RouteTable) -> None:
    routes.get("/containers/json", list_containers)
    routes.get("/containers/{id}/json", inspect)
    routes.get("/containers/{id}/logs", logs)
    routes.post("/containers/{id}/exec", exec_create)
    routes.post("/containers/{id}/kill", kill)
    routes.post("/containers/{id}/stop", stop)
    routes.post("/containers/{id}/restart", restart)
    routes.delete("/containers/{id}", remove)
    routes.post("/containers/{id}/pause", pause)
    routes.post("/containers/{id}/unpause", unpause)
    routes.post("/containers/{id}/wait", wait)
    routes.post("/containers/{id}/attach", attach)
    routes.get("/containers/{id}/top", top)
    routes.get("/containers/{id}/stats", stats)
    routes.head("/containers/{id}/archive", archive_head)
    routes.get("/containers/{id}/archive", archive_get)
    routes.add("PUT", "/containers/{id}/archive", archive_put)
