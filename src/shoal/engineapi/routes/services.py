"""/services: list, create, inspect, update, remove, logs."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.gojson import decode_object
from shoal.engineapi.logstream import has_tty, write_log_stream
from shoal.engineapi.query import bool_param, filters_param, log_options, version_param
from shoal.engineapi.responses import empty_ok, json_response
from shoal.engineapi.routing import RouteTable, backend_of, streaming


def _registry_auth(request: web.Request) -> str | None:
    return request.headers.get("X-Registry-Auth") or None


async def list_services(request: web.Request) -> web.StreamResponse:
    filters = filters_param(request.query)
    status = bool_param(request.query, "status")
    return json_response(await backend_of(request).services_list(filters, status))


async def create(request: web.Request) -> web.StreamResponse:
    spec = decode_object(await request.read(), "swarm.ServiceSpec")
    created = await backend_of(request).service_create(spec, _registry_auth(request))
    return json_response(created, status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    insert_defaults = bool_param(request.query, "insertDefaults")
    service = await backend_of(request).service_inspect(request.match_info["id"], insert_defaults)
    return json_response(service)


async def update(request: web.Request) -> web.StreamResponse:
    query = request.query
    version = version_param(query, "service")
    spec = decode_object(await request.read(), "swarm.ServiceSpec")
    result = await backend_of(request).service_update(
        request.match_info["id"],
        version,
        spec,
        registry_auth_from=query.get("registryAuthFrom", ""),
        rollback=query.get("rollback", ""),
        registry_auth=_registry_auth(request),
    )
    return json_response(result)


async def remove(request: web.Request) -> web.StreamResponse:
    await backend_of(request).service_remove(request.match_info["id"])
    return empty_ok()


@streaming
async def logs(request: web.Request) -> web.StreamResponse:
    options = log_options(request.query)
    backend = backend_of(request)
    ref = request.match_info["id"]
    # Unknown services fail here, before the 200 goes out; TTY services are not multiplexed.
    service = await backend.service_inspect(ref, False)
    tty = has_tty(service, "Spec", "TaskTemplate", "ContainerSpec", "TTY")
    return await write_log_stream(request, backend.service_logs(ref, options), options, multiplexed=not tty)


def register(routes: RouteTable) -> None:
    routes.get("/services", list_services)
    routes.post("/services/create", create)
    routes.get("/services/{id}", inspect)
    routes.post("/services/{id}/update", update)
    routes.delete("/services/{id}", remove)
    routes.get("/services/{id}/logs", logs)
