"""An in-memory Backend for HTTP-level tests of the Engine API front door.

It keeps real state (swarm membership, versioned services with optimistic concurrency, secrets,
configs, networks, exec sessions) and raises the same error categories a real node does, but
schedules nothing: tests put tasks, containers and log lines in place themselves. Exec commands are
interpreted, not run: `echo ARGS...`, `cat` (stdin to stdout; with a TTY, Ctrl-D ends it), `fail CODE
TEXT` (TEXT to stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoal.api import errors
from shoal.base.clock import rfc3339
from shoal.base.ids import new_container_id, new_id
from shoal.engineapi.backend import (
    STDERR,
    STDOUT,
    Backend,
    ContainerListQuery,
    EventQuery,
    ExecStartOptions,
    Filters,
    Json,
    LogMessage,
    LogOptions,
    SwarmUpdateFlags,
)
from shoal.images.removal import ImageUser
from shoal.images.service import ImageService

_CTRL_D = b"\x04"
_SERVICE_FILTERS = {"id", "name", "label", "mode"}
_NODE_FILTERS = {"id", "name", "role", "membership", "label", "node.label"}
_TASK_FILTERS = {"service", "node", "id", "name", "label", "desired-state", "_up-to-date"}
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


class FakeBackend:
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

    # -- system ---------------------------------------------------------------------------------
    async def version(self) -> Json:
        return {
            "Platform": {"Name": ""},
            "Version": "20.10.24+shoal",
            "ApiVersion": "1.41",
            "MinAPIVersion": "1.12",
            "GitCommit": "fake",
            "GoVersion": "python3.11",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": "fake",
            "BuildTime": "2026-01-01T00:00:00.000000000+00:00",
        }

    async def info(self) -> Json:
        active = self.swarm is not None and not self.locked
        if self.locked:
            return {"ID": "FAKE", "Name": "fakehost", "ServerVersion": "20.10.24+shoal", "Swarm": {
                "NodeID": "", "NodeAddr": "127.0.0.1", "LocalNodeState": "locked", "ControlAvailable": False,
                "Error": errors.SWARM_LOCKED, "RemoteManagers": None}}
        return {
            "ID": "FAKE",
            "Name": "fakehost",
            "ServerVersion": "20.10.24+shoal",
            "Swarm": {
                "NodeID": self.node_id,
                "NodeAddr": "127.0.0.1" if active else "",
                "LocalNodeState": "active" if active else "inactive",
                "ControlAvailable": active,
                "Error": "",
                "RemoteManagers": None,
            },
        }

    async def swarm_status(self) -> str:
        if self.locked:
            return "locked"
        return "active/manager" if self.swarm is not None else "inactive"

    async def events(self, query: EventQuery) -> AsyncIterator[Json]:
        wanted_types = query.filters.get("type", [])
        position = 0
        while True:
            while position < len(self.event_log):
                event = self.event_log[position]
                position += 1
                moment = datetime.fromtimestamp(event["time"], UTC)
                if query.since is not None and moment < query.since:
                    continue
                if query.until is not None and moment > query.until:
                    return
                if not wanted_types or event.get("Type") in wanted_types:
                    yield event
            if query.until is not None:
                return
            async with self._changed:
                await self._changed.wait_for(lambda p=position: len(self.event_log) > p)  # type: ignore[misc]

    # -- swarm ----------------------------------------------------------------------------------
    async def swarm_init(self, request: Json) -> str:
        if self.swarm is not None:
            raise errors.AlreadyInSwarm()
        self.swarm = self._new_object(request.get("Spec") or {})
        if request.get("AutoLockManagers") or (self.swarm["Spec"].get("EncryptionConfig") or {}).get(
                "AutoLockManagers"):
            self.swarm["Spec"].setdefault("EncryptionConfig", {})["AutoLockManagers"] = True
            self.unlock_key = "SWMKEY-1-fake" + new_id()
        self.swarm["JoinTokens"] = {"Worker": "SWMTKN-1-fake-worker", "Manager": "SWMTKN-1-fake-manager"}
        node = self._new_object({"Role": "manager", "Availability": "active", "Labels": {}})
        node["Description"] = {"Hostname": "fakehost"}
        node["Status"] = {"State": "ready", "Addr": "127.0.0.1"}
        node["ManagerStatus"] = {"Leader": True, "Reachability": "reachable", "Addr": "127.0.0.1:2377"}
        self.nodes[node["ID"]] = node
        self.node_id = node["ID"]
        return self.node_id

    async def swarm_join(self, request: Json) -> None:
        if self.swarm is not None:
            raise errors.AlreadyInSwarm()
        raise errors.Unavailable("could not connect to any manager (fake backend)")

    async def swarm_leave(self, force: bool) -> None:
        if self.swarm is None:
            raise errors.Unavailable("This node is not part of a swarm")
        if not force:
            raise errors.Unavailable(
                "You are attempting to leave the swarm on a node that is participating as a manager."
            )
        self.swarm = None
        self.node_id = ""
        self.locked = False
        self.unlock_key = ""
        for table in (self.nodes, self.services, self.tasks, self.secrets, self.configs):
            table.clear()

    async def swarm_inspect(self) -> Json:
        return self._manager()

    async def swarm_update(self, spec: Json, version: int, flags: SwarmUpdateFlags) -> None:
        swarm = self._manager()
        self._bump(swarm, version)
        swarm["Spec"] = spec
        if flags.rotate_worker_token:
            swarm["JoinTokens"]["Worker"] = "SWMTKN-1-fake-worker-" + new_id()[:6]
        if flags.rotate_manager_token:
            swarm["JoinTokens"]["Manager"] = "SWMTKN-1-fake-manager-" + new_id()[:6]
        if not (spec.get("EncryptionConfig") or {}).get("AutoLockManagers"):
            self.unlock_key = ""
        elif flags.rotate_manager_unlock_key or not self.unlock_key:
            self.unlock_key = "SWMKEY-1-fake" + new_id()

    async def swarm_unlock_key(self) -> Json:
        self._manager()
        return {"UnlockKey": self.unlock_key}

    async def swarm_unlock(self, request: Json) -> None:
        if not self.locked:
            self._manager()
            raise errors.NotLocked()
        key = request.get("UnlockKey")
        if not isinstance(key, str) or not key.startswith("SWMKEY-1-"):
            raise errors.InvalidArgument("invalid key string")
        if key != self.unlock_key:
            raise errors.InvalidUnlockKey()
        self.locked = False

    # -- nodes ----------------------------------------------------------------------------------
    async def nodes_list(self, filters: Filters) -> list[Json]:
        self._manager()
        _check_filter_keys(filters, _NODE_FILTERS)
        return [
            n
            for n in self.nodes.values()
            if _prefix_match(n["ID"], filters.get("id", []))
            and (not filters.get("role") or n["Spec"]["Role"] in filters["role"])
        ]

    async def node_inspect(self, ref: str) -> Json:
        return self._resolve(self.nodes, ref, "node", ("Description", "Hostname"))

    async def node_update(self, ref: str, version: int, spec: Json) -> None:
        node = await self.node_inspect(ref)
        self._bump(node, version)
        node["Spec"] = spec

    async def node_remove(self, ref: str, force: bool) -> None:
        node = await self.node_inspect(ref)
        if node["Spec"].get("Role") == "manager":
            raise errors.FailedPrecondition(
                f"node {node['ID']} is a cluster manager and is a member of the raft cluster. "
                "It must be demoted to worker before removal",
                grpc=True,
            )
        del self.nodes[node["ID"]]

    # -- services -------------------------------------------------------------------------------
    async def services_list(self, filters: Filters, status: bool) -> list[Json]:
        self._manager()
        _check_filter_keys(filters, _SERVICE_FILTERS)
        found = []
        for service in self.services.values():
            spec = service["Spec"]
            if not _prefix_match(service["ID"], filters.get("id", [])):
                continue
            if not _prefix_match(spec.get("Name", ""), filters.get("name", [])):
                continue
            if not _labels_match(spec.get("Labels") or {}, filters.get("label", [])):
                continue
            listed = copy.deepcopy(service)
            if status:
                desired = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
                running = sum(
                    1
                    for t in self.tasks.values()
                    if t["ServiceID"] == service["ID"] and t["Status"]["State"] == "running"
                )
                listed["ServiceStatus"] = {
                    "RunningTasks": running,
                    "DesiredTasks": desired,
                    "CompletedTasks": 0,
                }
            found.append(listed)
        return found

    async def service_create(self, spec: Json, registry_auth: str | None) -> Json:
        self._manager()
        name = spec.get("Name", "")
        if not spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image"):
            raise errors.InvalidArgument("ContainerSpec: image reference must be provided", grpc=True)
        if any(s["Spec"].get("Name") == name for s in self.services.values()):
            raise errors.AlreadyExists(
                f"name conflicts with an existing object: service {name} already exists", grpc=True
            )
        service = self._new_object(spec)
        service["Endpoint"] = {"Spec": {}}
        self.services[service["ID"]] = service
        return {"ID": service["ID"], "Warnings": None}

    async def service_inspect(self, ref: str, insert_defaults: bool) -> Json:
        service = copy.deepcopy(self._resolve(self.services, ref, "service", ("Spec", "Name")))
        if insert_defaults:
            for section in ("UpdateConfig", "RollbackConfig"):
                service["Spec"].setdefault(
                    section,
                    {
                        "Parallelism": 1,
                        "FailureAction": "pause",
                        "Monitor": 5_000_000_000,
                        "MaxFailureRatio": 0,
                        "Order": "stop-first",
                    },
                )
        return service

    async def service_update(
        self,
        ref: str,
        version: int,
        spec: Json,
        registry_auth_from: str,
        rollback: str,
        registry_auth: str | None,
    ) -> Json:
        service = self._resolve(self.services, ref, "service", ("Spec", "Name"))
        self._bump(service, version)
        service["PreviousSpec"] = service["Spec"]
        service["Spec"] = spec
        return {"Warnings": None}

    async def service_remove(self, ref: str) -> None:
        service = self._resolve(self.services, ref, "service", ("Spec", "Name"))
        del self.services[service["ID"]]

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

    async def service_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        service = self._resolve(self.services, ref, "service", ("Spec", "Name"))
        async for message in self._follow_lines(service["ID"], options, None):
            yield message

    # -- tasks ----------------------------------------------------------------------------------
    async def tasks_list(self, filters: Filters) -> list[Json]:
        self._manager()
        _check_filter_keys(filters, _TASK_FILTERS)
        wanted_services = filters.get("service", [])
        return [
            t
            for t in self.tasks.values()
            if not wanted_services
            or t["ServiceID"] in wanted_services
            or self.services.get(t["ServiceID"], {}).get("Spec", {}).get("Name") in wanted_services
        ]

    async def task_inspect(self, ref: str) -> Json:
        return self._resolve(self.tasks, ref, "task", ())

    async def task_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        task = await self.task_inspect(ref)
        async for message in self._follow_lines(task["ServiceID"], options, task["ID"]):
            yield message

    # -- containers and exec --------------------------------------------------------------------
    def add_container(self, name: str, labels: dict[str, str] | None = None) -> str:
        container_id = new_container_id()
        self.containers[container_id] = {
            "Id": container_id,
            "Names": [f"/{name}"],
            "Image": "busybox:latest",
            "Command": "sh",
            "Created": int(datetime.now(UTC).timestamp()),
            "State": "running",
            "Status": "Up 1 second",
            "Ports": [],
            "Labels": labels or {},
        }
        return container_id

    def _container(self, ref: str) -> Json:
        for container in self.containers.values():
            if container["Id"].startswith(ref) or f"/{ref}" in container["Names"]:
                return container
        raise errors.NotFound(f"No such container: {ref}")

    async def containers_list(self, query: ContainerListQuery) -> list[Json]:
        names = query.filters.get("name", [])
        found = [
            c
            for c in self.containers.values()
            if (query.all or c["State"] == "running") and (not names or any(n in c["Names"][0] for n in names))
        ]
        return found[: query.limit] if query.limit else found

    async def container_inspect(self, ref: str) -> Json:
        container = self._container(ref)
        return {"Id": container["Id"], "Name": container["Names"][0], "Config": {"Tty": False}}

    async def container_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        container = self._container(ref)
        service_id = container["Labels"].get("com.docker.swarm.service.id", "")
        task_id = container["Labels"].get("com.docker.swarm.task.id")
        async for message in self._follow_lines(service_id, options, task_id):
            yield message

    async def exec_create(self, container_ref: str, config: Json) -> str:
        container = self._container(container_ref)
        exec_id = new_container_id()
        self.execs[exec_id] = FakeExec(
            exec_id,
            container["Id"],
            list(config.get("Cmd") or []),
            attach_stdin=config.get("AttachStdin") is True,
            tty=config.get("Tty") is True,
        )
        return exec_id

    def _exec(self, exec_id: str) -> FakeExec:
        if exec_id not in self.execs:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return self.execs[exec_id]

    async def exec_start(self, exec_id: str, options: ExecStartOptions) -> FakeExecStream:
        session = self._exec(exec_id)
        if session.running:
            raise errors.Conflict(f"Error: Exec command {exec_id} is already running")
        if session.exit_code is not None:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        session.running = True
        stream = FakeExecStream(session)
        if options.detach:  # nobody reads the output: run it to the end in the background
            task = asyncio.create_task(_drain(stream))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return stream

    async def exec_inspect(self, exec_id: str) -> Json:
        session = self._exec(exec_id)
        return {
            "ID": exec_id,
            "ContainerID": session.container_id,
            "Running": session.running,
            "ExitCode": session.exit_code,
            "ProcessConfig": {"entrypoint": session.command[:1], "arguments": session.command[1:]},
        }

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self._exec(exec_id)

    # -- networks, secrets, configs -------------------------------------------------------------
    async def networks_list(self, filters: Filters) -> list[Json]:
        _check_filter_keys(filters, {"name", "id", "label", "driver", "scope", "type"})
        return [
            n
            for n in self.networks.values()
            if (not filters.get("name") or any(w in n["Name"] for w in filters["name"]))
            and _prefix_match(n["Id"], filters.get("id", []))
        ]

    async def network_create(self, request: Json) -> Json:
        name = request.get("Name", "")
        if any(n["Name"] == name for n in self.networks.values()):
            raise errors.Conflict(f"network with name {name} already exists")
        network_id = new_id()
        self.networks[network_id] = {"Id": network_id, "Name": name, "Driver": request.get("Driver")}
        return {"Id": network_id, "Warning": ""}

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json:
        for network in self.networks.values():
            if ref in (network["Id"], network["Name"]):
                return network
        raise errors.NotFound(f"network {ref} not found")

    async def network_remove(self, ref: str) -> None:
        network = await self.network_inspect(ref, None, False)
        del self.networks[network["Id"]]

    async def _create_named(self, table: dict[str, Json], kind: str, spec: Json) -> Json:
        self._manager()
        name = spec.get("Name", "")
        if any(o["Spec"].get("Name") == name for o in table.values()):
            raise errors.AlreadyExists(
                f"name conflicts with an existing object: {kind} {name} already exists", grpc=True
            )
        obj = self._new_object(spec)
        table[obj["ID"]] = obj
        return {"ID": obj["ID"]}

    def _list_named(self, table: dict[str, Json], filters: Filters) -> list[Json]:
        self._manager()
        _check_filter_keys(filters, _NAMED_FILTERS)
        return [
            o
            for o in table.values()
            if _prefix_match(o["Spec"].get("Name", ""), filters.get("name", []))
            and (not filters.get("names") or o["Spec"].get("Name") in filters["names"])
        ]

    async def secrets_list(self, filters: Filters) -> list[Json]:
        return [_without_data(s) for s in self._list_named(self.secrets, filters)]

    async def secret_create(self, spec: Json) -> Json:
        return await self._create_named(self.secrets, "secret", spec)

    async def secret_inspect(self, ref: str) -> Json:
        return _without_data(self._resolve(self.secrets, ref, "secret", ("Spec", "Name")))

    async def secret_update(self, ref: str, version: int, spec: Json) -> None:
        secret = self._resolve(self.secrets, ref, "secret", ("Spec", "Name"))
        self._bump(secret, version)
        secret["Spec"]["Labels"] = spec.get("Labels") or {}

    async def secret_remove(self, ref: str) -> None:
        del self.secrets[self._resolve(self.secrets, ref, "secret", ("Spec", "Name"))["ID"]]

    async def configs_list(self, filters: Filters) -> list[Json]:
        return self._list_named(self.configs, filters)

    async def config_create(self, spec: Json) -> Json:
        return await self._create_named(self.configs, "config", spec)

    async def config_inspect(self, ref: str) -> Json:
        return self._resolve(self.configs, ref, "config", ("Spec", "Name"))

    async def config_update(self, ref: str, version: int, spec: Json) -> None:
        config = await self.config_inspect(ref)
        self._bump(config, version)
        config["Spec"]["Labels"] = spec.get("Labels") or {}

    async def config_remove(self, ref: str) -> None:
        del self.configs[(await self.config_inspect(ref))["ID"]]

    # -- images: a real image store (in a temporary directory unless given one), so these routes are
    # tested against what shoald runs; only "which containers use an image" comes from the fake.
    def image_service(self) -> ImageService:
        if self.images is None:
            self._images_dir = tempfile.TemporaryDirectory(prefix="shoal-fake-images-")
            self.images = ImageService(Path(self._images_dir.name))
        return self.images

    def _image_users(self) -> Callable[[str], list[ImageUser]]:
        users: dict[str, list[ImageUser]] = {}
        for container in self.containers.values():
            with contextlib.suppress(errors.ShoalError):
                image_id = self.image_service().store.find(container["Image"]).id
                users.setdefault(image_id, []).append(ImageUser(container["Id"], container["State"] == "running"))
        return lambda image_id: users.get(image_id, [])

    async def images_list(self, filters: Filters) -> list[Json]:
        return await self.image_service().list(filters)

    async def image_inspect(self, ref: str) -> Json:
        return await self.image_service().inspect(ref)

    async def image_history(self, ref: str) -> list[Json]:
        return await self.image_service().history(ref)

    async def image_pull(self, ref: str, platform: str | None, registry_auth: str | None) -> AsyncIterator[Json]:
        return await self.image_service().pull(ref, platform, registry_auth)

    async def image_import(
        self, source: AsyncIterator[bytes], repo: str, tag: str, changes: list[str], message: str
    ) -> list[Json]:
        return list(await self.image_service().import_tar(source, repo, tag, changes, message))

    async def image_load(self, source: AsyncIterator[bytes], quiet: bool) -> list[Json]:
        return list(await self.image_service().load(source))

    async def image_save(self, refs: list[str]) -> AsyncIterator[bytes]:
        return await self.image_service().save(refs)

    async def image_tag(self, ref: str, repo: str, tag: str) -> None:
        await self.image_service().tag(ref, repo, tag or None)

    async def image_remove(self, ref: str, force: bool, noprune: bool) -> list[Json]:
        return list(await self.image_service().remove(ref, force, self._image_users()))

    async def images_prune(self, filters: Filters) -> Json:
        return await self.image_service().prune(filters, self._image_users())

    async def distribution_inspect(self, image: str, registry_auth: str | None) -> Json:
        return await self.image_service().distribution_inspect(image, registry_auth)

    async def auth(self, request: Json) -> Json:
        return await self.image_service().login(str(request.get("serveraddress") or ""), request)


async def _drain(stream: FakeExecStream) -> None:
    async for _ in stream.output():
        pass


def _as_backend(fake: FakeBackend) -> Backend:
    """Keeps the fake honest: mypy checks it against the protocol here."""
    return fake


def _without_data(secret: Json) -> Json:
    shown = copy.deepcopy(secret)
    shown["Spec"].pop("Data", None)
    return shown
