"""/volumes: this node's volumes (local driver): create, list, inspect, remove, prune."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.gojson import decode_object
from shoal.engineapi.query import bool_param, filters_param
from shoal.engineapi.responses import json_response, no_content
from shoal.engineapi.routing import RouteTable, backend_of


async def list_volumes(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).volumes_list(filters_param(request.query)))


async def create(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    config = decode_object(body, "volume.CreateOptions") if body.strip() else {}
    return json_response(await backend_of(request).volume_create(config), status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).volume_inspect(request.match_info["name"]))


async def remove(request: web.Request) -> web.StreamResponse:
    await backend_of(request).volume_remove(request.match_info["name"], bool_param(request.query, "force"))
    return no_content()


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).volumes_prune(filters_param(request.query)))


def register(routes: RouteTable) -> None:
    routes.get("/volumes", list_volumes)
    routes.post("/volumes/create", create)
    routes.post("/volumes/prune", prune)
    routes.get("/volumes/{name}", inspect)
    routes.delete("/volumes/{name}", remove)
