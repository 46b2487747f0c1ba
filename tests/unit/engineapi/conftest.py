"""A real Engine API server on a temporary unix socket, run on its own event loop in a thread so
synchronous clients (docker-py, the docker CLI) can talk to it from the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest

from shoal.engineapi.server import Runner, serve
from shoal.testing.daemon import DOCKER_CLI, NO_DOCKER_CLI, cli_requirement
from shoal.testing.fake_backend import FakeBackend

T = TypeVar("T")


class EngineServer:
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self._dir = tempfile.mkdtemp(prefix="shoal-eng-")  # short: unix socket paths are limited
        self.socket_path = os.path.join(self._dir, "d.sock")
        self.base_url = f"unix://{self.socket_path}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: Runner = self.run(serve(backend, [self.base_url]))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's loop (the backend's state lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        self.run(self._runner.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if DOCKER_CLI is None:
            raise RuntimeError(NO_DOCKER_CLI)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self._dir, "DOCKER_HOST": self.base_url}
        return subprocess.run([DOCKER_CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=30)


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


async def raw_request(
    socket_path: str, method: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> RawResponse:
    connector = aiohttp.UnixConnector(path=socket_path)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, f"http://docker{path}", data=data, headers=headers) as response,
    ):
        body = await response.read()
        return RawResponse(response.status, dict(response.headers), body)


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    server = EngineServer(FakeBackend())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def swarm_engine(engine: EngineServer) -> EngineServer:
    engine.run(engine.backend.swarm_init({}))
    return engine


def request(
    engine: EngineServer,
    method: str,
    path: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    return asyncio.run(raw_request(engine.socket_path, method, path, data=data, headers=headers))


needs_cli = pytest.mark.skipif(**cli_requirement())


def needs_cli_version(minimum: tuple[int, int], needs: str) -> pytest.MarkDecorator:
    """For checks on output that older CLIs print differently (Debian 12's docker.io CLI is 20.10)."""
    return pytest.mark.skipif(**cli_requirement(minimum, needs))
