"""A node's lifecycle: inactive until `swarm init`, then a manager (store, dispatcher, orchestration
components) and a worker (agent, routing mesh) in one daemon. On restart an existing swarm is brought
back from the data root and running tasks are re-adopted; `swarm leave` stops and forgets it all.

With autolock the node's secrets are wrapped under the swarm's unlock key, so a restart leaves the node
locked: nothing of the swarm runs (its tasks keep running, untouched) until `swarm unlock` gives the
key. The wrapping follows the cluster object: autolock on, off, or a rotated key re-wraps them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from shoal.agent.agent import Agent
from shoal.api import errors
from shoal.api.objects import CLUSTER, NETWORKS, NODES, Obj
from shoal.base.clock import Clock
from shoal.base.ids import new_id
from shoal.ca import certs
from shoal.ca.unlock_key import parse_unlock_key
from shoal.controlapi.cluster import autolock_key, new_cluster, the_cluster
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.executor.base import CAP_TASK_ADDRESS, Executor, Purgeable
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.network.mesh import Mesh
from shoal.node import identity as ident
from shoal.node.config import DaemonConfig
from shoal.node.consensus import Consensus, open_consensus
from shoal.node.events import EventHub
from shoal.node.manager_components import manager_loops
from shoal.node.meshfeed import feed_mesh
from shoal.store.memory import MemoryStore, Tx
from shoal.store.watch import Commit

log = logging.getLogger(__name__)
CLUSTER_PORT = 2377
RESTART_BACKOFF_MIN = 0.5
RESTART_BACKOFF_MAX = 30.0
LoopFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Swarm:
    """The running parts of an active swarm membership."""

    identity: ident.NodeIdentity
    store: MemoryStore
    consensus: Consensus
    dispatcher: Dispatcher
    agent: Agent
    jobs: list[asyncio.Task[None]]
    secrets: ident.NodeSecrets
    unlock_key: bytes | None
    """The key the secrets are wrapped under on disk now (None: in the clear)."""


def detect_advertise_addr() -> str:
    """The address other hosts would reach us on: the source address of the default route."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for a UDP connect
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def ingress_network() -> Obj:
    return {
        "ID": new_id(),
        "Spec": {
            "Name": "ingress", "Labels": {}, "DriverConfiguration": {}, "Ingress": True,
            "IPAMOptions": {"Driver": {}}, "Scope": "swarm",
        },
        "DriverState": {"Name": "overlay", "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4096"}},
        "IPAMOptions": {"Driver": {"Name": "default"}, "Configs": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]},
    }


class Node:
    def __init__(self, config: DaemonConfig, clock: Clock, executor: Executor, mesh: Mesh | None) -> None:
        self.config = config
        self.clock = clock
        self.executor = executor
        self.mesh = mesh
        self.events = EventHub()
        self.swarm: Swarm | None = None
        self.locked: ident.NodeIdentity | None = None
        """Set while this manager waits for its unlock key (then ``swarm`` is None)."""
        self._lock = asyncio.Lock()
        self._wrap_lock = asyncio.Lock()

    # -- lifecycle
    async def start(self) -> None:
        found = ident.load(self.config.swarm_dir)
        if found is None:
            return
        try:
            secrets = await asyncio.to_thread(ident.load_secrets, self.config.swarm_dir, None)
        except ident.Locked:
            log.warning("swarm %s is locked: its manager starts once `docker swarm unlock` gives the key",
                        found.cluster_id)
            self.locked = found
            return
        log.info("rejoining swarm %s as node %s", found.cluster_id, found.node_id)
        await self._resume(found, secrets, None)

    async def unlock(self, key_text: Any) -> None:
        """`swarm unlock`: open the secrets with the key and bring the manager up."""
        async with self._lock:
            identity = self.locked
            if identity is None:
                if self.swarm is None:
                    raise errors.NotAManager()
                raise errors.NotLocked()
            raw = parse_unlock_key(key_text)
            try:
                secrets = await asyncio.to_thread(ident.load_secrets, self.config.swarm_dir, raw)
            except ident.Locked:
                raise errors.InvalidUnlockKey() from None
            log.info("swarm %s unlocked; rejoining as node %s", identity.cluster_id, identity.node_id)
            try:
                await self._resume(identity, secrets, raw)
            except errors.ShoalError:
                raise
            except Exception as exc:  # e.g. a damaged raft log: the node stays locked, the reason shown
                raise errors.Unknown(f"swarm component could not be started: {exc}") from exc
            self.locked = None

    async def _resume(self, identity: ident.NodeIdentity, secrets: ident.NodeSecrets,
                      unlock_key: bytes | None) -> None:
        swarm = await self._activate(identity, bootstrap=False, secrets=secrets, unlock_key=unlock_key)
        self.swarm = swarm
        self._start_loops(swarm)
        # A key change the node missed (a crash between the cluster update and the re-wrap).
        await self.sync_autolock()

    async def sync_autolock(self) -> None:
        """Wrap the secrets on disk as the cluster object says: under its unlock key with autolock on,
        in the clear with it off. Called after every cluster update, so that a rotated key is the one
        on disk before the rotation call returns."""
        async with self._wrap_lock:
            swarm = self.swarm
            if swarm is None:
                return
            key_text = autolock_key(the_cluster(swarm.store.view()))
            wanted = parse_unlock_key(key_text) if key_text else None
            if wanted == swarm.unlock_key:
                return
            await asyncio.to_thread(ident.store_secrets, self.config.swarm_dir, swarm.secrets, wanted)
            swarm.unlock_key = wanted
            log.info("manager secrets %s", "wrapped under the new unlock key" if wanted else "stored unwrapped")

    async def close(self) -> None:
        """Daemon shutdown: stop our loops, leave the workloads and the kernel mesh running."""
        if self.swarm is not None:
            await self._stop(self.swarm, remove_tasks=False)
            self.swarm = None
        if self.mesh is not None:
            await self.mesh.close(keep_kernel_rules=True)
        await self.executor.close()

    async def _follow_autolock(self, store: MemoryStore) -> None:
        """Re-wrap the secrets whenever the cluster object changes, whoever changed it (the API call
        also does it before answering; this catches every other path)."""
        with store.watch(lambda ev: ev.table == CLUSTER) as sub:
            while True:
                await self.sync_autolock()
                while not isinstance(await sub.get(), Commit):
                    pass

    def require_manager(self) -> Swarm:
        if self.swarm is None:
            if self.locked is not None:
                raise errors.SwarmLocked()
            raise errors.NotAManager()
        return self.swarm

    async def init_swarm(self, request: Obj) -> str:
        async with self._lock:
            if self.swarm is not None or self.locked is not None:
                raise errors.AlreadyInSwarm()
            if request.get("ForceNewCluster"):
                raise errors.NotImplementedYet("--force-new-cluster needs an existing swarm to recover")
            advertise = _host_part(request.get("AdvertiseAddr") or "") or detect_advertise_addr()
            listen = request.get("ListenAddr") or self.config.listen_addr
            availability = request.get("Availability") or "active"
            if availability not in ("active", "pause", "drain"):
                raise errors.InvalidArgument(f"invalid availability {availability!r}")
            now = self.clock.now()
            root = certs.create_root_ca(now)
            node_id, cluster_id = new_id(), new_id()
            node_cert = certs.issue_node_certificate(root, node_id, certs.ROLE_MANAGER, cluster_id, now)
            port = _port_part(listen) or CLUSTER_PORT
            raft_id = secrets.randbits(63) or 1
            identity = ident.NodeIdentity(node_id, cluster_id, "manager", advertise, listen, raft_id)
            cluster = new_cluster(cluster_id, request, root)
            key_text = autolock_key(cluster)
            unlock_key = parse_unlock_key(key_text) if key_text else None
            node_secrets = ident.NodeSecrets(node_cert.key_pem, KeyRing(DataKey.generate()))
            # Whatever an interrupted init or leave left behind is not a swarm (no state.json): start clean.
            ident.forget(self.config.swarm_dir)
            ident.save_certificates(self.config.swarm_dir, root.cert_pem, node_cert, node_secrets.data_keys, unlock_key)
            swarm = await self._activate(identity, bootstrap=True, secrets=node_secrets, unlock_key=unlock_key)

            def bootstrap(tx: Tx) -> None:
                tx.create(CLUSTER, cluster)
                tx.create(NETWORKS, ingress_network())
                tx.create(NODES, {
                    "ID": node_id,
                    "Spec": {"Labels": {}, "Role": "manager", "Availability": availability},
                    "Description": {"Hostname": self.config.node_name or socket.gethostname(),
                                    "TLSInfo": cluster["TLSInfo"]},
                    "Status": {"State": "unknown", "Addr": advertise},
                    "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": f"{advertise}:{port}"},
                })

            try:
                await swarm.store.update(bootstrap)
                ident.save_identity(self.config.swarm_dir, identity)
            except BaseException:
                await self._stop(swarm, remove_tasks=False)
                ident.forget(self.config.swarm_dir)
                raise
            self.swarm = swarm
            self._start_loops(swarm)
            return node_id

    async def leave(self, force: bool) -> None:
        async with self._lock:
            if self.locked is not None:
                await self._leave_locked(force)
                return
            if self.swarm is None:
                raise errors.Unavailable("This node is not part of a swarm")
            if not force:
                raise errors.Unavailable(
                    "You are attempting to leave the swarm on a node that is participating as a manager. "
                    "Removing the last manager erases all current state of the swarm. Use `--force` to "
                    "ignore this message."
                )
            swarm, self.swarm = self.swarm, None
            try:
                await self._stop(swarm, remove_tasks=True)
            finally:
                # Forgetting is what leaving means: even if a task could not be stopped, a restart
                # must not bring back the swarm the user left.
                ident.forget(self.config.swarm_dir)
                if self.mesh is not None:
                    await self.mesh.apply({})
                if isinstance(self.executor, Purgeable):
                    await self.executor.purge()  # what is left: tasks it could not stop, the node bridge

    async def _leave_locked(self, force: bool) -> None:
        """Leaving while locked: nothing of the swarm runs, so only the tasks and the state go."""
        if not force:
            raise errors.Unavailable(
                "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
            )
        self.locked = None
        ident.forget(self.config.swarm_dir)
        if self.mesh is not None:
            await self.mesh.apply({})
        if isinstance(self.executor, Purgeable):
            await self.executor.purge()

    # -- internals
    async def _activate(self, identity: ident.NodeIdentity, bootstrap: bool, *, secrets: ident.NodeSecrets,
                        unlock_key: bytes | None) -> Swarm:
        """Bring up the manager's store on Raft (replaying the log) and the worker's agent; on failure
        release what was started."""
        port = _port_part(identity.listen_addr) or CLUSTER_PORT
        address = f"{identity.advertise_addr}:{port}"
        consensus = open_consensus(
            self.config.swarm_dir, identity.raft_id, identity.cluster_id, address, self.clock,
            data_keys=secrets.data_keys, tls_key_password=ident.tls_password(unlock_key),
            repair=self.config.repair_raft_log,
        )
        try:
            await consensus.start(identity.raft_id, address, bootstrap)
        except BaseException:
            await consensus.stop()
            raise
        dispatcher = Dispatcher(consensus.store, self.clock)
        agent = Agent(identity.node_id, identity.advertise_addr, self.executor, dispatcher, self.clock)
        return Swarm(identity, consensus.store, consensus, dispatcher, agent, [], secrets, unlock_key)

    def _start_loops(self, swarm: Swarm) -> None:
        mesh = self.mesh
        loops: list[tuple[str, LoopFactory]] = [
            ("dispatcher", swarm.dispatcher.run),
            ("agent", swarm.agent.run),
            ("events", lambda: self.events.follow_store(swarm.store, swarm.identity.node_id)),
            ("autolock", lambda: self._follow_autolock(swarm.store)),
            *manager_loops(swarm.store, self.clock),
        ]
        if mesh is not None:
            # Tasks with an address of their own cannot bind host ports: the mesh routes those too.
            route_host_ports = self.executor.name == "process" and CAP_TASK_ADDRESS in self.executor.capabilities
            loops.append(("mesh", lambda: feed_mesh(swarm.store, mesh, swarm.identity.node_id, route_host_ports)))
        swarm.jobs = [
            asyncio.create_task(_supervised(name, factory, self.clock), name=name) for name, factory in loops
        ]

    async def _stop(self, swarm: Swarm, remove_tasks: bool) -> None:
        for job in swarm.jobs:
            job.cancel()
        for job in swarm.jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        if remove_tasks:
            await swarm.agent.remove_all()
        else:
            await swarm.agent.stop()
        await swarm.consensus.stop()


async def _supervised(name: str, factory: LoopFactory, clock: Clock) -> None:
    """Run a loop until cancelled, restarting it (with backoff) if it fails: a bug in one component
    must not leave the node looking healthy while that component is dead."""
    backoff = RESTART_BACKOFF_MIN
    while True:
        started = clock.monotonic()
        try:
            await factory()
            log.error("%s returned; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting it in %.1f s", name, backoff)
        if clock.monotonic() - started > RESTART_BACKOFF_MAX:
            backoff = RESTART_BACKOFF_MIN
        await clock.sleep(backoff)
        backoff = min(backoff * 2, RESTART_BACKOFF_MAX)


def _host_part(addr: str) -> str:
    if not addr:
        return ""
    host, sep, port = addr.rpartition(":")
    return host if sep and port.isdigit() else addr


def _port_part(addr: str) -> int:
    _, sep, port = addr.rpartition(":")
    return int(port) if sep and port.isdigit() else 0
