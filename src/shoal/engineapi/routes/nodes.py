"""/nodes: list, inspect, update, remove."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.gojson import decode_object
from shoal.engineapi.query import bool_param, filters_param, version_param
from shoal.engineapi.responses import empty_ok, json_response
from shoal.engineapi.routing import RouteTable, backend_of


async def list_nodes(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).nodes_list(filters_param(request.query)))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).node_inspect(request.match_info["id"]))


async def update(request: web.Request) -> web.StreamResponse:
    version = version_param(request.query, "node")
    spec = decode_object(await request.read(), "swarm.NodeSpec")
    await backend_of(request).node_update(request.match_info["id"], version, spec)
    return empty_ok()


async def remove(request: web.Request) -> web.StreamResponse:
    force = bool_param(request.query, "force")
    await backend_of(request).node_remove(request.match_info["id"], force)
    return empty_ok()


def register(routes: RouteTable) -> None:
    routes.get("/nodes", list_nodes)
    routes.get("/nodes/{id}", inspect)
    routes.post("/nodes/{id}/update", update)
    routes.delete("/nodes/{id}", remove)
