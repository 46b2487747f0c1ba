"""/containers: the tasks' containers on this node (list, inspect, logs, exec create)."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.backend import ContainerListQuery
from shoal.engineapi.gojson import decode_object
from shoal.engineapi.logstream import has_tty, write_log_stream
from shoal.engineapi.query import bool_param, filters_param, int_param, log_options
from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import RouteTable, backend_of, streaming


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


def register(routes: RouteTable) -> None:
    routes.get("/containers/json", list_containers)
    routes.get("/containers/{id}/json", inspect)
    routes.get("/containers/{id}/logs", logs)
    routes.post("/containers/{id}/exec", exec_create)
