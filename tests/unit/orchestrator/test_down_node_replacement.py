"""A task whose node went Down is replaced at once, not after the restart delay.

Swarm holds such a replacement for the restart delay (5 s by default), as if the task had crashed. shoal
does not: the delay is there to slow a task that keeps failing, and a silent node says nothing about its
tasks; the node is only declared Down after the heartbeat grace, which already bounds how often a
flapping node can move work. Drained nodes' tasks move without the delay for the same reason."""

from __future__ import annotations

from shoal.api import states
from shoal.api.objects import NODES, TASKS
from shoal.planner import Planner
from shoal.testing.store_harness import StoreHarness


async def test_a_down_nodes_task_runs_elsewhere_without_the_restart_delay(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    a = await harness.add_node("a")
    await harness.add_node("b")
    service = await harness.add_service("web", replicas=2)  # the default restart policy: Delay 5 s
    await harness.settle(all_planners)
    lost = next(t for t in harness.live_tasks(service["ID"]) if t["NodeID"] == a["ID"])
    harness.clock.advance(1)  # the replacement is created after the task it replaces (creation order)

    await harness.edit(NODES, a["ID"], lambda n: n["Status"].update(State="down"))
    await harness.settle(all_planners)  # no clock advance: the delay never passes

    replacement = next(t for t in harness.live_tasks(service["ID"]) if t["Slot"] == lost["Slot"])
    assert replacement["ID"] != lost["ID"]
    assert replacement["NodeID"] not in ("", a["ID"])
    assert replacement["Status"]["State"] == states.RUNNING


async def test_a_task_that_failed_on_a_live_node_still_waits_the_restart_delay(
    harness: StoreHarness, all_planners: list[Planner]
) -> None:
    await harness.add_node("a")
    service = await harness.add_service("web", replicas=1)
    await harness.settle(all_planners)
    (task,) = harness.live_tasks(service["ID"])
    harness.clock.advance(1)
    await harness.set_task_state(task["ID"], states.FAILED, exit_code=1)
    await harness.settle(all_planners)

    (held,) = harness.live_tasks(service["ID"])
    assert held["ID"] != task["ID"]
    assert held["DesiredState"] == states.READY  # held back until the delay has passed
    harness.clock.advance(5)
    await harness.settle(all_planners)
    assert harness.get(TASKS, held["ID"])["Status"]["State"] == states.RUNNING
