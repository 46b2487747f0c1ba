"""A small asyncio client for the Docker Engine API over its unix socket (aiohttp).

Why not docker-py in threads: docker-py blocks a thread for every call, and the executor holds
long calls open all the time (one `wait` per running task, `logs --follow` streams). With the default
thread pool of a 2-core host (6 threads) 50 waiting tasks would starve every other call; cancelling
a thread-bound call does not stop it either. aiohttp is already a shoal dependency, cancellation
closes the connection, and the few endpoints the executor needs are plain JSON plus stdcopy streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from shoal.api.errors import Conflict, InvalidArgument, NotFound
from shoal.executor.docker.address import DEFAULT_SOCKET, EngineAddress
from shoal.executor.errors import ExecutorError, TemporaryExecutorError

# The newest API version this client speaks; an older engine makes us speak its version.
MAX_API_VERSION = (1, 41)
# Plain calls (create, inspect, start) must not hang forever on a wedged engine.
CALL_TIMEOUT_S = 120.0

Params = Mapping[str, str | int | bool | Mapping[str, Any] | None]


class EngineError(ExecutorError):
    """The engine answered with an error status; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class EngineNotFound(EngineError, NotFound):
    pass


class EngineConflict(EngineError, Conflict):
    pass


class EngineBadRequest(EngineError, InvalidArgument):
    pass


class EngineUnreachable(TemporaryExecutorError):
    def __init__(self, address: EngineAddress, reason: str) -> None:
        super().__init__(f"cannot reach the Docker Engine at {address}: {reason}")
        self.address = address


def error_for_status(status: int, message: str) -> EngineError:
    if status == 404:
        return EngineNotFound(status, message)
    if status == 409:
        return EngineConflict(status, message)
    if status == 400:
        return EngineBadRequest(status, message)
    return EngineError(status, message)


def encode_params(params: Params | None) -> dict[str, str]:
    """The engine reads booleans as 1/0 and filters as JSON; aiohttp wants strings."""
    encoded: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            encoded[key] = "1" if value else "0"
        elif isinstance(value, Mapping):
            encoded[key] = json.dumps(value)
        else:
            encoded[key] = str(value)
    return encoded


def parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


class EngineClient:
    """One connection pool to one engine. Create it anywhere; it connects on first use.
    `host`: a unix socket path, `unix:///path` or `tcp://host:port` (see address.py)."""

    def __init__(self, host: str = DEFAULT_SOCKET) -> None:
        self.address = EngineAddress.parse(host)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._api_prefix: str | None = None

    async def close(self) -> None:
        if self._session is not None and self._session_loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._session_loop is not loop:
            # Made on another event loop (a test harness with one loop per test): that loop's sockets
            # cannot be used here, and closing them needs that loop, so the old session is dropped.
            self._session = None
        if self._session is None or self._session.closed:
            # limit=0: every running task holds a `wait` connection open; a pool cap would queue them.
            connector: aiohttp.BaseConnector
            if self.address.unix_path is not None:
                connector = aiohttp.UnixConnector(path=self.address.unix_path, limit=0)
            else:
                connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector, base_url=self.address.base_url)
            self._session_loop = loop
        return self._session

    async def versioned(self, path: str) -> str:
        """`path` with the negotiated `/v1.xx` prefix, for callers that speak HTTP themselves."""
        return await self._prefix() + path

    async def _prefix(self) -> str:
        if self._api_prefix is None:
            # Concurrent first calls may each ask; they all get the same answer.
            version = await self._request_unversioned("GET", "/version")
            engine = parse_version(str(version.get("ApiVersion", "1.41")))
            major, minor = min(engine, MAX_API_VERSION)
            self._api_prefix = f"/v{major}.{minor}"
        return self._api_prefix

    async def _request_unversioned(self, method: str, path: str) -> Any:
        async with self._open(method, path, None, None, CALL_TIMEOUT_S) as response:
            return await response.json(content_type=None)

    @asynccontextmanager
    async def _open(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: Any,
        timeout_s: float | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)
        try:
            async with self._client_session().request(
                method,
                path,
                params=encode_params(params),
                json=body,
                timeout=timeout,
            ) as response:
                if response.status >= 400:
                    raise error_for_status(response.status, await _error_message(response))
                yield response
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            # Refused, reset or cut mid-answer (dockerd restarting): worth a retry.
            raise EngineUnreachable(self.address, str(error) or type(error).__name__) from error
        except TimeoutError as error:
            raise EngineUnreachable(self.address, f"{method} {path} timed out") from error

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        timeout_s: float | None = CALL_TIMEOUT_S,
    ) -> Any:
        """One request; returns the decoded JSON answer, or None for an empty one (204, 304)."""
        prefix = await self._prefix()
        async with self._open(method, prefix + path, params, body, timeout_s) as response:
            raw = await response.read()
        if not raw:
            return None
        return json.loads(raw)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request whose answer is read as it comes (logs, exec output); no overall timeout."""
        prefix = await self._prefix()
        async with self._open(method, prefix + path, params, body, None) as response:
            yield response


async def _error_message(response: aiohttp.ClientResponse) -> str:
    raw = await response.read()
    try:
        decoded = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip() or f"HTTP {response.status}"
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return raw.decode(errors="replace").strip()


async def iter_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for chunk in response.content.iter_any():
        yield chunk
