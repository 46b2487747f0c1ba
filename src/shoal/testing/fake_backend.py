"""An in-memory Backend for HTTP-level tests of the Engine API front door.

It keeps real state (swarm membership, versioned services with optimistic concurrency, secrets,
configs, networks, exec sessions) and raises the same error categories a real node does, but
schedules nothing: tests put tasks, containers and log lines in place themselves. Exec commands are
interpreted, not run: `echo ARGS...`, `cat` (stdin to stdout; with a TTY, Ctrl-D ends it), `fail CODE
TEXT` (TEXT to stderr).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from shoal.api import errors
from shoal.base.ids import new_id
from shoal.controlapi.payloads import CONFIG, SECRET, check_refs
from shoal.controlapi.validate import check_service_networks
from shoal.engineapi.backend import (
    Backend,
    EventQuery,
    Filters,
    Json,
    LogMessage,
    LogOptions,
    SwarmUpdateFlags,
)
from shoal.images.removal import ImageUser
from shoal.images.service import ImageService
from shoal.testing.fake_containers import FakeContainerCalls
from shoal.testing.fake_core import (
    _NODE_FILTERS,
    _SERVICE_FILTERS,
    _TASK_FILTERS,
    _check_filter_keys,
    _labels_match,
    _prefix_match,
)
from shoal.testing.fake_networks import FakeNetworkCalls
from shoal.testing.fake_secrets import FakeSecretsConfigs


class FakeBackend(FakeSecretsConfigs, FakeNetworkCalls, FakeContainerCalls):
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
        check_service_networks(self._network_view(), spec)
        check_refs(SECRET, spec, self.secrets.get)
        check_refs(CONFIG, spec, self.configs.get)
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
        check_service_networks(self._network_view(), spec)
        check_refs(SECRET, spec, self.secrets.get)
        check_refs(CONFIG, spec, self.configs.get)
        self._bump(service, version)
        service["PreviousSpec"] = service["Spec"]
        service["Spec"] = spec
        return {"Warnings": None}

    async def service_remove(self, ref: str) -> None:
        service = self._resolve(self.services, ref, "service", ("Spec", "Name"))
        del self.services[service["ID"]]

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


def _as_backend(fake: FakeBackend) -> Backend:
    """Keeps the fake honest: mypy checks it against the protocol here."""
    return fake
