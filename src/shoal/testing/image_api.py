"""A stand-in Engine API for the image routes only, on top of ImageService, so tests can drive the
image store with the real docker CLI and docker-py before the routes are wired into engineapi/
(which owns the real ones). Test support: the mapping here is one line per route, as the real wiring
is meant to be."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from shoal.api.errors import Conflict, InvalidArgument, NotFound, ShoalError, Unauthenticated
from shoal.images.service import ImageService

API_VERSION = "1.41"
_PREFIX = re.compile(r"^/v1\.\d+")


def _status(error: ShoalError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidArgument):
        return 400
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, Unauthenticated):
        return 401
    return 500


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(1 << 16):
        yield chunk


async def _json_stream(request: web.Request, messages: AsyncIterator[dict[str, Any]] | list[dict[str, str]]
                       ) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    if isinstance(messages, list):
        for message in messages:
            await response.write(json.dumps(message).encode() + b"\r\n")
    else:
        async for message in messages:
            await response.write(json.dumps(message).encode() + b"\r\n")
    await response.write_eof()
    return response


class ImageAPI:
    def __init__(self, service: ImageService) -> None:
        self.service = service

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = _PREFIX.sub("", request.path)
        try:
            return await self._route(request, request.method, path)
        except ShoalError as exc:
            return web.json_response({"message": str(exc)}, status=_status(exc))

    async def _route(self, request: web.Request, method: str, path: str) -> web.StreamResponse:
        query = request.query
        service = self.service
        if path == "/_ping":
            return web.Response(text="OK", headers={"Api-Version": API_VERSION})
        if path == "/version":
            return web.json_response({"Version": "shoal-images-test", "ApiVersion": API_VERSION,
                                      "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64"})
        if method == "POST" and path == "/auth":
            body = await request.json()
            return web.json_response(await service.login(str(body.get("serveraddress", "")), body))
        if method == "GET" and path == "/images/json":
            return web.json_response(await service.list(json.loads(query.get("filters") or "{}")))
        if method == "POST" and path == "/images/create":
            if query.get("fromSrc") == "-":
                changes = query.getall("changes", [])
                answer = await service.import_tar(_body_chunks(request), query.get("repo", ""), query.get("tag", ""),
                                                  changes, query.get("message", ""))
                return await _json_stream(request, answer)
            image = query.get("fromImage", "")
            tag = query.get("tag", "")
            ref = f"{image}{'@' if tag.startswith('sha256:') else ':'}{tag}" if tag else image
            auth = request.headers.get("X-Registry-Auth")
            return await _json_stream(request, await service.pull(ref, query.get("platform") or None, auth))
        if method == "POST" and path == "/images/load":
            return await _json_stream(request, await service.load(_body_chunks(request)))
        if method == "GET" and path == "/images/get":
            return await self._tar(request, await service.save(query.getall("names", [])))
        if method == "POST" and path == "/images/prune":
            return web.json_response(await service.prune(json.loads(query.get("filters") or "{}")))
        match = re.fullmatch(r"/images/(.+)/(json|history|tag|get)", path)
        if match and method in ("GET", "POST"):
            name, action = match.groups()
            if action == "json":
                return web.json_response(await service.inspect(name))
            if action == "history":
                return web.json_response(await service.history(name))
            if action == "get":
                return await self._tar(request, await service.save([name]))
            await service.tag(name, query.get("repo", ""), query.get("tag") or None)
            return web.Response(status=201)
        match = re.fullmatch(r"/images/(.+)", path)
        if match and method == "DELETE":
            force = query.get("force", "") in ("1", "true", "True")
            return web.json_response(await service.remove(match.group(1), force))
        match = re.fullmatch(r"/distribution/(.+)/json", path)
        if match and method == "GET":
            return web.json_response(await service.distribution_inspect(match.group(1),
                                                                        request.headers.get("X-Registry-Auth")))
        return web.json_response({"message": f"page not found: {method} {path}"}, status=404)

    @staticmethod
    async def _tar(request: web.Request, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
