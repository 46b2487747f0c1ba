"""One task's state directory. shoald writes spec.json at prepare; the shim writes the rest:
`supervisor` ("<pid> <start time>"), `pid` ("<pid> <start time>\\n<started at>"), `error` (why the
start failed), `log` (+ `log.1`) and, last of all, `exit` ("<code>\\n<finished at>")."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shoal.base.clock import parse_rfc3339, rfc3339
from shoal.executor.base import TaskRuntime
from shoal.executor.taskoptions import TaskOptions


@dataclass(frozen=True)
class TaskRecord:
    """What shoald decided at prepare time, kept so a later shoald can re-adopt the task."""

    runtime: TaskRuntime
    container_id: str
    created_at: datetime
    hostname: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    isolated: bool
    address: str | None
    cgroups: tuple[str, ...]  # cgroup directories made for the task
    options: TaskOptions = field(default_factory=TaskOptions)  # ContainerSpec fields beyond the runtime

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime.to_json(),
            "container_id": self.container_id,
            "created_at": rfc3339(self.created_at),
            "hostname": self.hostname,
            "argv": list(self.argv),
            "env": list(self.env),
            "isolated": self.isolated,
            "address": self.address,
            "cgroups": list(self.cgroups),
            "options": self.options.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskRecord:
        return cls(
            runtime=TaskRuntime.from_json(data["runtime"]),
            container_id=data["container_id"],
            created_at=parse_rfc3339(data["created_at"]),
            hostname=data["hostname"],
            argv=tuple(data["argv"]),
            env=tuple(data["env"]),
            isolated=bool(data["isolated"]),
            address=data.get("address"),
            cgroups=tuple(data.get("cgroups") or ()),
            options=TaskOptions.from_json(data.get("options") or {}),
        )


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start_time: int
    started_at: datetime | None = None


@dataclass(frozen=True)
class ExitRecord:
    code: int
    finished_at: datetime


class TaskDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def log_path(self) -> Path:
        return self.path / "log"

    def exists(self) -> bool:
        return (self.path / "spec.json").exists()

    def write_record(self, record: TaskRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / ".spec.json.tmp"
        tmp.write_text(json.dumps(record.to_json(), indent=1))
        os.replace(tmp, self.path / "spec.json")

    def read_record(self) -> TaskRecord:
        return TaskRecord.from_json(json.loads((self.path / "spec.json").read_text()))

    def supervisor(self) -> ProcessId | None:
        lines = self._lines("supervisor")
        if not lines:
            return None
        pid, start = lines[0].split()
        return ProcessId(int(pid), int(start))

    def process(self) -> ProcessId | None:
        lines = self._lines("pid")
        if not lines:
            return None
        pid, start = lines[0].split()
        started_at = parse_rfc3339(lines[1]) if len(lines) > 1 else None
        return ProcessId(int(pid), int(start), started_at)

    def exit(self) -> ExitRecord | None:
        lines = self._lines("exit")
        if len(lines) < 2:
            return None
        return ExitRecord(int(lines[0]), parse_rfc3339(lines[1]))

    def error(self) -> str:
        try:
            return (self.path / "error").read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    def write_exit(self, code: int, finished_at: datetime, error: str = "") -> None:
        """For tasks whose supervisor vanished (host reboot, kill -9 of the shim)."""
        if error:
            (self.path / "error").write_text(error)
        tmp = self.path / ".exit.tmp"
        tmp.write_text(f"{code}\n{rfc3339(finished_at)}\n")
        os.replace(tmp, self.path / "exit")

    def started(self) -> bool:
        return (self.path / "supervisor").exists()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _lines(self, name: str) -> list[str]:
        try:
            return (self.path / name).read_text().split("\n")[:-1] or []
        except FileNotFoundError:
            return []
