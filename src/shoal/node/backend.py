"""The Engine API's Backend, implemented by this daemon: calls are checked against the node's swarm
state and handed to controlapi (cluster objects) or to LocalTasks (this node's containers). The kinds
of object with calls of their own live in the mixins NodeBackend is composed of (backend_*.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

from shoal.api import errors
from shoal.api.objects import CLUSTER, NODES, dig
from shoal.controlapi.cluster import public_view
from shoal.controlapi.defaults import without_registry_auth
from shoal.controlapi.nodes import find_node
from shoal.controlapi.tasks import find_task, list_tasks
from shoal.engineapi.backend import ContainerListQuery, EventQuery, Filters, SwarmUpdateFlags
from shoal.images.removal import ImageUser
from shoal.images.service import ImageService
from shoal.node import system
from shoal.node.backend_base import Json, on_leader
from shoal.node.backend_containers import ContainerCalls
from shoal.node.backend_logs import LogCalls
from shoal.node.backend_networks import NetworkCalls
from shoal.node.backend_secrets import SecretsConfigsCalls
from shoal.node.cluster_records import RAFT_ID, with_manager_status
from shoal.node.engine_images import EngineImages
from shoal.node.events import event_matches
from shoal.node.local_tasks import LocalTasks
from shoal.node.manager import LOSS_OF_QUORUM
from shoal.node.node import Node


class NodeBackend(SecretsConfigsCalls, NetworkCalls, ContainerCalls, LogCalls):
    def __init__(self, node: Node, images: ImageService | EngineImages | None = None) -> None:
        self._node = node
        self._images = images
        self._local = LocalTasks(node.executor, health=node.health)
        self._daemon_id = secrets.token_hex(16).upper()
        node.control_handler = self._serve_forwarded

    # -- system
    async def version(self) -> Json:
        return system.version_body()

    async def info(self) -> Json:
        containers = await self._local.list(ContainerListQuery(all=True))
        return system.info_body(
            node_name=self._node.config.node_name, data_root=str(self._node.config.data_root),
            executor=self._node.executor.name, containers=containers, swarm=self._swarm_info(),
            daemon_id=self._daemon_id,
        )

    def _swarm_info(self) -> Json:
        swarm = self._node.swarm
        if self._node.locked is not None:
            return system.locked_swarm(self._node.locked.advertise_addr, errors.SWARM_LOCKED)
        if swarm is None:
            return dict(system.INACTIVE_SWARM)
        info: Json = {
            "NodeID": swarm.identity.node_id,
            "NodeAddr": swarm.identity.advertise_addr,
            "LocalNodeState": "active",
            "ControlAvailable": swarm.manager is not None,
            "Error": "",
            "RemoteManagers": [{"NodeID": "", "Addr": addr} for addr in swarm.dispatcher.managers],
            "Nodes": 0,
            "Managers": 0,
        }
        if swarm.manager is None:
            return info
        view = swarm.manager.store.view()
        nodes = view.objects(NODES)
        managers = [n for n in nodes if dig(n, "Spec", "Role") == "manager" and dig(n, "ManagerStatus", "Addr")]
        info.update({
            "RemoteManagers": [{"NodeID": m["ID"], "Addr": dig(m, "ManagerStatus", "Addr")} for m in managers],
            "Nodes": len(nodes),
            "Managers": len(managers),
        })
        clusters = view.objects(CLUSTER)
        if clusters:  # a manager that just joined may not have it replicated yet
            cluster = public_view(clusters[0])
            cluster.pop("JoinTokens", None)
            info["Cluster"] = cluster
        return info

    async def swarm_status(self) -> str:
        if self._node.locked is not None:
            return "locked"
        swarm = self._node.swarm
        if swarm is None:
            return "inactive"
        return "active/manager" if swarm.manager is not None else "active/worker"

    def events(self, query: EventQuery) -> AsyncIterator[Json]:
        return self._events(query)

    async def _events(self, query: EventQuery) -> AsyncIterator[Json]:
        async for message in self._node.events.stream(query.since, query.until):
            if event_matches(message, query.filters):
                yield message

    # -- swarm
    async def swarm_init(self, request: Json) -> str:
        return await self._node.init_swarm(request)

    async def swarm_join(self, request: Json) -> None:
        await self._node.join_swarm(request)

    async def swarm_leave(self, force: bool) -> None:
        await self._node.leave(force)

    async def swarm_inspect(self) -> Json:
        return self._cluster().inspect()

    @on_leader
    async def swarm_update(self, spec: Json, version: int, flags: SwarmUpdateFlags) -> None:
        await self._cluster().update(
            spec, version, flags.rotate_worker_token, flags.rotate_manager_token, flags.rotate_manager_unlock_key
        )
        # Re-wrap this manager's secrets before answering: once `unlock-key --rotate` or
        # `update --autolock` returns, a restart needs (or no longer needs) the key it shows.
        await self._node.sync_autolock()

    async def swarm_unlock_key(self) -> Json:
        return {"UnlockKey": self._cluster().unlock_key()}

    async def swarm_unlock(self, request: Json) -> None:
        await self._node.unlock(request.get("UnlockKey", ""))

    # -- nodes
    def _shown(self, node: Json) -> Json:
        return with_manager_status(node, self._node.require_manager().raft_status)

    async def nodes_list(self, filters: Filters) -> list[Json]:
        return await self._nodes_list(filters)

    @on_leader
    async def _nodes_list(self, filters: Filters) -> list[Json]:
        return [self._shown(node) for node in self._nodes().list(filters)]

    async def node_inspect(self, ref: str) -> Json:
        return await self._node_inspect(ref)

    @on_leader
    async def _node_inspect(self, ref: str) -> Json:
        return self._shown(self._nodes().inspect(ref))

    async def node_update(self, ref: str, version: int, spec: Json) -> None:
        await self._node_update(ref, version, spec)

    @on_leader
    async def _node_update(self, ref: str, version: int, spec: Json) -> None:
        current = find_node(self._store().view(), ref)
        raft_id = current.get(RAFT_ID)
        demoting = str(spec.get("Role") or "").lower() == "worker"
        if demoting and isinstance(raft_id, int) and not self._node.require_manager().can_remove_member(raft_id):
            raise errors.FailedPrecondition(LOSS_OF_QUORUM, grpc=True)  # swarmkit refuses it up front
        await self._nodes().update(ref, version, spec)

    async def node_remove(self, ref: str, force: bool) -> None:
        await self._node_remove(ref, force)

    @on_leader
    async def _node_remove(self, ref: str, force: bool) -> None:
        await self._nodes().remove(ref, force)

    # -- services
    async def services_list(self, filters: Filters, status: bool) -> list[Json]:
        return [without_registry_auth(s) for s in self._services().list(filters, status)]

    @on_leader
    async def service_create(self, spec: Json, registry_auth: str | None) -> Json:
        return await self._services().create(spec, registry_auth)

    async def service_inspect(self, ref: str, insert_defaults: bool) -> Json:
        return without_registry_auth(self._services().inspect(ref, insert_defaults))

    @on_leader
    async def service_update(self, ref: str, version: int, spec: Json, registry_auth_from: str, rollback: str,
                             registry_auth: str | None) -> Json:
        return await self._services().update(ref, version, spec, rollback == "previous", registry_auth,
                                             registry_auth_from)

    @on_leader
    async def service_remove(self, ref: str) -> None:
        await self._services().remove(ref)

    # -- tasks
    async def tasks_list(self, filters: Filters) -> list[Json]:
        store = self._store()
        return [without_registry_auth(t) for t in list_tasks(store.view(), filters)]

    async def task_inspect(self, ref: str) -> Json:
        store = self._store()
        return without_registry_auth(find_task(store.view(), ref))

    # -- images, distribution, auth: the node's image store, or the local engine's (docker executor)
    def _image_store(self) -> ImageService:
        if not isinstance(self._images, ImageService):
            raise errors.NotImplementedYet(f"image calls are not served with the {self._node.executor.name} executor")
        return self._images

    def _image_calls(self) -> ImageService | EngineImages:
        return self._image_store() if self._images is None else self._images

    async def _image_users(self) -> Callable[[str], list[ImageUser]]:
        """Which of this node's task containers use each image (docker rmi refuses while one does)."""
        images = self._image_store()
        users: dict[str, list[ImageUser]] = {}
        for row in await self._local.list(ContainerListQuery(all=True)):
            try:
                image_id = images.store.find(str(row.get("Image", ""))).id
            except errors.ShoalError:
                continue  # its image is gone or never came: it holds nothing
            users.setdefault(image_id, []).append(ImageUser(str(row["Id"]), row.get("State") == "running"))
        return lambda image_id: users.get(image_id, [])

    async def images_list(self, filters: Filters) -> list[Json]:
        return await self._image_calls().list(filters)

    async def image_inspect(self, ref: str) -> Json:
        return await self._image_calls().inspect(ref)

    async def image_history(self, ref: str) -> list[Json]:
        return await self._image_calls().history(ref)

    async def image_pull(self, ref: str, platform: str | None, registry_auth: str | None) -> AsyncIterator[Json]:
        return await self._image_calls().pull(ref, platform, registry_auth)

    async def image_import(self, source: AsyncIterator[bytes], repo: str, tag: str, changes: list[str],
                           message: str) -> list[Json]:
        return list(await self._image_calls().import_tar(source, repo, tag, changes, message))

    async def image_load(self, source: AsyncIterator[bytes], quiet: bool) -> list[Json]:
        if isinstance(self._images, EngineImages):
            return await self._images.load(source, quiet)
        return list(await self._image_store().load(source))

    async def image_save(self, refs: list[str]) -> AsyncIterator[bytes]:
        return await self._image_calls().save(refs)

    async def image_tag(self, ref: str, repo: str, tag: str) -> None:
        await self._image_calls().tag(ref, repo, tag or None)

    async def image_remove(self, ref: str, force: bool, noprune: bool) -> list[Json]:
        if isinstance(self._images, EngineImages):
            return await self._images.remove(ref, force, noprune)  # the engine knows its containers
        # noprune keeps untagged parent images; shoal's images have no parents (nothing is built here)
        in_use = await self._image_users()
        return list(await self._image_store().remove(ref, force, in_use))

    async def images_prune(self, filters: Filters) -> Json:
        if isinstance(self._images, EngineImages):
            return await self._images.prune(filters)
        in_use = await self._image_users()
        return await self._image_store().prune(filters, in_use)

    async def distribution_inspect(self, image: str, registry_auth: str | None) -> Json:
        return await self._image_calls().distribution_inspect(image, registry_auth)

    async def auth(self, request: Json) -> Json:
        if isinstance(self._images, EngineImages):
            return await self._images.login(request)
        return await self._image_store().login(str(request.get("serveraddress") or ""), request)
