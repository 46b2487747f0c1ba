"""/system/df: what images, containers and volumes take on this node (`docker system df`)."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import RouteTable, backend_of


async def disk_usage(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).system_df())


def register(routes: RouteTable) -> None:
    routes.get("/system/df", disk_usage)
