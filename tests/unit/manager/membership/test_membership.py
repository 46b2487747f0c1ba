"""Joining the Raft group over the cluster port, against an in-memory group and directory (the real
RaftNode's add/update are tested with it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.manager.membership import (
    MembershipService,
    join_raft,
    new_raft_id,
    probe_manager,
    substitute_unspecified_host,
)
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, PeerPolicy
from shoal.rpc.server import RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.testing.pki import TestCA


@dataclass
class Group:
    voters: dict[int, str] = field(default_factory=lambda: {1: "10.9.0.1:2377"})
    changes: list[tuple[str, int, str]] = field(default_factory=list)

    def members(self) -> dict[int, str]:
        return dict(self.voters)

    async def add_member(self, node_id: int, address: str) -> int:
        self.changes.append(("add", node_id, address))
        self.voters[node_id] = address
        return len(self.changes)

    async def remove_member(self, node_id: int) -> int:
        self.changes.append(("remove", node_id, self.voters.pop(node_id)))
        return len(self.changes)

    async def update_member(self, node_id: int, address: str) -> int:
        self.changes.append(("update", node_id, address))
        self.voters[node_id] = address
        return len(self.changes)


@dataclass
class Directory:
    raft_ids: dict[str, int] = field(default_factory=dict)

    def raft_id_of(self, node_id: str) -> int | None:
        return self.raft_ids.get(node_id)

    async def record(self, node_id: str, raft_id: int, address: str) -> None:
        self.raft_ids[node_id] = raft_id


@dataclass
class Leader:
    address: str
    group: Group
    directory: Directory
    ca: TestCA
    tmp: Path
    unreachable: set[str]

    def client(self, node_id: str, role: str = MANAGER_ROLE) -> RpcClient:
        files = self.ca.issue(node_id, role).write(self.tmp / node_id)
        return RpcClient(client_context(files.cert, files.key, files.ca))


class AlwaysLeader:
    def is_leader(self) -> bool:
        return True

    def leader_address(self) -> str | None:
        return None


@pytest.fixture
async def leader(tmp_path: Path) -> AsyncIterator[Leader]:
    ca = TestCA("c1")
    files = ca.issue("leader", MANAGER_ROLE).write(tmp_path / "leader")
    server = RpcServer(PeerPolicy("c1"))
    client = RpcClient(client_context(files.cert, files.key, files.ca))
    unreachable: set[str] = set()

    async def probe(address: str) -> None:
        if address in unreachable:
            raise errors.Unavailable(f"cannot reach {address}: refused")

    group, directory = Group(), Directory()
    MembershipService(group, directory, probe).register(server, client, AlwaysLeader())
    port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
    try:
        yield Leader(f"127.0.0.1:{port}", group, directory, ca, tmp_path, unreachable)
    finally:
        await server.close()
        await client.close()


async def test_a_new_manager_is_added_with_its_raft_id_and_gets_the_members(leader: Leader) -> None:
    client = leader.client("m2")
    raft_id = new_raft_id()
    try:
        members = await join_raft(client, ["127.0.0.1:9", leader.address], "0.0.0.0:2377", raft_id)
        with pytest.raises(errors.AlreadyExists, match="is taken"):
            await join_raft(leader.client("m3"), [leader.address], "127.0.0.7:2377", raft_id)
    finally:
        await client.close()
    assert members == {1: "10.9.0.1:2377", raft_id: "127.0.0.1:2377"}  # 0.0.0.0 became the address seen
    assert leader.directory.raft_ids == {"m2": raft_id}


async def test_a_returning_member_keeps_its_id_and_updates_its_address(leader: Leader) -> None:
    client = leader.client("m2")
    first = new_raft_id()
    try:
        await join_raft(client, [leader.address], "127.0.0.2:2377", first)
        members = await join_raft(client, [leader.address], "127.0.0.3:2377", first)
        with pytest.raises(errors.FailedPrecondition, match="already raft member"):
            await join_raft(client, [leader.address], "127.0.0.3:2377", new_raft_id())
    finally:
        await client.close()
    assert members[first] == "127.0.0.3:2377"
    assert [kind for kind, _, _ in leader.group.changes] == ["add", "update"]


async def test_an_unreachable_joiner_is_refused_and_nothing_changes(leader: Leader) -> None:
    leader.unreachable.add("127.0.0.5:2377")
    client = leader.client("m3")
    try:
        with pytest.raises(errors.InvalidArgument, match="could not connect to prospective new cluster member"):
            await join_raft(client, [leader.address], "127.0.0.5:2377", new_raft_id())
    finally:
        await client.close()
    assert leader.group.changes == [] and leader.directory.raft_ids == {}


async def test_a_worker_cannot_join_the_raft_group(leader: Leader) -> None:
    client = leader.client("w1", WORKER_ROLE)
    try:
        with pytest.raises(errors.Forbidden):
            await join_raft(client, [leader.address], "127.0.0.6:2377", new_raft_id())
        with pytest.raises(errors.Forbidden):
            await probe_manager(client, leader.address)
    finally:
        await client.close()
    assert leader.group.changes == []


def test_advertised_addresses_are_checked() -> None:
    assert substitute_unspecified_host("10.1.2.3:2377", "10.9.9.9") == "10.1.2.3:2377"
    assert substitute_unspecified_host(":2377", "10.9.9.9") == "10.9.9.9:2377"
    with pytest.raises(errors.InvalidArgument, match="expected host:port"):
        substitute_unspecified_host("10.1.2.3", "10.9.9.9")


async def test_a_manager_that_lost_its_log_rejoins_as_a_new_member(leader: Leader) -> None:
    client = leader.client("m2")
    old, new = new_raft_id(), new_raft_id()
    try:
        await join_raft(client, [leader.address], "127.0.0.2:2377", old)
        members = await join_raft(client, [leader.address], "127.0.0.2:2377", new, replaces=old)
    finally:
        await client.close()
    assert old not in members and members[new] == "127.0.0.2:2377"
    assert [kind for kind, _, _ in leader.group.changes] == ["add", "remove", "add"]
    assert leader.directory.raft_ids == {"m2": new}
