"""Random histories of user actions and faults; after each, every component settles and the cluster
matches what was asked: replicas per service, one task per eligible node for global services, nothing
out of date once updates finish, desired states never lowered."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shoal.api import states
from shoal.api.objects import NODES, SERVICES, TASKS, Obj
from shoal.node.manager_components import planners
from shoal.orchestrator.dirty import is_task_dirty
from shoal.store.watch import Event
from shoal.testing.store_harness import StoreHarness

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("scale"), st.integers(min_value=0, max_value=6)),
        st.tuples(st.just("image"), st.sampled_from(["v1", "v2", "v3"])),
        st.tuples(st.just("fail"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("node"), st.sampled_from(["down", "ready", "drain", "active", "pause"])),
        st.tuples(st.just("wait"), st.sampled_from([1, 6, 61])),
        st.tuples(st.just("failover"), st.none()),
        st.tuples(st.just("config"), st.tuples(st.sampled_from(["stop-first", "start-first"]), st.integers(0, 2))),
    ),
    max_size=8,
)


async def apply(harness: StoreHarness, action: tuple[str, Any], web: Obj, spare: Obj) -> None:
    kind, value = action
    if kind == "scale":
        await harness.edit(SERVICES, web["ID"], lambda s: s["Spec"]["Mode"]["Replicated"].update(Replicas=value))
    elif kind == "image":
        await harness.update_service_spec(
            web["ID"], lambda spec: spec["TaskTemplate"]["ContainerSpec"].update(Image=value)
        )
    elif kind == "fail":
        # A stable order (ids are random): web's slots first, then the global tasks by node name.
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in harness.view.objects(NODES)}
        running = sorted(
            (t for t in harness.tasks() if t["Status"]["State"] == states.RUNNING),
            key=lambda t: (t["ServiceID"] != web["ID"], t["Slot"], hostnames.get(t["NodeID"], "")),
        )
        if running:
            await harness.set_task_state(running[value % len(running)]["ID"], states.FAILED, exit_code=1)
    elif kind == "node":
        field = "Status" if value in ("down", "ready") else "Spec"
        key = "State" if field == "Status" else "Availability"
        await harness.edit(NODES, spare["ID"], lambda n: n[field].update({key: value}))
    elif kind == "config":
        order, parallelism = value
        config = {"Order": order, "Parallelism": parallelism, "FailureAction": "continue"}
        await harness.edit(SERVICES, web["ID"], lambda s: s["Spec"].update(UpdateConfig=config))
    else:
        harness.clock.advance(value)


def check(harness: StoreHarness, web: Obj, agent_svc: Obj) -> None:
    service = harness.get(SERVICES, web["ID"])
    live = harness.live_tasks(web["ID"])
    wanted = service["Spec"]["Mode"]["Replicated"]["Replicas"]
    assert len(live) == wanted
    assert sorted(t["Slot"] for t in live) == sorted(set(t["Slot"] for t in live))
    assert all(t["Status"]["State"] == states.RUNNING for t in live)
    nodes = {n["ID"]: n for n in harness.view.objects(NODES)}
    assert not any(is_task_dirty(service, t, nodes.get(t["NodeID"])) for t in live)
    eligible = {
        n["ID"] for n in nodes.values() if n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active"
    }
    per_node = Counter(t["NodeID"] for t in harness.live_tasks(agent_svc["ID"]))
    assert eligible <= set(per_node) and all(n == 1 for n in per_node.values())


@settings(max_examples=30, deadline=None)
@given(ACTIONS)
# Found by this test: an update back to a spec seen before must not mistake the earlier update's
# tasks (or their failures) for its own, even when no time passes between the updates.
@example([("image", "v2"), ("fail", 0), ("image", "v3"), ("image", "v2")])
def test_random_histories_converge(actions: list[tuple[str, Any]]) -> None:
    async def scenario() -> None:
        harness = StoreHarness()
        lowered: list[str] = []

        def watch_desired(event: Event) -> bool:
            if event.table == TASKS and event.old is not None:
                before, after = event.old.get("DesiredState"), event.obj.get("DesiredState")
                if states.rank(after) < states.rank(before):
                    lowered.append(event.obj["ID"])
            return False

        subscription = harness.store.watch(watch_desired)
        await harness.add_node("steady")
        spare = await harness.add_node("spare")
        web = await harness.add_service("web", replicas=3, restart={"Delay": SECONDS_1})
        agent_svc = await harness.add_service("agent", global_mode=True, restart={"Delay": 0})
        all_planners = planners()
        await harness.settle(all_planners)
        for action in actions:
            if action[0] == "failover":
                all_planners = planners()  # a new leader: the planners' memory is gone
            else:
                await apply(harness, action, web, spare)
            await harness.settle(all_planners, rounds=200)
        # Let every delay, monitor and held start run out, then everything must have converged.
        for _ in range(3):
            harness.clock.advance(61)
            await harness.settle(all_planners, rounds=200)
        check(harness, web, agent_svc)
        assert lowered == []
        subscription.close()

    asyncio.run(scenario())


SECONDS_1 = 1_000_000_000
