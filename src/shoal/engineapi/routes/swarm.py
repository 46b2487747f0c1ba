"""/swarm: init, join, leave, inspect, update, unlock key, unlock."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.backend import SwarmUpdateFlags
from shoal.engineapi.gojson import decode_object
from shoal.engineapi.query import bool_param, version_param
from shoal.engineapi.responses import empty_ok, json_response
from shoal.engineapi.routing import RouteTable, backend_of


async def init(request: web.Request) -> web.StreamResponse:
    body = decode_object(await request.read(), "swarm.InitRequest")
    node_id = await backend_of(request).swarm_init(body)
    return json_response(node_id)


async def join(request: web.Request) -> web.StreamResponse:
    body = decode_object(await request.read(), "swarm.JoinRequest")
    await backend_of(request).swarm_join(body)
    return empty_ok()


async def leave(request: web.Request) -> web.StreamResponse:
    await backend_of(request).swarm_leave(bool_param(request.query, "force"))
    return empty_ok()


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).swarm_inspect())


async def update(request: web.Request) -> web.StreamResponse:
    query = request.query
    version = version_param(query, "swarm")
    flags = SwarmUpdateFlags(
        rotate_worker_token=bool_param(query, "rotateWorkerToken"),
        rotate_manager_token=bool_param(query, "rotateManagerToken"),
        rotate_manager_unlock_key=bool_param(query, "rotateManagerUnlockKey"),
    )
    spec = decode_object(await request.read(), "swarm.Spec")
    await backend_of(request).swarm_update(spec, version, flags)
    return empty_ok()


async def unlock_key(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).swarm_unlock_key())


async def unlock(request: web.Request) -> web.StreamResponse:
    body = decode_object(await request.read(), "swarm.UnlockRequest")
    await backend_of(request).swarm_unlock(body)
    return empty_ok()


def register(routes: RouteTable) -> None:
    routes.get("/swarm", inspect)
    routes.post("/swarm/init", init)
    routes.post("/swarm/join", join)
    routes.post("/swarm/leave", leave)
    routes.post("/swarm/update", update)
    routes.get("/swarm/unlockkey", unlock_key)
    routes.post("/swarm/unlock", unlock)
