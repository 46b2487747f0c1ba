"""The contract suite's client and servers: Engine API calls on a unix socket, and the FakeBackend
behind the real Engine API server (conftest.py starts the real shoald)."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
from typing import Any
from urllib.parse import quote

from shoal.engineapi.server import Runner, serve
from shoal.testing.fake_backend import FakeBackend


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Api:
    """Engine API calls on a unix socket, as a client sees them."""

    def __init__(self, kind: str, socket_path: str) -> None:
        self.kind = kind
        self.socket_path = socket_path

    def call(self, method: str, path: str, body: Any = None, *, timeout: float = 60.0) -> tuple[int, Any]:
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, "/v1.41" + path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw.strip() else None
        finally:
            connection.close()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, reply = self.call(method, path, body)
        assert 200 <= status < 300, f"{self.kind}: {method} {path} answered {status}: {reply}"
        return reply


def filters(**values: list[str]) -> str:
    """`?filters=` as the docker CLI sends it."""
    return "filters=" + quote(json.dumps({key: {v: True for v in vals} for key, vals in values.items()}))


class FakeServer:
    """The FakeBackend behind the real Engine API server, on a loop of its own."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="shoal-contract-")  # short: unix socket paths are limited
        self.socket_path = os.path.join(self.dir, "d.sock")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: Runner = asyncio.run_coroutine_threadsafe(
            serve(FakeBackend(), [f"unix://{self.socket_path}"]), self._loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


