"""The dispatcher on a FakeClock: a node whose heartbeats stop is marked down after 3 periods, but not
when the dispatcher itself was stalled; reported statuses never move a task backwards; a node's
assignment stream follows a restored snapshot."""

from __future__ import annotations

import asyncio

import pytest

from shoal.api import states
from shoal.api.dispatch import StatusUpdate
from shoal.api.objects import NODES, TASKS
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


async def turn(clock: FakeClock, seconds: float, steps: int = 1) -> None:
    """Move time in steps; after each, wait until the dispatcher's loop has done its work and sleeps
    on the clock again."""
    for _ in range(steps):
        clock.advance(seconds / steps)
        async with asyncio.timeout(5):
            while clock.sleepers == 0:
                await asyncio.sleep(0)


@pytest.fixture
async def setup() -> tuple[MemoryStore, FakeClock, Dispatcher]:
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    await store.update(lambda tx: tx.create(NODES, {"ID": "n1", "Spec": {}, "Status": {"State": "unknown"}}))
    await store.update(lambda tx: tx.create(TASKS, {"ID": "t1", "NodeID": "n1", "Status": {"State": "assigned"}}))
    return store, clock, Dispatcher(store, clock, heartbeat_period=5.0)


def node_state(store: MemoryStore) -> str:
    return str((store.view().get(NODES, "n1") or {})["Status"]["State"])


async def test_silent_node_goes_down_after_three_periods(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, clock, dispatcher = setup
    await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    assert node_state(store) == "ready"
    job = asyncio.create_task(dispatcher.run())
    await turn(clock, 14, steps=280)
    assert node_state(store) == "ready"
    await turn(clock, 2, steps=40)
    assert node_state(store) == "down"
    job.cancel()


async def test_a_stalled_dispatcher_does_not_blame_the_nodes(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, clock, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    job = asyncio.create_task(dispatcher.run())
    await turn(clock, 1, steps=20)
    await turn(clock, 60, steps=1)  # the whole process was stopped for a minute
    await turn(clock, 0.2, steps=4)
    assert node_state(store) == "ready"
    await dispatcher.heartbeat("n1", session.session_id)
    await turn(clock, 1, steps=20)
    assert node_state(store) == "ready"
    job.cancel()


async def test_statuses_only_move_forward(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, clock, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    job = asyncio.create_task(dispatcher.run())
    running = {"State": states.RUNNING, "Message": "started", "Timestamp": "t"}
    await dispatcher.update_status("n1", session.session_id, [StatusUpdate("t1", running)])
    await turn(clock, 0.2, steps=4)
    assert (store.view().get(TASKS, "t1") or {})["Status"]["State"] == states.RUNNING
    stale = {"State": states.STARTING, "Message": "starting", "Timestamp": "t"}
    await dispatcher.update_status("n1", session.session_id, [StatusUpdate("t1", stale)])
    await turn(clock, 0.2, steps=4)
    assert (store.view().get(TASKS, "t1") or {})["Status"]["State"] == states.RUNNING
    job.cancel()


async def test_assignments_follow_a_restored_snapshot(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, clock, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    leader = MemoryStore(InstantProposer(), clock)
    await leader.update(lambda tx: tx.create(TASKS, {"ID": "t2", "NodeID": "n1", "Status": {"State": "assigned"}}))
    stream = dispatcher.assignments("n1", session.session_id)
    async with asyncio.timeout(5):
        first = await anext(stream)
        assert set(first.tasks) == {"t1"}
        store.restore(leader.snapshot())  # the leader's state: t1 gone, t2 assigned here
        second = await anext(stream)
    assert set(second.tasks) == {"t2"}
    await stream.aclose()


async def test_a_new_leader_gives_unheard_nodes_twice_the_grace_then_marks_them_down() -> None:
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    await store.update(lambda tx: tx.create(NODES, {"ID": "n1", "Spec": {}, "Status": {"State": "ready"}}))
    await store.update(lambda tx: tx.create(NODES, {"ID": "n2", "Spec": {}, "Status": {"State": "ready"}}))
    dispatcher = Dispatcher(store, clock, heartbeat_period=5.0)  # a new leader's: it has heard from nobody
    job = asyncio.create_task(dispatcher.run())
    await turn(clock, 1, steps=20)
    session = await dispatcher.register("n2", {"Hostname": "h2"}, "10.0.0.2")  # n2 finds the new leader
    for _ in range(28):
        await dispatcher.heartbeat("n2", session.session_id)
        await turn(clock, 1, steps=20)
    assert node_state(store) == "ready"  # 29 s: still within 15 s + 15 s
    for _ in range(2):
        await dispatcher.heartbeat("n2", session.session_id)
        await turn(clock, 1, steps=20)
    assert node_state(store) == "down"
    assert (store.view().get(NODES, "n2") or {})["Status"]["State"] == "ready"
    job.cancel()


async def test_a_re_registration_that_changes_nothing_writes_nothing(
        setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    """An agent reconnecting (or finding a new leader) must not move the node's version: a client's
    `node update` carrying the version it just read would fail `update out of sequence`."""
    store, _, dispatcher = setup
    await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    version = (store.view().get(NODES, "n1") or {})["Version"]["Index"]
    await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    assert (store.view().get(NODES, "n1") or {})["Version"]["Index"] == version
    await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.9")  # a new address is a change
    assert (store.view().get(NODES, "n1") or {})["Version"]["Index"] > version


async def test_a_shorter_period_applies_to_a_node_only_once_it_was_told() -> None:
    """`swarm update --dispatcher-heartbeat 1s` after 60 s: a node told 60 s keeps its deadline until
    its next heartbeat's answer carries the new period (it was marked down at once before)."""
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    await store.update(lambda tx: tx.create(NODES, {"ID": "n1", "Spec": {}, "Status": {"State": "unknown"}}))
    period = [60.0]
    dispatcher = Dispatcher(store, clock, heartbeat_period=lambda: period[0])
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    assert session.heartbeat_period == 60.0
    job = asyncio.create_task(dispatcher.run())
    try:
        period[0] = 1.0
        await turn(clock, 20, steps=40)
        assert node_state(store) == "ready"  # told 60 s: due within 180 s, not 3 s
        assert await dispatcher.heartbeat("n1", session.session_id) == 1.0
        await turn(clock, 2, steps=20)
        assert node_state(store) == "ready"
        await turn(clock, 2, steps=20)
        assert node_state(store) == "down"  # now silent for more than 3 x 1 s
    finally:
        job.cancel()
