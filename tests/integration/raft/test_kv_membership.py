"""Membership changes between real kvserver processes: a new member joins a cluster whose log was
compacted, so it is caught up with a multi-megabyte snapshot streamed in chunks over the TLS
transport; then a founding member is removed and the cluster keeps committing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from shoal.testing.kvserver import KVClient, KVProcessCluster

BIG = "x" * 16_384  # 200 of these make a ~3 MB state: several 1 MiB snapshot chunks


async def _post(session: aiohttp.ClientSession, cluster: KVProcessCluster, node_id: int, path: str, body: Any) -> Any:
    async with session.post(f"http://{cluster.http_addrs[node_id]}{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _until(condition: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def test_joiner_is_caught_up_by_a_chunked_snapshot_and_a_member_can_leave(tmp_path: Path) -> None:
    cluster = KVProcessCluster(tmp_path, 3, tls=True, snapshot_interval=50)
    cluster.start_all()
    try:
        async with aiohttp.ClientSession() as session:
            leader = await cluster.wait_for_leader(session)
            client = KVClient(session, cluster.http_addrs, client_id=1, op_timeout=20.0)
            for i in range(200):
                assert (await client.write("put", f"k{i}", f"{i}:{BIG}")).ok
            status = await cluster.status(session, leader)
            assert status is not None and status["snapshot_index"] >= 150  # the log was compacted

            joiner = cluster.new_member()
            cluster.start(joiner)
            new_member = {"id": joiner, "address": cluster.cluster_addrs[joiner]}
            await _post(session, cluster, leader, "/members/add", new_member)

            async def joiner_caught_up() -> bool:
                joined = await cluster.status(session, joiner)
                return joined is not None and joined["applied"] >= status["applied"]

            await _until(joiner_caught_up)
            joined = await cluster.status(session, joiner)
            assert joined is not None
            assert joined["snapshot_index"] > 0, "the joiner should have been sent a snapshot"
            assert set(joined["members"]) == {"1", "2", "3", str(joiner)}
            read = await client.get("k123", member=joiner)
            assert read.ok and read.value == f"123:{BIG}"

            leaving = next(i for i in (1, 2, 3) if i != leader)
            answer = await _post(session, cluster, leader, "/members/remove", {"id": leaving})
            assert str(leaving) not in answer["members"]
            cluster.kill(leaving)
            assert (await client.write("put", "after-removal", "yes")).ok
            read = await client.get("after-removal", member=joiner)
            assert read.ok and read.value == "yes"
    finally:
        cluster.stop_all()
