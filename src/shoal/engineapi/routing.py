"""Route registration: every route is served with and without a `/v1.NN` prefix, and handlers reach
the Backend through the request's application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from shoal.engineapi.backend import Backend
from shoal.engineapi.versioning import VERSION_PATTERN

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BACKEND_KEY = web.AppKey("shoal.engineapi.backend", Backend)
ADVERTISE_SWARM_KEY = web.AppKey("shoal.engineapi.advertise_swarm", bool)
STREAMING_HANDLERS: set[Handler] = set()
"""Handlers that hold the connection open (logs, events, exec). They are cancelled when the client
leaves; every other handler runs to completion even then, so a write is never cut in half."""


def backend_of(request: web.Request) -> Backend:
    return request.app[BACKEND_KEY]


def streaming(handler: Handler) -> Handler:
    STREAMING_HANDLERS.add(handler)
    return handler


class RouteTable:
    def __init__(self, app: web.Application) -> None:
        self._router = app.router

    def add(self, method: str, path: str, handler: Handler) -> None:
        for prefixed in (path, "/" + VERSION_PATTERN + path):
            if method == "GET":
                self._router.add_get(prefixed, handler, allow_head=False)
            else:
                self._router.add_route(method, prefixed, handler)

    def get(self, path: str, handler: Handler) -> None:
        self.add("GET", path, handler)

    def post(self, path: str, handler: Handler) -> None:
        self.add("POST", path, handler)

    def delete(self, path: str, handler: Handler) -> None:
        self.add("DELETE", path, handler)

    def head(self, path: str, handler: Handler) -> None:
        self.add("HEAD", path, handler)
