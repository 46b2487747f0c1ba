"""/tasks: list, inspect, logs."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.logstream import has_tty, write_log_stream
from shoal.engineapi.query import filters_param, log_options
from shoal.engineapi.responses import json_response
from shoal.engineapi.routing import RouteTable, backend_of, streaming


async def list_tasks(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).tasks_list(filters_param(request.query)))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).task_inspect(request.match_info["id"]))


@streaming
async def logs(request: web.Request) -> web.StreamResponse:
    options = log_options(request.query)
    backend = backend_of(request)
    ref = request.match_info["id"]
    task = await backend.task_inspect(ref)
    tty = has_tty(task, "Spec", "ContainerSpec", "TTY")
    return await write_log_stream(request, backend.task_logs(ref, options), options, multiplexed=not tty)


def register(routes: RouteTable) -> None:
    routes.get("/tasks", list_tasks)
    routes.get("/tasks/{id}", inspect)
    routes.get("/tasks/{id}/logs", logs)
