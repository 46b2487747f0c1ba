"""The manager role (as swarmkit's manager.go): it owns this node's Raft member and store, the
cluster-port server (Raft messages, the CA, Raft membership, the dispatcher, the control-API forward),
and, while this member leads, the leader-only loops: the dispatcher and every orchestration
component, started fresh in one task group each term and cancelled when leadership goes.

Followers serve reads from their own store; writes and the calls only the leader may serve are
forwarded to it with the caller's identity (shoal.rpc.leader)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.api import defaults, errors
from shoal.api.objects import CLUSTER, NODES, clone, dig
from shoal.base.clock import Clock
from shoal.ca.join import CAService
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.dispatcher.logbroker import LogBroker
from shoal.dispatcher.meshstream import MeshStreamService
from shoal.dispatcher.rpc_service import DispatcherService
from shoal.manager.membership import MembershipService, probe_manager
from shoal.node.cluster_records import RAFT_ID, StoreAuthority, StoreManagerDirectory, removed_checker
from shoal.node.consensus import Consensus
from shoal.node.manager_components import manager_loops
from shoal.node.supervise import Loops, run_while_leading
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access, PeerPolicy
from shoal.rpc.leader import NO_LEADER, serve_on_leader
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.store.changes import encode_changes
from shoal.store.memory import MemoryStore, Tx

log = logging.getLogger(__name__)
CONTROL_PATH = "/control/v1/call"
FORWARD_TIMEOUT = 60.0
APPLY_WAIT = 5.0  # at most this long a follower waits to have applied a forwarded write
ROLE_RETRY = 5.0
LOSS_OF_QUORUM = "can't remove member from the raft: this would result in a loss of quorum"
LEADER_POLL = 0.1
ControlHandler = Callable[[str, list[Any], dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ClusterTLS:
    """This node's certificate files for the cluster port (the key may be encrypted: autolock)."""

    cert: Path
    key: Path
    ca: Path
    password: bytes | None = None

    @classmethod
    def under(cls, swarm_dir: Path, password: bytes | None) -> ClusterTLS:
        certs = swarm_dir / "certificates"
        return cls(certs / "swarm-node.crt", certs / "swarm-node.key", certs / "swarm-root-ca.crt", password)

    def server(self) -> ssl.SSLContext:
        return server_context(self.cert, self.key, self.ca, self.password)

    def client(self) -> ssl.SSLContext:
        return client_context(self.cert, self.key, self.ca, self.password)


class Manager:
    def __init__(self, node_id: str, cluster_id: str, consensus: Consensus, clock: Clock, tls: ClusterTLS) -> None:
        self.node_id = node_id
        self.consensus = consensus
        self.store: MemoryStore = consensus.store
        self.raft = consensus.raft
        self.clock = clock
        self._tls = tls
        self._dispatcher: Dispatcher | None = None
        self._control: ControlHandler | None = None
        self.rpc = RpcServer(PeerPolicy(cluster_id, is_removed=removed_checker(self.store)))
        self.client = RpcClient(tls.client())
        consensus.transport.attach(self.rpc.app)
        CAService(StoreAuthority(self.store, cluster_id), clock.now).register(self.rpc, self.client, self)
        MembershipService(self.raft, StoreManagerDirectory(self.store),
                          lambda address: probe_manager(self.client, address)).register(self.rpc, self.client, self)
        DispatcherService(lambda: self._dispatcher, self, self.manager_addresses).register(self.rpc)
        self.logbroker = LogBroker(self.store)
        self.logbroker.register(self.rpc)
        MeshStreamService(self.store).register(self.rpc)
        serve_on_leader(self.rpc, self.client, self, CONTROL_PATH, Access.MANAGER, self._serve_control)

    # -- leadership (shoal.rpc.leader.Leadership)
    def is_leader(self) -> bool:
        return self.raft.is_leader()

    def leader_address(self) -> str | None:
        return self.raft.members().get(self.raft.leader_id)

    def manager_addresses(self) -> list[str]:
        return sorted(self.raft.members().values())

    def can_remove_member(self, raft_id: int) -> bool:
        """Whether the Raft group keeps a quorum of reachable members without this one (swarmkit's
        CanRemoveMember: the members left that this leader reaches, itself included, must be a majority
        of the smaller group)."""
        members = self.raft.members()
        if raft_id not in members:
            return True
        reachable = sum(1 for member in members if member != raft_id and self.raft_status(member)[1])
        return reachable >= (len(members) - 1) // 2 + 1

    def raft_status(self, raft_id: int) -> tuple[bool, bool]:
        """(leads, reachable) for a member, as this manager sees it (the leader sees them all)."""
        if raft_id == self.raft.node_id:
            return self.raft.leader_id == raft_id, True
        return self.raft.leader_id == raft_id, self.consensus.transport.is_active(raft_id)

    async def caught_up(self, node_id: str, timeout: float, message: str) -> None:
        """Wait until the leader has replicated the swarm to this new manager (the cluster object and
        its own node object are here), so that it answers cluster calls at once."""
        deadline = asyncio.get_running_loop().time() + timeout
        with self.store.watch(lambda _event: True) as changes:
            while True:
                view = self.store.view()
                if view.objects(CLUSTER) and view.get(NODES, node_id) is not None:
                    return
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise errors.Unavailable(message)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changes.get()

    # -- lifecycle
    async def listen(self, host: str, port: int) -> int:
        """Serve the cluster port (before Raft starts: peers and a joining leader dial us back)."""
        return await self.rpc.start(host, port, self._tls.server())

    async def run(self) -> None:
        await run_while_leading(self._leadership(), self._leader_loops, self.clock)

    async def stop(self) -> None:
        self._dispatcher = None
        await self.rpc.close()
        await self.client.close()
        await self.consensus.stop()

    def set_control_handler(self, handler: ControlHandler) -> None:
        """Where forwarded control-API calls run (the node's backend, on the leader)."""
        self._control = handler

    async def forward_control(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run a control-API call on the leader (this manager does not lead). If this manager stops
        following that leader meanwhile (cut off, or a new election), the call fails at once rather
        than waiting on a connection that may never answer; its outcome is then unknown."""
        leader_id, address = self.raft.leader_id, self.leader_address()
        if address is None:
            raise errors.Unavailable(NO_LEADER)
        body = {"method": method, "args": args, "kwargs": kwargs}
        call = asyncio.ensure_future(self.client.call(address, CONTROL_PATH, body, timeout=FORWARD_TIMEOUT))
        lost = asyncio.ensure_future(self._leader_changes(leader_id))
        try:
            done, _ = await asyncio.wait({call, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if call in done:
            reply = call.result()
            # Read your writes: answer once this manager has applied what the leader had when the call
            # returned, so a read that follows on this manager sees the write (a slow one still answers).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(APPLY_WAIT):
                    await self.raft.wait_applied(int(reply["applied"]))
            return reply["result"]
        call.cancel()
        raise errors.Unavailable(f"{NO_LEADER} (the leader changed while the call was on its way to it, so it "
                                 "may or may not have been applied)")

    async def _leader_changes(self, leader_id: int) -> None:
        while self.raft.leader_id == leader_id:
            await self.clock.sleep(LEADER_POLL)

    async def _serve_control(self, caller: Caller, body: Any) -> Any:
        if self._control is None:
            raise errors.Unavailable("this manager's control API is not ready yet")
        well_formed = (isinstance(body, dict) and isinstance(body.get("method"), str)
                       and isinstance(body.get("args"), list) and isinstance(body.get("kwargs"), dict))
        if not well_formed:
            raise errors.InvalidArgument("malformed control call")
        result = await self._control(body["method"], body["args"], body["kwargs"])
        # What the calling follower must have applied before it answers (read your writes).
        return {"result": result, "applied": self.raft.applied_index}

    async def _leadership(self) -> AsyncIterator[bool]:
        """True when this member leads with its store caught up (an entry of its own term applied
        through the store: the barrier), False when it stops leading."""
        queue = self.raft.subscribe()
        try:
            leading = False
            while True:
                if self.raft.is_leader() and not leading:
                    try:
                        await self.consensus.proposer.propose(encode_changes([]))
                    except errors.Unavailable:
                        pass
                    else:
                        leading = True
                        yield True
                elif not self.raft.is_leader() and leading:
                    leading = False
                    self._dispatcher = None
                    yield False
                await queue.get()
        finally:
            self.raft.unsubscribe(queue)

    def _heartbeat_period(self) -> float:
        """The cluster spec's dispatcher heartbeat, in seconds (read each time: updates apply at once)."""
        cluster = next(iter(self.store.view().objects(CLUSTER)), {})
        period = dig(cluster, "Spec", "Dispatcher", "HeartbeatPeriod") or defaults.HEARTBEAT_PERIOD
        return defaults.seconds(period)

    def _leader_loops(self) -> Loops:
        dispatcher = Dispatcher(self.store, self.clock, heartbeat_period=self._heartbeat_period)
        self._dispatcher = dispatcher
        return [("dispatcher", dispatcher.run), ("roles", self._reconcile_roles),
                *manager_loops(self.store, self.clock)]

    async def _reconcile_roles(self) -> None:
        """Leader loop (swarmkit's role manager): a manager node whose desired role became worker
        leaves the Raft group first (refused while that would lose quorum, and retried), and only then
        loses its Raft id, so its certificate renewal can never make a Raft member a worker. The
        leader itself hands leadership over first and lets the next leader demote it."""
        with self.store.watch(lambda event: event.table == NODES) as changes:
            while True:
                for node in self.store.view().objects(NODES):
                    raft_id = node.get(RAFT_ID)
                    if dig(node, "Spec", "Role") == "worker" and isinstance(raft_id, int):
                        await self._demote(str(node["ID"]), raft_id)
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # arrives as the watch yields, and this loop would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ROLE_RETRY):
                        await changes.get()

    async def _demote(self, node_id: str, raft_id: int) -> None:
        if raft_id == self.raft.node_id:
            others = [m for m in self.raft.members() if m != raft_id and self.raft_status(m)[1]]
            if others:
                log.info("demoted: handing leadership to %x first", others[0])
                await self.raft.transfer_leadership(others[0])
            return
        if not self.can_remove_member(raft_id):
            log.warning("cannot take node %s out of the Raft group yet: %s", node_id, LOSS_OF_QUORUM)
            return
        try:
            if raft_id in self.raft.members():
                await self.raft.remove_member(raft_id)
        except Exception as exc:  # e.g. it would lose quorum: retried on the next pass
            log.warning("cannot take node %s out of the Raft group yet: %s", node_id, exc)
            return

        def forget_raft_id(tx: Tx) -> None:
            current = tx.get(NODES, node_id)
            if current is not None and current.get(RAFT_ID) == raft_id:
                node = clone(current)
                node.pop(RAFT_ID, None)
                node.pop("ManagerStatus", None)
                tx.update(NODES, node)

        await self.store.update(forget_raft_id)

