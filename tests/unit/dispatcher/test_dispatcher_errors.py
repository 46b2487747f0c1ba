"""The dispatcher refuses bad calls with typed errors carrying swarmkit's texts (which map to 4xx, not
500), and a refused call changes nothing."""

from __future__ import annotations

import asyncio

import pytest

from shoal.api import errors, states
from shoal.api.dispatch import StatusUpdate
from shoal.api.objects import NODES, TASKS
from shoal.dispatcher.dispatcher import FLUSH_INTERVAL, Dispatcher
from shoal.engineapi.errors import status_for
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer

RUNNING = {"State": states.RUNNING, "Message": "started", "Timestamp": "t"}


@pytest.fixture
async def setup() -> tuple[MemoryStore, FakeClock, Dispatcher]:
    clock = FakeClock()
    store = MemoryStore(InstantProposer(), clock)
    await store.update(lambda tx: tx.create(NODES, {"ID": "n1", "Spec": {}, "Status": {"State": "unknown"}}))
    await store.update(lambda tx: tx.create(NODES, {"ID": "n2", "Spec": {}, "Status": {"State": "unknown"}}))
    await store.update(lambda tx: tx.create(TASKS, {"ID": "t1", "NodeID": "n1", "Status": {"State": "assigned"}}))
    await store.update(lambda tx: tx.create(TASKS, {"ID": "t2", "NodeID": "n2", "Status": {"State": "assigned"}}))
    return store, clock, Dispatcher(store, clock, heartbeat_period=5.0)


def refused(caught: pytest.ExceptionInfo[errors.ShoalError], category: type[errors.ShoalError], text: str,
            http: int) -> None:
    assert isinstance(caught.value, category)
    assert str(caught.value) == text
    assert status_for(caught.value) == http


async def test_an_unknown_node_cannot_register(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, _, dispatcher = setup
    before = store.last_index
    with pytest.raises(errors.ShoalError) as caught:
        await dispatcher.register("nope", {"Hostname": "h"}, "10.0.0.9")
    refused(caught, errors.NotFound, "rpc error: code = NotFound desc = node not found", 404)
    assert store.last_index == before


async def test_calls_without_a_session_are_refused(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    _, _, dispatcher = setup
    with pytest.raises(errors.ShoalError) as caught:
        await dispatcher.heartbeat("n1", "whatever")
    refused(caught, errors.NotFound, "rpc error: code = NotFound desc = node not registered", 404)


async def test_a_replaced_session_is_invalid(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    _, _, dispatcher = setup
    old = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")  # the agent registered again
    calls = [
        lambda: dispatcher.heartbeat("n1", old.session_id),
        lambda: dispatcher.update_status("n1", old.session_id, [StatusUpdate("t1", RUNNING)]),
        lambda: anext(dispatcher.assignments("n1", old.session_id)),
    ]
    for call in calls:
        with pytest.raises(errors.ShoalError) as caught:
            await call()
        refused(caught, errors.InvalidArgument, "rpc error: code = InvalidArgument desc = session invalid", 400)


def task_state(store: MemoryStore, task_id: str) -> str:
    return str((store.view().get(TASKS, task_id) or {})["Status"]["State"])


async def test_a_report_for_another_nodes_task_refuses_the_whole_call(
    setup: tuple[MemoryStore, FakeClock, Dispatcher],
) -> None:
    store, _, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    updates = [StatusUpdate("t1", RUNNING), StatusUpdate("t2", RUNNING)]
    with pytest.raises(errors.ShoalError) as caught:
        await dispatcher.update_status("n1", session.session_id, updates)
    refused(caught, errors.Forbidden,
            "rpc error: code = PermissionDenied desc = cannot update a task not assigned this node", 403)
    assert dispatcher.queued_reports() == 0
    assert [task_state(store, t) for t in ("t1", "t2")] == ["assigned"] * 2


async def test_an_unknown_state_is_refused(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, _, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    bogus = {"State": "exploded", "Message": "?", "Timestamp": "t"}
    with pytest.raises(errors.ShoalError) as caught:
        await dispatcher.update_status("n1", session.session_id, [StatusUpdate("t1", RUNNING),
                                                                  StatusUpdate("t1", bogus)])
    refused(caught, errors.InvalidArgument,
            "rpc error: code = InvalidArgument desc = task t1: invalid task state 'exploded'", 400)
    assert dispatcher.queued_reports() == 0
    assert task_state(store, "t1") == "assigned"


async def test_a_report_for_a_deleted_task_is_skipped(setup: tuple[MemoryStore, FakeClock, Dispatcher]) -> None:
    store, clock, dispatcher = setup
    session = await dispatcher.register("n1", {"Hostname": "h"}, "10.0.0.1")
    reports = [StatusUpdate("gone", RUNNING), StatusUpdate("t1", RUNNING)]
    await dispatcher.update_status("n1", session.session_id, reports)
    job = asyncio.create_task(dispatcher.run())
    try:
        async with asyncio.timeout(5):
            while task_state(store, "t1") != states.RUNNING:
                clock.advance(FLUSH_INTERVAL)
                await asyncio.sleep(0)
    finally:
        job.cancel()
