"""The shared state and helpers of the in-memory Backend (see fake_backend.py): an in-memory
Backend for HTTP-level tests of the Engine API front door.

The fake keeps real state (swarm membership, versioned services with optimistic concurrency, secrets,
configs, networks, exec sessions) and raises the same error categories a real node does, but
schedules nothing: tests put tasks, containers and log lines in place themselves. Exec commands are
interpreted, not run: `echo ARGS...`, `cat` (stdin to stdout; with a TTY, Ctrl-D ends it), `fail CODE
TEXT` (TEXT to stderr).
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shoal.api import errors
from shoal.base.clock import rfc3339
from shoal.base.ids import new_id
from shoal.engineapi.backend import (
    STDERR,
    STDOUT,
    Filters,
    Json,
    LogMessage,
    LogOptions,
)
from shoal.images.service import ImageService

_CTRL_D = b"\x04"
_SERVICE_FILTERS = {"id", "name", "label", "mode"}
_NODE_FILTERS = {"id", "name", "role", "membership", "label", "node.label"}
_TASK_FILTERS = {"service", "node", "id", "name", "label", "desired-state", "_up-to-date", "runtime"}
_NAMED_FILTERS = {"id", "name", "names", "label"}


def _check_filter_keys(filters: Filters, allowed: set[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise errors.InvalidArgument(f"Invalid filter '{key}'")


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, has_value, value = item.partition("=")
        if key not in labels or (has_value and labels[key] != value):
            return False
    return True


def _prefix_match(value: str, wanted: list[str]) -> bool:
    return not wanted or any(value.startswith(w) for w in wanted)


@dataclass
class FakeExec:
    exec_id: str
    container_id: str
    command: list[str]
    attach_stdin: bool
    tty: bool = False
    exit_code: int | None = None
    running: bool = False
    stdin: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class FakeExecStream:
    def __init__(self, session: FakeExec) -> None:
        self._session = session

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        session = self._session
        program, *args = session.command or [""]
        code = 0
        if program == "echo":
            yield STDOUT, (" ".join(args) + "\n").encode()
        elif program == "cat":
            while (data := await session.stdin.get()) is not None:
                if session.tty and _CTRL_D in data:  # a terminal's end of input
                    yield STDOUT, data.split(_CTRL_D)[0]
                    break
                yield STDOUT, data
        elif program == "fail":
            code = int(args[0])
            yield STDERR, (" ".join(args[1:]) + "\n").encode()
        else:
            code = 127
            yield STDERR, f"exec: {program!r}: executable file not found in $PATH\n".encode()
        session.exit_code = code
        session.running = False

    async def write_stdin(self, data: bytes) -> None:
        if self._session.attach_stdin:
            await self._session.stdin.put(data)

    async def close_stdin(self) -> None:
        await self._session.stdin.put(None)


class FakeCore:
    def __init__(self, images: ImageService | None = None) -> None:
        self.images = images
        self._images_dir: tempfile.TemporaryDirectory[str] | None = None
        self.node_id = ""
        self.swarm: Json | None = None
        self.nodes: dict[str, Json] = {}
        self.services: dict[str, Json] = {}
        self.tasks: dict[str, Json] = {}
        self.containers: dict[str, Json] = {}
        self.secrets: dict[str, Json] = {}
        self.configs: dict[str, Json] = {}
        self.networks: dict[str, Json] = {}
        self.execs: dict[str, FakeExec] = {}
        self.logs: dict[str, list[LogMessage]] = {}
        """Log lines by service ID; a task's lines are those whose attrs name its task ID."""
        self.event_log: list[Json] = []
        self._index = itertools.count(10)
        self._changed = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()
        self.unlock_key = ""
        """Set while autolock is on (as the cluster object's key)."""
        self.locked = False

    # -- helpers for tests ----------------------------------------------------------------------
    def restart_locked(self) -> None:
        """What a restart does to an autolocked manager: locked until `swarm unlock`."""
        assert self.swarm is not None and self.unlock_key, "only an autolocked swarm locks"
        self.locked = True

    def now(self) -> str:
        return rfc3339(datetime.now(UTC))

    async def add_log(self, service_id: str, message: LogMessage) -> None:
        self.logs.setdefault(service_id, []).append(message)
        async with self._changed:
            self._changed.notify_all()

    async def publish_event(self, event: Json) -> None:
        self.event_log.append(event)
        async with self._changed:
            self._changed.notify_all()

    def _manager(self) -> Json:
        if self.locked:
            raise errors.SwarmLocked()
        if self.swarm is None:
            raise errors.NotAManager()
        return self.swarm

    def _resolve(self, table: dict[str, Json], ref: str, kind: str, name_path: tuple[str, ...]) -> Json:
        self._manager()
        if ref in table:
            return table[ref]
        for obj in table.values():
            name: Any = obj
            for key in name_path:
                name = name.get(key, {}) if isinstance(name, dict) else {}
            if name == ref:
                return obj
        matches = [obj for obj_id, obj in table.items() if obj_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise errors.NotFound(f"{kind} {ref} not found")

    def _new_object(self, spec: Json) -> Json:
        now = self.now()
        return {
            "ID": new_id(),
            "Version": {"Index": next(self._index)},
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": spec,
        }

    def _bump(self, obj: Json, version: int) -> None:
        if obj["Version"]["Index"] != version:
            raise errors.OutOfSequence()
        obj["Version"] = {"Index": next(self._index)}
        obj["UpdatedAt"] = self.now()

    # -- log lines (services, tasks and containers) ----
    async def _follow_lines(
        self, service_id: str, options: LogOptions, task_id: str | None
    ) -> AsyncIterator[LogMessage]:
        def selected() -> list[LogMessage]:
            lines = self.logs.get(service_id, [])
            if task_id is not None:
                lines = [m for m in lines if m.attrs.get("com.docker.swarm.task.id") == task_id]
            return lines

        lines = selected()
        position = 0 if options.tail is None else max(0, len(lines) - options.tail)
        while True:
            lines = selected()
            for message in lines[position:]:
                if options.since is None or message.timestamp >= options.since:
                    yield message
            position = len(lines)
            if not options.follow:
                return
            async with self._changed:
                await self._changed.wait_for(lambda p=position: len(selected()) > p)  # type: ignore[misc]


async def _drain(stream: FakeExecStream) -> None:
    async for _ in stream.output():
        pass
