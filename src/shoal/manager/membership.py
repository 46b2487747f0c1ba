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
        server.unary(HEALTH_PATH, Access.MANAGER, self.health)

    async def health(self, caller: Caller, body: Any) -> Any:
        return "SERVING"

    async def join(self, caller: Caller, body: Any) -> Any:
        assert caller.identity is not None  # Access.MANAGER admits only managers
        if not isinstance(body, dict) or not isinstance(body.get("addr"), str):
            raise errors.InvalidArgument("malformed raft join request: addr missing")
        address = substitute_unspecified_host(body["addr"], caller.remote)
        try:
            await self.probe(address)
        except errors.ShoalError as exc:
            raise errors.InvalidArgument(
                f"could not connect to prospective new cluster member using its advertised address: {exc}",
                grpc=True,
            ) from None
        node_id = caller.identity.node_id
        raft_id = self.directory.raft_id_of(node_id)
        if raft_id is not None and raft_id in self.raft.members():
            # A member coming back (from another address): only its address changes.
            await self.raft.update_member(raft_id, address)
        else:
            raft_id = self._fresh_id()
            await self.raft.add_member(raft_id, address)
        await self.directory.record(node_id, raft_id, address)
        return {"raft_id": raft_id, "members": {str(k): v for k, v in self.raft.members().items()}}

    def _fresh_id(self) -> int:
        taken = self.raft.members()
        while True:
            candidate = secrets.randbits(63)
            if candidate and candidate not in taken:
                return candidate


async def probe_manager(client: RpcClient, address: str) -> None:
    """Raise errors.Unavailable unless a manager answers on ``address``'s cluster port."""
    await client.call(address, HEALTH_PATH, None, timeout=PROBE_TIMEOUT)


async def join_raft(client: RpcClient, managers: list[str], advertise: str) -> tuple[int, dict[int, str]]:
    """Ask the managers (in turn, until one answers) to add this manager; (raft id, members)."""
    last: errors.ShoalError = errors.Unavailable("no manager to join")
    for address in managers:
        try:
            reply = await client.call(address, JOIN_PATH, {"addr": advertise}, timeout=30.0)
        except errors.Unavailable as exc:
            last = exc
            continue
        members = {int(k): str(v) for k, v in reply["members"].items()}
        return int(reply["raft_id"]), members
    raise last
