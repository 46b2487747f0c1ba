"""A recording Engine API for the real docker CLI (and shoal's): it answers what `docker stack deploy` asks
on its way (a swarm manager, the objects a test says exist, no registry) and keeps every request, so the
tests can hold shoal's conversion and calls against the CLI's own."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from shoal.testing.daemon import DOCKER_CLI

# The CLI release whose stack conversion shoal.compose follows (older ones send other fields, e.g. 20.10
# has no capabilities or ulimits in services).
CLI_STACK_REFERENCE = (28, 0)


@dataclass
class Recorder:
    socket: Path
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    created: dict[str, dict[str, str]] = field(default_factory=lambda: {"secrets": {}, "configs": {}})
    # Objects that exist before the deploy: listed by label, inspected by name or ID, updatable.
    existing: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"services": [], "networks": [], "secrets": [], "configs": []})
    queries: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)

    def writes(self) -> list[tuple[str, str, str, str]]:
        """Every POST and DELETE as (method, path, sorted query, body), in a stable order."""
        found = []
        for (method, path, body), (_, _, query) in zip(self.requests, self.queries, strict=True):
            if method in ("POST", "DELETE"):
                found.append((method, path, json.dumps(query, sort_keys=True), json.dumps(body, sort_keys=True)))
        return sorted(found)

    def shoal_deploy(self, compose: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(compose.parent),
                   "DOCKER_HOST": f"unix://{self.socket}"}
        return subprocess.run([sys.executable, "-m", "shoal.cli", "stack", "deploy", *args, "-c", str(compose),
                               namespace], capture_output=True, text=True, env=environ, cwd=compose.parent,
                              timeout=60)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [body for m, p, body in self.requests if m == method and p == path]

    def deploy(self, compose: Path, namespace: str, env: dict[str, str] | None = None,
               more: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
        assert DOCKER_CLI is not None
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(compose.parent), **(env or {}),
                   "DOCKER_HOST": f"unix://{self.socket}"}
        files = [arg for path in (compose, *more) for arg in ("-c", str(path))]
        return subprocess.run([DOCKER_CLI, "stack", "deploy", "--resolve-image", "never", *files, namespace],
                              capture_output=True, text=True, env=environ, cwd=compose.parent, timeout=60)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    recorder: Recorder


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def address_string(self) -> str:
        return "unix"

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _listed(self, kind: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        filters = json.loads(query.get("filters", ["{}"])[0])
        found = self.server.recorder.existing[kind]
        for label in filters.get("label", {}):
            key, _, value = label.partition("=")
            found = [o for o in found if (o.get("Spec") or o).get("Labels", {}).get(key) is not None
                     and (not value or (o.get("Spec") or o)["Labels"][key] == value)]
        return found

    def _route(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path.split("/", 2)[2] if url.path.startswith("/v1.") else url.path.lstrip("/")
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        recorder = self.server.recorder
        recorder.requests.append((self.command, "/" + path, body))
        recorder.queries.append((self.command, "/" + path, query))
        parts = path.split("/")
        if path == "_ping":
            return self._answer(200)
        if path == "version":
            return self._answer(200, {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "20.10.24"})
        if path == "info":
            return self._answer(200, {"Swarm": {"ControlAvailable": True, "LocalNodeState": "active"}})
        if parts[0] in ("networks", "services") and self.command == "GET" and len(parts) == 1:
            return self._answer(200, self._listed(parts[0], query))
        if parts[0] == "networks" and self.command == "GET":
            return self._answer(200, {"Name": parts[1], "Id": "ext" + parts[1], "Scope": "swarm"})
        if path in ("networks/create", "services/create"):
            return self._answer(201, {"Id": "created", "ID": "created"})
        if parts[0] == "services" and self.command == "POST":
            return self._answer(200, {"Warnings": None})
        if self.command == "DELETE":
            return self._answer(200 if parts[0] == "services" else 204)
        if parts[0] in ("secrets", "configs"):
            kind = parts[0]
            if self.command == "POST" and parts[1:] == ["create"]:
                recorder.created[kind][body["Name"]] = f"id-{body['Name']}"
                return self._answer(201, {"ID": f"id-{body['Name']}"})
            if self.command == "POST":
                return self._answer(200)
            known = {**{o["Spec"]["Name"]: o["ID"] for o in recorder.existing[kind]}, **recorder.created[kind],
                     "external_thing": "id-external_thing", "precreated": "id-pre"}
            if self.command == "GET" and len(parts) == 1 and "label" in query.get("filters", [""])[0]:
                return self._answer(200, self._listed(kind, query))
            if self.command == "GET" and len(parts) == 1:
                names = json.loads(query.get("filters", ["{}"])[0]).get("name", {})
                return self._answer(200, [{"ID": ident, "Spec": {"Name": name}} for name, ident in known.items()
                                          if name in names])
            for obj in recorder.existing[kind]:
                if parts[1] in (obj["ID"], obj["Spec"]["Name"]):
                    return self._answer(200, obj)
            return self._answer(404, {"message": f"{kind[:-1]} {parts[1]} not found"})
        if parts[0] == "distribution":
            return self._answer(500, {"message": "no registry here"})
        return self._answer(404, {"message": f"page not found: {path}"})

    do_GET = do_POST = do_HEAD = do_DELETE = _route


def start(recorder: Recorder) -> _Server:
    server = _Server(str(recorder.socket), _Handler)
    server.recorder = recorder
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
