"""Leader-only calls through any manager: the follower forwards once, the leader sees the original
caller's identity and applies the route's access rule to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shoal.api import errors
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import MANAGER_ROLE, WORKER_ROLE, Access, PeerPolicy
from shoal.rpc.leader import FORWARD_PREFIX, NO_LEADER, serve_on_leader
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.tls import client_context, server_context
from shoal.testing.pki import TestCA


@dataclass
class Flag:
    leader: bool
    address: str | None = None

    def is_leader(self) -> bool:
        return self.leader

    def leader_address(self) -> str | None:
        return self.address


@dataclass
class Pair:
    ca: TestCA
    tmp: Path
    leader: Flag
    follower: Flag
    leader_addr: str
    follower_addr: str
    served_by: list[str]

    def client(self, node_id: str, role: str) -> RpcClient:
        files = self.ca.issue(node_id, role).write(self.tmp / node_id)
        return RpcClient(client_context(files.cert, files.key, files.ca))


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    ca = TestCA("c1")
    served_by: list[str] = []
    servers, clients, flags, addrs = [], [], [], []
    for name, leads in (("leader", True), ("follower", False)):
        flag = Flag(leads)
        files = ca.issue(name, MANAGER_ROLE).write(tmp_path / name)
        server = RpcServer(PeerPolicy("c1"))
        client = RpcClient(client_context(files.cert, files.key, files.ca))

        async def whoami(caller: Caller, body: Any, name: str = name) -> Any:
            served_by.append(name)
            assert caller.identity is not None
            return [caller.identity.node_id, caller.identity.role, body]

        serve_on_leader(server, client, flag, "/who", Access.NODE, whoami)
        serve_on_leader(server, client, flag, "/control", Access.MANAGER, whoami)
        port = await server.start("127.0.0.1", 0, server_context(files.cert, files.key, files.ca))
        servers.append(server)
        clients.append(client)
        flags.append(flag)
        addrs.append(f"127.0.0.1:{port}")
    flags[1].address = addrs[0]
    try:
        yield Pair(ca, tmp_path, flags[0], flags[1], addrs[0], addrs[1], served_by)
    finally:
        for server in servers:
            await server.close()
        for client in clients:
            await client.close()


async def test_a_follower_forwards_with_the_original_identity(pair: Pair) -> None:
    worker = pair.client("w1", WORKER_ROLE)
    try:
        assert await worker.call(pair.follower_addr, "/who", 7) == ["w1", WORKER_ROLE, 7]
        assert await worker.call(pair.leader_addr, "/who", 8) == ["w1", WORKER_ROLE, 8]
    finally:
        await worker.close()
    assert pair.served_by == ["leader", "leader"]


async def test_the_leader_applies_the_routes_rule_to_the_original_caller(pair: Pair) -> None:
    worker = pair.client("w1", WORKER_ROLE)
    try:
        with pytest.raises(errors.Forbidden, match="may not call manager routes"):
            await worker.call(pair.leader_addr, "/control", 1)
        # The follower admits nothing the leader would refuse, and a worker cannot forge a forward.
        with pytest.raises(errors.Forbidden):
            await worker.call(pair.follower_addr, "/control", 1)
        with pytest.raises(errors.Forbidden):
            await worker.call(pair.leader_addr, FORWARD_PREFIX + "/who",
                              {"caller": {"remote": "x", "identity": ["m9", MANAGER_ROLE, "c1"]}, "body": 1})
    finally:
        await worker.close()
    assert pair.served_by == []


async def test_without_a_leader_the_call_fails_with_swarms_message(pair: Pair) -> None:
    pair.follower.address = None
    worker = pair.client("w1", WORKER_ROLE)
    try:
        with pytest.raises(errors.Unavailable, match="does not have a leader"):
            await worker.call(pair.follower_addr, "/who", 1)
    finally:
        await worker.close()
    assert NO_LEADER.startswith("The swarm does not have a leader")


async def test_a_forward_that_finds_leadership_moved_is_not_forwarded_again(pair: Pair) -> None:
    pair.leader.leader = False
    pair.leader.address = pair.follower_addr  # each thinks the other leads
    worker = pair.client("w1", WORKER_ROLE)
    try:
        with pytest.raises(errors.Unavailable, match="leadership moved"):
            await worker.call(pair.follower_addr, "/who", 1)
    finally:
        await worker.close()
    assert pair.served_by == []
