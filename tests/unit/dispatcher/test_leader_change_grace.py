"""A new leader at a short heartbeat (shoal's default 1 s: a silent node is Down after 3 s) still gives the
nodes it has not heard from yet the time an agent needs to find it after its old leader was cut off
(a call timeout, a retry delay, another call timeout): at least Swarm's default grace, 15 s, on top of
its own. Measured: with a cut-off leader, every node went Down 6 s after the new leader took over, while
their agents were still waiting out the old leader's calls (tests/cluster/test_leader_cut_off.py)."""

from __future__ import annotations

import asyncio

from shoal.api.objects import NODES
from shoal.dispatcher.dispatcher import LEADER_CHANGE_GRACE, Dispatcher
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer

PERIOD = 1.0


async def turn(clock: FakeClock, seconds: float, steps: int) -> None:
    """Move time in steps; after each, wait until the dispatcher's loop sleeps on the clock again."""
    for _ in range(steps):
        clock.advance(seconds / steps)
        async with asyncio.timeout(5):
            while clock.sleepers == 0:
                await asyncio.sleep(0)


def state(store: MemoryStore) -> str:
    return str((store.view().get(NODES, "n1") or {})["Status"]["State"])


async def test_a_new_leader_at_a_short_heartbeat_waits_long_enough_for_agents_to_find_it() -> None:
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    await store.update(lambda tx: tx.create(NODES, {"ID": "n1", "Spec": {}, "Status": {"State": "ready"}}))
    dispatcher = Dispatcher(store, clock, heartbeat_period=PERIOD)  # a new leader's: it has heard from nobody
    job = asyncio.create_task(dispatcher.run())
    try:
        await turn(clock, 11, steps=220)  # an agent still waiting out its old leader's call timeouts
        assert state(store) == "ready"
        await turn(clock, LEADER_CHANGE_GRACE + 3 * PERIOD - 11 + 0.5, steps=200)
        assert state(store) == "down"  # one that never comes back still goes Down
    finally:
        job.cancel()
