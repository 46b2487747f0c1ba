"""The image calls of a node whose tasks run on a local Docker Engine (the docker executor), passed to
that engine: its tasks run from dockerd's own image store, so an image loaded, imported or pulled
through shoal must land there, and `docker rmi` is refused by the engine that knows its containers.
Same methods as ImageService, so the backend serves either."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from shoal.api import errors
from shoal.executor.docker.address import EngineAddress
from shoal.executor.docker.engine import EngineClient

Json = dict[str, Any]
_ERRORS: dict[int, type[errors.ShoalError]] = {
    400: errors.InvalidArgument,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    501: errors.NotImplementedYet,
    503: errors.Unavailable,
}


async def _error(response: aiohttp.ClientResponse) -> errors.ShoalError:
    raw = await response.read()
    try:
        message = str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        message = raw.decode(errors="replace").strip() or f"HTTP {response.status}"
    return _ERRORS.get(response.status, errors.Unknown)(message)


async def _json_lines(response: aiohttp.ClientResponse) -> AsyncIterator[Json]:
    """The engine's progress messages as they come; the response is released at the end."""
    try:
        async for line in response.content:
            if line.strip():
                yield json.loads(line)
    finally:
        response.release()


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    finally:
        response.release()


def _filters(filters: Mapping[str, Any] | None) -> dict[str, str]:
    return {"filters": json.dumps(dict(filters))} if filters else {}


class EngineImages:
    def __init__(self, host: str) -> None:
        self._address = EngineAddress.parse(host)
        self._versions = EngineClient(host)  # only for the negotiated /v1.xx prefix
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self._versions.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector = (aiohttp.UnixConnector(path=self._address.unix_path)
                                                if self._address.unix_path else aiohttp.TCPConnector())
            self._session = aiohttp.ClientSession(connector=connector, base_url=self._address.base_url,
                                                  timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def _open(self, method: str, path: str, params: Mapping[str, str | list[str]] | None = None, *,
                    data: Any = None, headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        """The engine's response, opened; an error status is raised as its category (before any of
        the body is passed on, so the route can still answer with that status)."""
        query = [(key, v) for key, value in (params or {}).items()
                 for v in (value if isinstance(value, list) else [value])]
        try:
            response = await self._client().request(method, await self._versions.versioned(path), params=query,
                                                    data=data, headers=dict(headers or {}))
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.Unavailable(f"Cannot connect to the Docker daemon at {self._address.base_url}: {exc}") from exc
        if response.status >= 400:
            try:
                raise await _error(response)
            finally:
                response.release()
        return response

    async def _call(self, method: str, path: str, params: Mapping[str, str | list[str]] | None = None,
                    *, body: Json | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await self._open(method, path, params, data=data, headers=headers)
        try:
            raw = await response.read()
        finally:
            response.release()
        return json.loads(raw) if raw.strip() else None

    # -- the ImageService methods the backend calls ---------------------------------------------

    async def list(self, filters: Mapping[str, Any] | None = None) -> builtins.list[Json]:
        return builtins.list(await self._call("GET", "/images/json", _filters(filters)))

    async def inspect(self, ref: str) -> Json:
        return dict(await self._call("GET", f"/images/{ref}/json"))

    async def history(self, ref: str) -> builtins.list[Json]:
        return builtins.list(await self._call("GET", f"/images/{ref}/history"))

    async def pull(self, ref: str, platform: str | None = None, auth: str | None = None) -> AsyncIterator[Json]:
        params = {"fromImage": ref, **({"platform": platform} if platform else {})}
        headers = {"X-Registry-Auth": auth} if auth else None
        return _json_lines(await self._open("POST", "/images/create", params, headers=headers))

    async def import_tar(self, source: AsyncIterator[bytes], repo: str = "", tag: str = "",
                         changes: builtins.list[str] | None = None, message: str = "") -> builtins.list[Json]:
        params: dict[str, str | builtins.list[str]] = {"fromSrc": "-", "repo": repo, "tag": tag, "message": message,
                                              "changes": builtins.list(changes or [])}
        response = await self._open("POST", "/images/create", params, data=source)
        return [line async for line in _json_lines(response)]

    async def load(self, archive: AsyncIterator[bytes], quiet: bool = False) -> builtins.list[Json]:
        response = await self._open("POST", "/images/load", {"quiet": "1" if quiet else "0"}, data=archive,
                                    headers={"Content-Type": "application/x-tar"})
        return [line async for line in _json_lines(response)]

    async def save(self, refs: builtins.list[str]) -> AsyncIterator[bytes]:
        return _chunks(await self._open("GET", "/images/get", {"names": builtins.list(refs)}))

    async def tag(self, ref: str, repo: str, tag: str | None = None) -> None:
        await self._call("POST", f"/images/{ref}/tag", {"repo": repo, "tag": tag or ""})

    async def remove(self, ref: str, force: bool = False, noprune: bool = False) -> builtins.list[Json]:
        flags = {"force": "1" if force else "0", "noprune": "1" if noprune else "0"}
        return builtins.list(await self._call("DELETE", f"/images/{ref}", flags))

    async def prune(self, filters: Mapping[str, Any] | None = None) -> Json:
        return dict(await self._call("POST", "/images/prune", _filters(filters)))

    async def distribution_inspect(self, ref: str, auth: str | None = None) -> Json:
        response = await self._open("GET", f"/distribution/{ref}/json",
                                    headers={"X-Registry-Auth": auth} if auth else None)
        try:
            return dict(json.loads(await response.read()))
        finally:
            response.release()

    async def login(self, request: Json) -> Json:
        return dict(await self._call("POST", "/auth", body=request))
