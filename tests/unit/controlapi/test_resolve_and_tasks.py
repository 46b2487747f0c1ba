"""Resolving what a client typed, and the task filters the CLI's progress display relies on."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.api.objects import SERVICES, TASKS, service_name
from shoal.controlapi.resolve import resolve
from shoal.controlapi.tasks import list_tasks
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer


@pytest.fixture
async def store() -> MemoryStore:
    store = MemoryStore(InstantProposer(), FakeClock())
    template = {"ContainerSpec": {"Image": "busybox"}}

    def seed(tx: object) -> None:
        for sid, name in (("abc111", "web"), ("abc222", "db"), ("xyz333", "abc111x")):
            tx.create(SERVICES, {"ID": sid, "Spec": {"Name": name, "TaskTemplate": template,  # type: ignore[attr-defined]
                                                      "Mode": {"Replicated": {"Replicas": 1}}}})
        tx.create(TASKS, {"ID": "t-old", "ServiceID": "abc111", "Slot": 1,  # type: ignore[attr-defined]
                          "Spec": {"ContainerSpec": {"Image": "old"}}, "DesiredState": "shutdown"})
        tx.create(TASKS, {"ID": "t-new", "ServiceID": "abc111", "Slot": 1,  # type: ignore[attr-defined]
                          "Spec": template, "DesiredState": "running"})

    await store.update(seed)
    return store


async def test_id_then_name_then_unique_prefix(store: MemoryStore) -> None:
    view = store.view()
    assert resolve(view, SERVICES, "abc111", "service", service_name)["ID"] == "abc111"
    assert resolve(view, SERVICES, "db", "service", service_name)["ID"] == "abc222"
    assert resolve(view, SERVICES, "xyz", "service", service_name)["ID"] == "xyz333"


async def test_ambiguous_prefix_is_refused(store: MemoryStore) -> None:
    with pytest.raises(errors.InvalidArgument, match="service abc is ambiguous \\(2 matches found\\)"):
        resolve(store.view(), SERVICES, "abc", "service", service_name)
    with pytest.raises(errors.NotFound, match="service nope not found"):
        resolve(store.view(), SERVICES, "nope", "service", service_name)


async def test_up_to_date_keeps_only_tasks_of_the_current_spec(store: MemoryStore) -> None:
    view = store.view()
    everything = list_tasks(view, {"service": ["web"]})
    fresh = list_tasks(view, {"service": ["web"], "_up-to-date": ["true"]})
    assert sorted(t["ID"] for t in everything) == ["t-new", "t-old"]
    assert [t["ID"] for t in fresh] == ["t-new"]
    assert [t["ID"] for t in list_tasks(view, {"desired-state": ["shutdown"]})] == ["t-old"]
    with pytest.raises(errors.InvalidArgument, match="Invalid filter 'bogus'"):
        list_tasks(view, {"bogus": ["1"]})
