"""A Node in one process (real Raft store on disk, FakeExecutor): the secrets on disk follow the cluster
object whichever path changed it, a restart with autolock stays locked, and only the current key
unlocks it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.api import errors
from shoal.api.objects import CLUSTER, clone
from shoal.base.clock import SystemClock
from shoal.ca.unlock_key import format_unlock_key, generate_raw_key, parse_unlock_key
from shoal.controlapi.cluster import autolock_key, the_cluster
from shoal.manager.wal.errors import WALError
from shoal.node import identity as ident
from shoal.node.config import DaemonConfig
from shoal.node.node import Node
from shoal.testing.fake_executor import FakeExecutor

INIT = {"AdvertiseAddr": "127.0.0.1", "ListenAddr": "127.0.0.1:0",
        "Spec": {"EncryptionConfig": {"AutoLockManagers": True}}}


def new_node(data_root: Path) -> Node:
    return Node(DaemonConfig(data_root=data_root, listen_addr="127.0.0.1:0"), SystemClock(), FakeExecutor(), None)


def opens_with(swarm_dir: Path, key: str | None) -> Callable[[], bool]:
    def check() -> bool:
        try:
            ident.load_secrets(swarm_dir, parse_unlock_key(key) if key else None, tidy=False)
        except ident.Locked:
            return False
        except (ValueError, WALError):  # read while the node re-wraps the files in another thread: not settled
            return False
        return True
    return check


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_key_changed_in_the_store_rewraps_and_a_restart_needs_it(tmp_path: Path) -> None:
    node = new_node(tmp_path)
    await node.start()
    await node.init_swarm(INIT)
    swarm = node.require_member()
    first = autolock_key(the_cluster(swarm.store.view()))
    swarm_dir = node.config.swarm_dir
    assert opens_with(swarm_dir, first)() and not opens_with(swarm_dir, None)()

    # A change that does not come through this node's API (as a replicated update would).
    second = format_unlock_key(generate_raw_key())

    def set_key(tx: object) -> None:
        cluster = clone(the_cluster(tx))  # type: ignore[arg-type]
        cluster["_UnlockKey"] = second
        tx.update(CLUSTER, cluster)  # type: ignore[attr-defined]

    await swarm.store.update(set_key)
    await eventually(lambda: opens_with(swarm_dir, second)() and not opens_with(swarm_dir, first)())
    await node.close()

    again = new_node(tmp_path)
    await again.start()
    try:
        assert again.swarm is None and again.locked is not None
        with pytest.raises(errors.SwarmLocked):
            again.require_manager()
        with pytest.raises(errors.InvalidUnlockKey):
            await again.unlock(first)
        with pytest.raises(errors.InvalidArgument, match="invalid key string"):
            await again.unlock("not a key")
        await again.unlock(second)
        assert the_cluster(again.require_manager().store.view())["ID"] == swarm.identity.cluster_id
        with pytest.raises(errors.NotLocked):
            await again.unlock(second)
    finally:
        await again.close()


async def test_without_autolock_a_restart_is_not_locked(tmp_path: Path) -> None:
    node = new_node(tmp_path)
    await node.start()
    await node.init_swarm({**INIT, "Spec": {}})
    assert opens_with(node.config.swarm_dir, None)()
    await node.close()
    again = new_node(tmp_path)
    await again.start()
    try:
        assert again.locked is None and again.swarm is not None
        with pytest.raises(errors.NotLocked):
            await again.unlock(format_unlock_key(generate_raw_key()))
    finally:
        await again.close()
