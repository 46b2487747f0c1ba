"""Raft membership over the cluster port: a manager (new, or a worker being promoted) asks the leader
to add it to the Raft group.

The leader first dials the joiner back at the address it advertised (a member nobody can reach would
only weaken the quorum), then proposes the member with a fresh random Raft id and waits until the
change is applied, and answers with that id and the member list. The joiner then starts its Raft node
with an empty log and no bootstrap; the leader catches it up with a snapshot and entries.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shoal.api import errors
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access
from shoal.rpc.leader import Leadership, serve_on_leader
from shoal.rpc.server import Caller, RpcServer

JOIN_PATH = "/raft/v1/join"
HEALTH_PATH = "/raft/v1/health"
PROBE_TIMEOUT = 5.0


class RaftGroup(Protocol):
    def members(self) -> dict[int, str]: ...

    async def remove_member(self, node_id: int) -> int: ...

    async def add_member(self, node_id: int, address: str) -> int: ...

    async def update_member(self, node_id: int, address: str) -> int: ...


class ManagerDirectory(Protocol):
    """Which Raft member a node is, kept in the replicated store with the node object."""

    def raft_id_of(self, node_id: str) -> int | None: ...

    async def record(self, node_id: str, raft_id: int, address: str) -> None: ...


def substitute_unspecified_host(address: str, remote: str) -> str:
    """A joiner that listens on 0.0.0.0 advertises that; the leader uses the address it saw instead."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise errors.InvalidArgument(f"invalid advertised address {address!r}: expected host:port")
    if host in ("", "0.0.0.0", "::", "[::]"):
        return f"{remote}:{port}"
    return address


@dataclass
class MembershipService:
    raft: RaftGroup
    directory: ManagerDirectory
    probe: Callable[[str], Awaitable[None]]

    def register(self, server: RpcServer, client: RpcClient, leadership: Leadership) -> None:
        serve_on_leader(server, client, leadership, JOIN_PATH, Access.MANAGER, self.join)
        serve_health(server)

    async def join(self, caller: Caller, body: Any) -> Any:
        assert caller.identity is not None  # Access.MANAGER admits only managers
        if not isinstance(body, dict) or not isinstance(body.get("addr"), str):
            raise errors.InvalidArgument("malformed raft join request: addr missing")
        proposed = body.get("raft_id")
        if not isinstance(proposed, int) or not 0 < proposed < 1 << 63:
            raise errors.InvalidArgument("malformed raft join request: raft_id must be a positive 63-bit id")
        address = substitute_unspecified_host(body["addr"], caller.remote)
        try:
            await self.probe(address)
        except errors.ShoalError as exc:
            raise errors.InvalidArgument(
                f"could not connect to prospective new cluster member using its advertised address: {exc}",
                grpc=True,
            ) from None
        node_id = caller.identity.node_id
        members = self.raft.members()
        known = self.directory.raft_id_of(node_id)
        if known is not None and known in members and known != proposed and body.get("replaces") == known:
            # A manager whose log was damaged rejoins as a new member (it may have forgotten a vote, so
            # it must not vote as its old self): its old member goes first.
            await self.raft.remove_member(known)
            members = self.raft.members()
        if known is not None and known in members:
            if known != proposed:
                raise errors.FailedPrecondition(
                    f"node {node_id} is already raft member {known:x}", grpc=True)
            # A member coming back (from another address): only its address changes.
            await self.directory.record(node_id, proposed, address)
            await self.raft.update_member(proposed, address)
        else:
            if proposed in members:
                raise errors.AlreadyExists(f"raft id {proposed:x} is taken", grpc=True)
            # Recorded first: once the member is added, every write needs the new member's vote too,
            # and it can only vote once this call has answered.
            await self.directory.record(node_id, proposed, address)
            await self.raft.add_member(proposed, address)
        return {"raft_id": proposed, "members": {str(k): v for k, v in self.raft.members().items()}}


def new_raft_id() -> int:
    """A random Raft member id (63 bits, never 0): a joining manager picks its own, so its Raft
    transport exists, with every cluster-port route, before the leader dials it back."""
    return secrets.randbits(63) or 1


def serve_health(server: RpcServer) -> None:
    """The route the leader dials back before adding a member."""

    async def health(caller: Caller, body: Any) -> Any:
        return "SERVING"

    server.unary(HEALTH_PATH, Access.MANAGER, health)


async def probe_manager(client: RpcClient, address: str) -> None:
    """Raise errors.Unavailable unless a manager answers on ``address``'s cluster port."""
    await client.call(address, HEALTH_PATH, None, timeout=PROBE_TIMEOUT)


async def join_raft(client: RpcClient, managers: list[str], advertise: str, raft_id: int,
                    replaces: int | None = None) -> dict[int, str]:
    """Ask the managers (in turn, until one answers) to add this manager as ``raft_id`` (instead of its
    old member ``replaces``, whose log it lost); the members."""
    last: errors.ShoalError = errors.Unavailable("no manager to join")
    body: dict[str, Any] = {"addr": advertise, "raft_id": raft_id}
    if replaces is not None:
        body["replaces"] = replaces
    for address in managers:
        try:
            reply = await client.call(address, JOIN_PATH, body, timeout=30.0)
        except errors.Unavailable as exc:
            last = exc
            continue
        return {int(k): str(v) for k, v in reply["members"].items()}
    raise last
