"""A follower whose store installs a leader's snapshot: what the node shows from its store (docker
events) catches up with the restored state, as it does after a transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from shoal.api.objects import SERVICES
from shoal.node.events import EventHub
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer

NODE = "node00000000000000000000a"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_store() -> MemoryStore:
    return MemoryStore(InstantProposer(), FakeClock())


async def test_events_report_what_a_restored_snapshot_changed() -> None:
    follower, leader = new_store(), new_store()
    await leader.update(lambda tx: tx.create(SERVICES, {"ID": "svc1", "Spec": {"Name": "web"}}))
    hub = EventHub()
    follow = asyncio.create_task(hub.follow_store(follower, NODE))
    try:
        async with asyncio.timeout(5):
            messages = hub.stream(EPOCH, None)
            while follower.watchers() == 0:  # the hub reports only what follows its subscription
                await asyncio.sleep(0)
            await follower.update(lambda tx: tx.create(SERVICES, {"ID": "old1", "Spec": {"Name": "old"}}))
            assert (await anext(messages))["Actor"]["ID"] == "old1"
            follower.restore(leader.snapshot())
            restored = [await anext(messages), await anext(messages)]
    finally:
        follow.cancel()
    seen = {(m["Type"], m["Action"], m["Actor"]["ID"], m["Actor"]["Attributes"]["name"]) for m in restored}
    assert seen == {("service", "remove", "old1", "old"), ("service", "create", "svc1", "web")}
