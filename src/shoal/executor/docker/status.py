"""Engine answers → the executor protocol's dataclasses. Pure, so it is unit tested without an engine."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shoal.base.clock import parse_rfc3339
from shoal.executor.base import ContainerInfo, ContainerState, ContainerStatus, ExecInfo, PortSpec
from shoal.executor.docker.labels import visible_labels

# Docker's "never" for StartedAt/FinishedAt.
_ZERO_TIME_PREFIX = "0001-01-01"


def engine_time(text: str | None) -> datetime | None:
    if not text or text.startswith(_ZERO_TIME_PREFIX):
        return None
    return parse_rfc3339(text)


def container_state(engine_state: str) -> ContainerState:
    """Docker has more states than the protocol: paused and restarting still have a live workload;
    dead and removing do not."""
    if engine_state in ("running", "paused", "restarting"):
        return ContainerState.RUNNING
    if engine_state == "created":
        return ContainerState.CREATED
    return ContainerState.EXITED


def container_address(network_settings: Mapping[str, Any]) -> str | None:
    """The container's IP: the default bridge's field, else the first network that gave it one."""
    address = network_settings.get("IPAddress")
    if address:
        return str(address)
    for endpoint in (network_settings.get("Networks") or {}).values():
        if endpoint and endpoint.get("IPAddress"):
            return str(endpoint["IPAddress"])
    return None


def status_from_inspect(inspect: Mapping[str, Any]) -> ContainerStatus:
    state = inspect.get("State") or {}
    kind = container_state(str(state.get("Status", "")))
    pid = int(state.get("Pid") or 0)
    running = kind is ContainerState.RUNNING
    started_at, finished_at = engine_time(state.get("StartedAt")), engine_time(state.get("FinishedAt"))
    if started_at and finished_at and finished_at < started_at:
        # dockerd stamps StartedAt after containerd has already started the process, so a workload
        # that exits at once can show FinishedAt first. It cannot have finished before it started.
        started_at = finished_at
    return ContainerStatus(
        container_id=str(inspect["Id"]),
        state=kind,
        pid=pid or None,
        exit_code=int(state.get("ExitCode", 0)) if kind is ContainerState.EXITED else None,
        created_at=engine_time(inspect.get("Created")),
        started_at=started_at,
        finished_at=finished_at,
        error=str(state.get("Error") or ""),
        address=container_address(inspect.get("NetworkSettings") or {}) if running else None,
        hostname=(inspect.get("Config") or {}).get("Hostname") or None,
        health=((state.get("Health") or {}).get("Status") or None) if running else None,
    )


def ports_from_list(entries: list[Mapping[str, Any]] | None) -> tuple[PortSpec, ...]:
    seen: dict[tuple[int, str], PortSpec] = {}
    for entry in entries or ():
        port = PortSpec(int(entry["PrivatePort"]), str(entry.get("Type", "tcp")))
        seen.setdefault((port.target, port.protocol), port)
    return tuple(seen.values())


def info_from_list(entry: Mapping[str, Any]) -> ContainerInfo:
    """One element of GET /containers/json."""
    return ContainerInfo(
        id=str(entry["Id"]),
        names=tuple(entry.get("Names") or ()),
        image=str(entry.get("Image", "")),
        command=str(entry.get("Command", "")),
        created=int(entry.get("Created", 0)),
        state=container_state(str(entry.get("State", ""))),
        status=str(entry.get("Status", "")),
        labels=visible_labels(entry.get("Labels") or {}),
        ports=ports_from_list(entry.get("Ports")),
    )


def exec_info_from_inspect(inspect: Mapping[str, Any]) -> ExecInfo:
    process = inspect.get("ProcessConfig") or {}
    entrypoint = process.get("entrypoint")
    argv = ([entrypoint] if entrypoint else []) + list(process.get("arguments") or ())
    running = bool(inspect.get("Running"))
    pid = int(inspect.get("Pid") or 0)
    exit_code = inspect.get("ExitCode")
    return ExecInfo(
        id=str(inspect["ID"]),
        container_id=str(inspect.get("ContainerID", "")),
        argv=tuple(str(arg) for arg in argv),
        running=running,
        exit_code=None if running or exit_code is None else int(exit_code),
        pid=pid or None,
    )
