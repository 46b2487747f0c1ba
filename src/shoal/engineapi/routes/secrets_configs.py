"""/secrets and /configs: the same five calls on two kinds of object."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.gojson import decode_object
from shoal.engineapi.query import filters_param, version_param
from shoal.engineapi.responses import empty_ok, json_response, no_content
from shoal.engineapi.routing import RouteTable, backend_of


async def list_secrets(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).secrets_list(filters_param(request.query)))


async def create_secret(request: web.Request) -> web.StreamResponse:
    spec = decode_object(await request.read(), "swarm.SecretSpec")
    return json_response(await backend_of(request).secret_create(spec), status=201)


async def inspect_secret(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).secret_inspect(request.match_info["id"]))


async def update_secret(request: web.Request) -> web.StreamResponse:
    version = version_param(request.query, "secret")
    spec = decode_object(await request.read(), "swarm.SecretSpec")
    await backend_of(request).secret_update(request.match_info["id"], version, spec)
    return empty_ok()


async def remove_secret(request: web.Request) -> web.StreamResponse:
    await backend_of(request).secret_remove(request.match_info["id"])
    return no_content()


async def list_configs(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).configs_list(filters_param(request.query)))


async def create_config(request: web.Request) -> web.StreamResponse:
    spec = decode_object(await request.read(), "swarm.ConfigSpec")
    return json_response(await backend_of(request).config_create(spec), status=201)


async def inspect_config(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).config_inspect(request.match_info["id"]))


async def update_config(request: web.Request) -> web.StreamResponse:
    version = version_param(request.query, "config")
    spec = decode_object(await request.read(), "swarm.ConfigSpec")
    await backend_of(request).config_update(request.match_info["id"], version, spec)
    return empty_ok()


async def remove_config(request: web.Request) -> web.StreamResponse:
    await backend_of(request).config_remove(request.match_info["id"])
    return no_content()


def register(routes: RouteTable) -> None:
    routes.get("/secrets", list_secrets)
    routes.post("/secrets/create", create_secret)
    routes.get("/secrets/{id}", inspect_secret)
    routes.post("/secrets/{id}/update", update_secret)
    routes.delete("/secrets/{id}", remove_secret)
    routes.get("/configs", list_configs)
    routes.post("/configs/create", create_config)
    routes.get("/configs/{id}", inspect_config)
    routes.post("/configs/{id}/update", update_config)
    routes.delete("/configs/{id}", remove_config)
