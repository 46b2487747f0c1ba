"""/networks: list, create, inspect, remove."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.gojson import decode_object
from shoal.engineapi.query import bool_param, filters_param
from shoal.engineapi.responses import json_response, no_content
from shoal.engineapi.routing import RouteTable, backend_of


async def list_networks(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).networks_list(filters_param(request.query)))


async def create(request: web.Request) -> web.StreamResponse:
    body = decode_object(await request.read(), "types.NetworkCreateRequest")
    return json_response(await backend_of(request).network_create(body), status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    scope = request.query.get("scope") or None
    verbose = bool_param(request.query, "verbose")
    network = await backend_of(request).network_inspect(request.match_info["id"], scope, verbose)
    return json_response(network)


async def remove(request: web.Request) -> web.StreamResponse:
    await backend_of(request).network_remove(request.match_info["id"])
    return no_content()


def register(routes: RouteTable) -> None:
    routes.get("/networks", list_networks)
    routes.post("/networks/create", create)
    routes.get("/networks/{id}", inspect)
    routes.delete("/networks/{id}", remove)
