"""The task list's desired-state and runtime filters as dockerd reads them: any task state in any case,
empty values ignored, an unknown state refused with dockerd's text (a plain error: 500)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api import errors
from shoal.api.objects import TASKS
from shoal.controlapi.tasks import list_tasks
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


@pytest.fixture
async def store() -> MemoryStore:
    store = MemoryStore(InstantProposer(), FakeClock())

    def seed(tx: Any) -> None:
        for task_id, desired in (("t-run", "running"), ("t-job", "complete"), ("t-old", "shutdown")):
            tx.create(TASKS, {"ID": task_id, "ServiceID": "s", "Slot": 1, "DesiredState": desired,
                              "Spec": {"ContainerSpec": {"Image": "busybox"}}})

    await store.update(seed)
    return store


async def test_any_task_state_in_any_case(store: MemoryStore) -> None:
    def ids(values: list[str]) -> list[str]:
        return sorted(t["ID"] for t in list_tasks(store.view(), {"desired-state": values}))

    assert ids(["COMPLETE"]) == ["t-job"]
    assert ids(["Running", "shutdown"]) == ["t-old", "t-run"]
    assert ids(["failed"]) == []
    assert ids([""]) == ["t-job", "t-old", "t-run"]


async def test_unknown_desired_state_refused_as_dockerd(store: MemoryStore) -> None:
    with pytest.raises(errors.Unknown) as caught:
        list_tasks(store.view(), {"desired-state": ["bogus"]})
    assert str(caught.value) == "Invalid desired-state filter: 'bogus'"


async def test_runtime_filter(store: MemoryStore) -> None:
    assert len(list_tasks(store.view(), {"runtime": ["container"]})) == 3
    assert list_tasks(store.view(), {"runtime": ["plugin"]}) == []
