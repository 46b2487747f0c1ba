"""A node's lifecycle: inactive until `swarm init` or `swarm join`, then a member of a swarm: always a
worker (an agent holding one session with the leader's dispatcher, over the cluster port even when the
leader is this very node), and a manager too when its certificate says so (node.manager.Manager). On
restart the swarm is brought back from the data root and running tasks are re-adopted; `swarm leave`
stops and forgets it all.

With autolock a manager's secrets are wrapped under the swarm's unlock key, so a restart leaves it
locked: nothing of the swarm runs (its tasks keep running, untouched) until `swarm unlock` gives the
key. The wrapping follows the cluster object: autolock on, off, or a rotated key re-wraps them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from dataclasses import dataclass, replace
from typing import Any

from shoal.agent.agent import Agent
from shoal.agent.health import HealthBook
from shoal.agent.logpublisher import LogPublisher
from shoal.agent.remote_dispatcher import RemoteDispatcher
from shoal.allocator.networks import new_ingress_network
from shoal.allocator.nodesubnets import task_subnet, with_task_subnet
from shoal.api import errors
from shoal.api.objects import CLUSTER, NETWORKS, NODES, Obj, clone, dig
from shoal.base.clock import Clock
from shoal.base.ids import new_id
from shoal.ca import certs, csr
from shoal.ca import join as ca_join
from shoal.ca.unlock_key import parse_unlock_key
from shoal.controlapi.cluster import autolock_key, new_cluster
from shoal.executor.base import CAP_TASK_ADDRESS, Executor, Purgeable
from shoal.manager.membership import join_raft, new_raft_id
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.manager.wal.errors import WALCorrupted
from shoal.network.mesh import Mesh
from shoal.network.tasknet import TaskNetConfig, TaskNetError, adopt_node_subnet, forget_node_subnet
from shoal.node import identity as ident
from shoal.node import roles
from shoal.node.addresses import advertise_addr, split, with_port
from shoal.node.cluster_records import RAFT_ID
from shoal.node.config import DaemonConfig
from shoal.node.consensus import open_consensus
from shoal.node.events import EventHub
from shoal.node.manager import ClusterTLS, ControlHandler, Manager
from shoal.node.meshfeed import MeshFeed
from shoal.node.supervise import LoopFactory, Loops, supervised
from shoal.rpc.client import RpcClient
from shoal.store.memory import MemoryStore, Tx
from shoal.store.watch import Commit

log = logging.getLogger(__name__)
CLI_DEFAULT_LISTEN = "0.0.0.0:2377"  # what the docker CLI sends when --listen-addr is not given


@dataclass
class Swarm:
    """The running parts of an active swarm membership."""

    identity: ident.NodeIdentity
    agent: Agent
    dispatcher: RemoteDispatcher
    client: RpcClient
    manager: Manager | None
    jobs: list[asyncio.Task[None]]
    manager_jobs: list[asyncio.Task[None]]
    secrets: ident.NodeSecrets | None
    unlock_key: bytes | None
    """The key a manager's secrets are wrapped under on disk now (None: in the clear)."""

    @property
    def store(self) -> MemoryStore:
        if self.manager is None:
            raise errors.WorkerNotAManager()
        return self.manager.store


class Node:
    def __init__(self, config: DaemonConfig, clock: Clock, executor: Executor, mesh: Mesh | None) -> None:
        self.config = config
        self.clock = clock
        self.executor = executor
        self.mesh = mesh
        self.health = HealthBook()  # the agent's health verdicts, read by docker ps and inspect
        self._one_shots: set[asyncio.Task[None]] = set()  # short jobs started from callbacks, kept alive
        self.events = EventHub()
        self.swarm: Swarm | None = None
        self.locked: ident.NodeIdentity | None = None
        """Set while this manager waits for its unlock key (then ``swarm`` is None)."""
        self._role_change: asyncio.Task[None] | None = None
        self.control_handler: ControlHandler | None = None
        """Runs control-API calls other managers forward to this one (set by the node's backend)."""
        self._lock = asyncio.Lock()
        self._wrap_lock = asyncio.Lock()

    # -- lifecycle
    async def start(self) -> None:
        found = ident.load(self.config.swarm_dir)
        if found is None:
            return
        if not found.is_manager:
            log.info("rejoining swarm %s as worker %s", found.cluster_id, found.node_id)
            self.swarm = await self._become_member(found, manager=None, node_secrets=None, unlock_key=None)
            return
        try:
            node_secrets = await asyncio.to_thread(ident.load_secrets, self.config.swarm_dir, None)
        except ident.Locked:
            log.warning("swarm %s is locked: its manager starts once `docker swarm unlock` gives the key",
                        found.cluster_id)
            self.locked = found
            return
        log.info("rejoining swarm %s as manager %s", found.cluster_id, found.node_id)
        await self._resume_manager(found, node_secrets, None)

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
                node_secrets = await asyncio.to_thread(ident.load_secrets, self.config.swarm_dir, raw)
            except ident.Locked:
                raise errors.InvalidUnlockKey() from None
            log.info("swarm %s unlocked; rejoining as node %s", identity.cluster_id, identity.node_id)
            try:
                await self._resume_manager(identity, node_secrets, raw)
            except errors.ShoalError:
                raise
            except Exception as exc:  # e.g. a damaged raft log: the node stays locked, the reason shown
                raise errors.Unknown(f"swarm component could not be started: {exc}") from exc
            self.locked = None

    async def _resume_manager(self, identity: ident.NodeIdentity, node_secrets: ident.NodeSecrets,
                              unlock_key: bytes | None) -> None:
        try:
            manager = self.open_manager(identity, node_secrets, unlock_key)
        except WALCorrupted as exc:
            others = [m for m in identity.managers if m != identity.cluster_address]
            if not others or self.config.repair_raft_log:
                raise  # a lone manager has no one to rejoin from: the error names the way out
            log.warning("%s; rejoining the Raft group from the other managers as a new member instead", exc)
            identity, manager = await self._rejoin_with_fresh_log(identity, node_secrets, unlock_key, others)
        else:
            try:
                await manager.listen(*split(identity.listen_addr))
                await manager.consensus.restart(identity.raft_id)
            except BaseException:
                await manager.stop()
                raise
        self.swarm = await self._become_member(identity, manager, node_secrets, unlock_key)
        # A key change the node missed (a crash between the cluster update and the re-wrap).
        await self.sync_autolock()

    async def _rejoin_with_fresh_log(self, identity: ident.NodeIdentity, node_secrets: ident.NodeSecrets,
                                     unlock_key: bytes | None,
                                     others: list[str]) -> tuple[ident.NodeIdentity, Manager]:
        """A manager whose Raft log is damaged may have forgotten a vote, so it must not vote as its old
        member again: the damaged log is set aside, and the node joins as a new member (a new Raft id)
        that the leader adds in place of the old one and catches up with a snapshot."""
        raft_dir = ident.raft_dir(self.config.swarm_dir)
        aside = raft_dir.with_name(f"raft.damaged-{int(self.clock.now().timestamp())}")
        raft_dir.rename(aside)
        log.warning("the damaged raft log is kept at %s", aside)
        ident.dek_path(self.config.swarm_dir).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(ident.store_secrets, self.config.swarm_dir, node_secrets, unlock_key)
        fresh = replace(identity, raft_id=new_raft_id())
        manager = self.open_manager(fresh, node_secrets, unlock_key)
        try:
            await manager.listen(*split(fresh.listen_addr))
            members = await join_raft(manager.client, others, fresh.cluster_address, fresh.raft_id,
                                      replaces=identity.raft_id)
            await manager.consensus.join(members)
            await manager.caught_up(fresh.node_id, ca_join.JOIN_TIMEOUT, "the rejoining manager did not catch up")
        except BaseException:
            await manager.stop()
            raise
        fresh = replace(fresh, managers=tuple(sorted(members.values())))
        ident.save_identity(self.config.swarm_dir, fresh)
        return fresh, manager

    async def sync_autolock(self) -> None:
        """Wrap a manager's secrets on disk as the cluster object says: under its unlock key with
        autolock on, in the clear with it off. Called after every cluster update, so that a rotated key
        is the one on disk before the rotation call returns."""
        async with self._wrap_lock:
            swarm = self.swarm
            if swarm is None or swarm.manager is None or swarm.secrets is None:
                return
            clusters = swarm.manager.store.view().objects(CLUSTER)
            if not clusters:
                return  # a joining manager that has not caught up yet
            key_text = autolock_key(clusters[0])
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

    def require_member(self) -> Swarm:
        if self.swarm is None:
            if self.locked is not None:
                raise errors.SwarmLocked()
            raise errors.NotAManager()
        return self.swarm

    def require_manager(self) -> Manager:
        swarm = self.require_member()
        if swarm.manager is None:
            raise errors.WorkerNotAManager()
        return swarm.manager

    # -- init and join
    def _listen_addr(self, request: Obj) -> str:
        """The cluster port's address: the request's, unless the daemon was given its own
        (--listen-addr) and the request carries only the docker CLI's default."""
        asked = str(request.get("ListenAddr") or "")
        if self.config.listen_addr and (not asked or asked == CLI_DEFAULT_LISTEN):
            return self.config.listen_addr
        return asked or CLI_DEFAULT_LISTEN

    async def init_swarm(self, request: Obj) -> str:
        async with self._lock:
            if request.get("ForceNewCluster") and self.swarm is not None and self.swarm.manager is not None:
                return await self._force_new_cluster(self.swarm)
            if self.swarm is not None or self.locked is not None:
                raise errors.AlreadyInSwarm()
            listen = self._listen_addr(request)
            advertise = advertise_addr(request, listen)
            availability = request.get("Availability") or "active"
            if availability not in ca_join.AVAILABILITIES:
                raise errors.InvalidArgument(f"invalid availability {availability!r}")
            now = self.clock.now()
            root = certs.create_root_ca(now)
            node_id, cluster_id = new_id(), new_id()
            node_cert = certs.issue_node_certificate(root, node_id, certs.ROLE_MANAGER, cluster_id, now)
            raft_id = secrets.randbits(63) or 1
            cluster = new_cluster(cluster_id, request, root)
            key_text = autolock_key(cluster)
            unlock_key = parse_unlock_key(key_text) if key_text else None
            node_secrets = ident.NodeSecrets(node_cert.key_pem, KeyRing(DataKey.generate()))
            # Whatever an interrupted init or leave left behind is not a swarm (no state.json): start clean.
            ident.forget(self.config.swarm_dir)
            ident.save_certificates(self.config.swarm_dir, root.cert_pem, node_cert, node_secrets.data_keys,
                                    unlock_key)
            identity = ident.NodeIdentity(node_id, cluster_id, "manager", advertise, listen, raft_id)
            manager = self.open_manager(identity, node_secrets, unlock_key)
            try:
                port = await manager.listen(*split(listen))
                identity = replace(identity, listen_addr=f"{split(listen)[0]}:{port}")
                address = f"{advertise}:{port}"
                await manager.consensus.bootstrap(raft_id, address)

                def bootstrap(tx: Tx) -> None:
                    tx.create(CLUSTER, cluster)
                    tx.create(NETWORKS, new_ingress_network(tx))
                    tx.create(NODES, with_task_subnet(tx, {
                        "ID": node_id,
                        "Spec": {"Labels": {}, "Role": "manager", "Availability": availability},
                        "Description": {"Hostname": self.config.node_name or socket.gethostname(),
                                        "TLSInfo": cluster["TLSInfo"]},
                        "Status": {"State": "unknown", "Addr": advertise},
                        "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": address},
                        RAFT_ID: raft_id,
                    }))

                await manager.store.update(bootstrap)
                identity = replace(identity, managers=(address,))
                self.swarm = swarm = await self._become_member(identity, manager, node_secrets, unlock_key)
                ident.save_identity(self.config.swarm_dir, identity)
            except BaseException:
                if self.swarm is not None:
                    await self._stop(self.swarm, remove_tasks=False)
                    self.swarm = None
                else:
                    await manager.stop()
                ident.forget(self.config.swarm_dir)
                raise
            return swarm.identity.node_id

    async def _force_new_cluster(self, swarm: Swarm) -> str:
        """Recover a swarm that lost its quorum on this manager: a new one-member Raft group holding
        everything this manager had applied (services, tasks, nodes, secrets), as swarmkit's
        --force-new-cluster. The other managers are no longer members; they come back by joining or
        being promoted again. The workers and every task keep running throughout."""
        manager, identity = swarm.manager, swarm.identity
        assert manager is not None and swarm.secrets is not None
        state = manager.store.snapshot()
        await self.stop_manager(swarm)
        raft_dir = ident.raft_dir(self.config.swarm_dir)
        raft_dir.rename(raft_dir.with_name(f"raft.before-force-new-cluster-{int(self.clock.now().timestamp())}"))
        ident.dek_path(self.config.swarm_dir).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(ident.store_secrets, self.config.swarm_dir, swarm.secrets, swarm.unlock_key)
        fresh = replace(identity, raft_id=new_raft_id(), managers=(identity.cluster_address,))
        manager = self.open_manager(fresh, swarm.secrets, swarm.unlock_key)
        try:
            await manager.listen(*split(fresh.listen_addr))
            await manager.consensus.refound(fresh.raft_id, fresh.cluster_address, state)
            await manager.store.update(lambda tx: _only_member(tx, fresh.node_id, fresh.raft_id,
                                                               fresh.cluster_address))
        except BaseException:
            await manager.stop()
            raise
        swarm.manager, swarm.identity = manager, fresh
        self.start_manager_loops(swarm)
        ident.save_identity(self.config.swarm_dir, fresh)
        log.warning("forced a new cluster: this manager is the only member of its Raft group now")
        return fresh.node_id

    async def join_swarm(self, request: Obj) -> None:
        async with self._lock:
            if self.swarm is not None or self.locked is not None:
                raise errors.AlreadyInSwarm()
            remotes = [with_port(str(addr)) for addr in request.get("RemoteAddrs") or []]
            if not remotes:
                raise errors.InvalidArgument("at least 1 RemoteAddr is required to join")
            token = str(request.get("JoinToken") or "")
            availability = str(request.get("Availability") or "active")
            if availability not in ca_join.AVAILABILITIES:
                raise errors.InvalidArgument(f"invalid availability {availability!r}")
            listen = self._listen_addr(request)
            advertise = advertise_addr(request, listen)
            credentials = await _join_any(remotes, token, availability)
            cluster_id = csr.subject_cluster_id(credentials.cert_pem)
            ident.forget(self.config.swarm_dir)
            try:
                if credentials.role == certs.ROLE_MANAGER:
                    await self._join_as_manager(credentials, cluster_id, advertise, listen, remotes)
                else:
                    ident.save_certificates(self.config.swarm_dir, credentials.root_pem,
                                            certs.KeyPair(credentials.cert_pem, credentials.key_pem))
                    identity = ident.NodeIdentity(credentials.node_id, cluster_id, "worker", advertise, listen, 0,
                                                  tuple(remotes))
                    self.swarm = await self._become_member(identity, None, None, None)
                    ident.save_identity(self.config.swarm_dir, identity)
            except BaseException:
                if self.swarm is not None:
                    await self._stop(self.swarm, remove_tasks=False)
                    self.swarm = None
                ident.forget(self.config.swarm_dir)
                raise
            assert self.swarm is not None
            # As dockerd, answer once the node is Ready (its agent holds a session with the leader).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.swarm.agent.registered.wait(), ca_join.JOIN_TIMEOUT)
            log.info("joined swarm %s as %s %s", cluster_id, "manager" if credentials.role == certs.ROLE_MANAGER
                     else "worker", credentials.node_id)

    async def _join_as_manager(self, credentials: ca_join.Credentials, cluster_id: str, advertise: str,
                               listen: str, remotes: list[str]) -> None:
        node_secrets = ident.NodeSecrets(credentials.key_pem, KeyRing(DataKey.generate()))
        ident.save_certificates(self.config.swarm_dir, credentials.root_pem,
                                certs.KeyPair(credentials.cert_pem, credentials.key_pem), node_secrets.data_keys)
        host, port = split(listen)
        identity = ident.NodeIdentity(credentials.node_id, cluster_id, "manager", advertise, listen, new_raft_id())
        manager = self.open_manager(identity, node_secrets, None)
        try:
            # Every cluster-port route is up before the leader dials us back and adds us.
            port = await manager.listen(host, port)
            identity = replace(identity, listen_addr=f"{host}:{port}")
            members = await join_raft(manager.client, remotes, identity.cluster_address, identity.raft_id)
            await manager.consensus.join(members)
            await manager.caught_up(credentials.node_id, ca_join.JOIN_TIMEOUT, ca_join.JOIN_TIMEOUT_MESSAGE)
        except BaseException:
            await manager.stop()
            raise
        identity = replace(identity, managers=tuple(sorted(members.values())))
        self.swarm = await self._become_member(identity, manager, node_secrets, None)
        ident.save_identity(self.config.swarm_dir, identity)

    # -- leave
    async def leave(self, force: bool) -> None:
        async with self._lock:
            if self.locked is not None:
                await self._leave_locked(force)
                return
            if self.swarm is None:
                raise errors.Unavailable("This node is not part of a swarm")
            if self.swarm.manager is not None and not force:
                raise errors.Unavailable(_leave_warning(self.swarm.manager))
            swarm, self.swarm = self.swarm, None
            try:
                await self._stop(swarm, remove_tasks=True)
            finally:
                # Forgetting is what leaving means: even if a task could not be stopped, a restart
                # must not bring back the swarm the user left.
                await self._forget_swarm()

    async def _leave_locked(self, force: bool) -> None:
        """Leaving while locked: nothing of the swarm runs, so only the tasks and the state go."""
        if not force:
            raise errors.Unavailable(
                "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
            )
        self.locked = None
        await self._forget_swarm()

    async def _forget_swarm(self) -> None:
        """What leaving leaves behind: no swarm state, no mesh rules, no tasks, the task bridge back on
        the subnet it derives itself."""
        ident.forget(self.config.swarm_dir)
        if self.mesh is not None:
            await self.mesh.apply({})
        if isinstance(self.executor, Purgeable):
            await self.executor.purge()  # what is left: tasks it could not stop, the node bridge
        network = getattr(self.executor, "network", None)
        if isinstance(network, TaskNetConfig):
            await forget_node_subnet(network)

    # -- internals
    def open_manager(self, identity: ident.NodeIdentity, node_secrets: ident.NodeSecrets,
                      unlock_key: bytes | None) -> Manager:
        tls = ClusterTLS.under(self.config.swarm_dir, ident.tls_password(unlock_key))
        consensus = open_consensus(
            self.config.swarm_dir, identity.raft_id, identity.cluster_id, identity.cluster_address, self.clock,
            tls.client(),
            data_keys=node_secrets.data_keys, repair=self.config.repair_raft_log,
        )
        manager = Manager(identity.node_id, identity.cluster_id, consensus, self.clock, tls)
        manager.set_control_handler(self._serve_control)
        return manager

    async def _serve_control(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if self.control_handler is None:
            raise errors.Unavailable("this manager's control API is not ready yet")
        return await self.control_handler(method, args, kwargs)

    async def _become_member(self, identity: ident.NodeIdentity, manager: Manager | None,
                             node_secrets: ident.NodeSecrets | None, unlock_key: bytes | None) -> Swarm:
        """Start the worker half (and the manager's loops, if any) of a member whose Raft member, if
        it is a manager, already runs."""
        tls = ClusterTLS.under(self.config.swarm_dir, ident.tls_password(unlock_key))
        client = RpcClient(tls.client())
        managers = list(identity.managers) or ([identity.cluster_address] if manager is not None else [])
        if manager is not None:
            # Our own manager first: the agent reaches the leader through it.
            own = identity.cluster_address
            managers = [own, *(m for m in managers if m != own)]

        def remember_managers(addresses: list[str]) -> None:
            swarm = self.swarm
            if swarm is not None and swarm.identity.managers != tuple(addresses):
                swarm.identity = replace(swarm.identity, managers=tuple(addresses))
                ident.save_identity(self.config.swarm_dir, swarm.identity)

        dispatcher = RemoteDispatcher(client, managers, on_managers=remember_managers)
        agent = Agent(identity.node_id, identity.advertise_addr, self.executor, dispatcher, self.clock,
                      hostname=self.config.node_name, on_node=self._on_own_node, health_book=self.health)
        swarm = Swarm(identity, agent, dispatcher, client, manager, [], [], node_secrets, unlock_key)
        swarm.jobs = [self._spawn("agent", agent.run),
                      self._spawn("certificates", lambda: roles.keep_certificate(self))]

        def session_first() -> list[str]:
            """The managers, the one holding this node's dispatcher session first: its log broker
            asks this node for logs, and its store feeds the mesh (any manager can, if it is gone)."""
            leader = dispatcher.leader
            return [*([leader] if leader else []), *(m for m in dispatcher.managers if m != leader)]

        # Both read swarm.client at each dial: a renewed certificate (node/roles.py) replaces it.
        publisher = LogPublisher(lambda: swarm.client, session_first, self.executor, self.clock)
        swarm.jobs.append(self._spawn("logs", publisher.run))
        mesh = self.mesh
        if mesh is not None:
            # Tasks with an address of their own cannot bind host ports: the mesh routes those too.
            route_host_ports = (self.executor.name in ("process", "oci")
                                and CAP_TASK_ADDRESS in self.executor.capabilities)
            feed = MeshFeed(lambda: swarm.client, session_first, mesh, identity.node_id, route_host_ports, self.clock)
            swarm.jobs.append(self._spawn("mesh", feed.run))
        self.start_manager_loops(swarm)
        return swarm

    def _spawn(self, name: str, factory: LoopFactory) -> asyncio.Task[None]:
        return asyncio.create_task(supervised(name, factory, self.clock), name=name)

    def start_manager_loops(self, swarm: Swarm) -> None:
        manager = swarm.manager
        if manager is None:
            return
        store = manager.store
        loops: Loops = [
            ("manager", manager.run),
            ("events", lambda: self.events.follow_store(store, swarm.identity.node_id)),
            ("autolock", lambda: self._follow_autolock(store)),
        ]
        swarm.manager_jobs = [self._spawn(name, factory) for name, factory in loops]

    async def stop_manager(self, swarm: Swarm) -> None:
        await _cancel_all(swarm.manager_jobs)
        swarm.manager_jobs = []
        if swarm.manager is not None:
            await swarm.manager.stop()
            swarm.manager = None

    async def _stop(self, swarm: Swarm, remove_tasks: bool) -> None:
        if self._role_change is not None:
            await _cancel_all([self._role_change])
        await _cancel_all(swarm.jobs)
        if remove_tasks:
            await swarm.agent.remove_all()
        else:
            await swarm.agent.stop()
        await swarm.client.close()
        await self.stop_manager(swarm)

    # -- role changes (node promote / demote)
    async def _adopt_subnet(self, network: TaskNetConfig, subnet: str) -> None:
        """Move the task bridge to the subnet the managers gave this node (unique in the swarm). Done
        only while no task holds the bridge; every node object retries, so it happens once they go."""
        try:
            if await adopt_node_subnet(network, subnet):
                log.info("task bridge %s now on the swarm's subnet %s", network.bridge, subnet)
        except (OSError, TaskNetError):
            log.exception("adopting the node subnet %s failed; tried again with the next node object", subnet)

    def _on_own_node(self, node: Obj) -> None:
        """The managers sent this node's own object: follow a changed desired role. A demoted manager
        waits until the leader has taken it out of the Raft group (its Raft id is gone), so a worker
        certificate never goes to a Raft member."""
        swarm = self.swarm
        roles.notice_own_node(self, node)  # a root rotation asks for a new certificate or trust root
        network = getattr(self.executor, "network", None)  # process and oci executors: their task bridge
        subnet = task_subnet(node)
        if isinstance(network, TaskNetConfig) and subnet and subnet != str(network.subnet):
            adopting = asyncio.create_task(self._adopt_subnet(network, subnet), name="node-subnet")
            self._one_shots.add(adopting)
            adopting.add_done_callback(self._one_shots.discard)
        desired = dig(node, "Spec", "Role")
        if swarm is None or desired not in ("manager", "worker") or desired == swarm.identity.role:
            return
        if desired == "worker" and node.get(RAFT_ID) is not None:
            return
        if self._role_change is None or self._role_change.done():
            self._role_change = asyncio.create_task(self._change_role(desired), name="role-change")

    async def _change_role(self, desired: str) -> None:
        try:
            async with self._lock:
                swarm = self.swarm
                if swarm is None or swarm.identity.role == desired:
                    return
                await roles.change_role(self, swarm, desired)
        except Exception:
            log.exception("changing this node's role to %s failed; it is retried when the managers next "
                          "send the node", desired)


def _only_member(tx: Tx, node_id: str, raft_id: int, address: str) -> None:
    """After --force-new-cluster: this node is the one Raft member; the other managers are not."""
    for current in tx.objects(NODES):
        if current.get(RAFT_ID) is None and current["ID"] != node_id:
            continue
        node = clone(current)
        if current["ID"] == node_id:
            node[RAFT_ID] = raft_id
            node["ManagerStatus"] = {"Leader": True, "Reachability": "reachable", "Addr": address}
        else:
            node.pop(RAFT_ID, None)
            node["ManagerStatus"] = {**(node.get("ManagerStatus") or {}), "Reachability": "unreachable"}
        tx.update(NODES, node)


async def _cancel_all(jobs: list[asyncio.Task[None]]) -> None:
    for job in jobs:
        job.cancel()
    for job in jobs:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await job


async def _join_any(remotes: list[str], token: str, availability: str) -> ca_join.Credentials:
    """Join through the first of ``remotes`` that answers, within Swarm's join timeout overall."""
    deadline = asyncio.get_running_loop().time() + ca_join.JOIN_TIMEOUT
    last: errors.ShoalError = errors.Unavailable(ca_join.JOIN_TIMEOUT_MESSAGE)
    for remote in remotes:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        try:
            return await ca_join.join(remote, token, availability, timeout=remaining / len(remotes))
        except errors.Unavailable as exc:
            last = exc
    raise last


def _leave_warning(manager: Manager) -> str:
    """Swarm's refusal of `swarm leave` without --force on a manager, with the quorum arithmetic."""
    members = manager.raft.members()
    reachable = sum(1 for raft_id in members if manager.raft_status(raft_id)[1])
    unreachable = len(members) - reachable
    message = "You are attempting to leave the swarm on a node that is participating as a manager. "
    if reachable <= 1 and unreachable == 0:
        return message + "Removing the last manager erases all current state of the swarm. Use `--force` to ignore " \
            "this message."
    if reachable - 2 <= unreachable:  # the managers left could not form a quorum
        message += (f"Removing this node leaves {reachable - 1} managers out of {reachable + unreachable}. "
                    "Without a Raft quorum your swarm will be inaccessible. ")
    return message + ("The only way to restore a swarm that has lost consensus is to reinitialize it with "
                      "`--force-new-cluster`. Use `--force` to suppress this message.")


