"""is_task_dirty: what makes a task out of date with its service."""

from __future__ import annotations

from datetime import UTC, datetime

from shoal.api.objects import Obj, clone
from shoal.orchestrator.dirty import is_task_dirty
from shoal.orchestrator.task import new_task
from shoal.testing.store_harness import node_object, service_spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def service(**kwargs: object) -> Obj:
    return {"ID": "svc", "Version": {"Index": 7}, "Spec": service_spec("web", **kwargs)}  # type: ignore[arg-type]


def test_new_task_is_clean_and_shaped_like_docker() -> None:
    svc = service(ports=[{"TargetPort": 80}])
    task = new_task(svc, NOW, slot=2)
    assert not is_task_dirty(svc, task)
    assert task["SpecVersion"] == {"Index": 7}
    assert task["Slot"] == 2 and task["NodeID"] == ""
    assert task["Endpoint"]["Spec"] == svc["Spec"]["EndpointSpec"]
    assert len(task["ID"]) == 25


def test_spec_change_and_force_update_make_dirty() -> None:
    svc = service()
    task = new_task(svc, NOW)
    changed = clone(svc)
    changed["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = "v2"
    assert is_task_dirty(changed, task)
    forced = clone(svc)
    forced["Spec"]["TaskTemplate"]["ForceUpdate"] = 1
    assert is_task_dirty(forced, task)


def test_endpoint_spec_defaults_compare_equal_but_port_changes_do_not() -> None:
    svc = service()
    task = new_task(svc, NOW)
    explicit = clone(svc)
    explicit["Spec"]["EndpointSpec"] = {"Mode": "vip", "Ports": []}
    assert not is_task_dirty(explicit, task)
    ported = clone(svc)
    ported["Spec"]["EndpointSpec"] = {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}
    assert is_task_dirty(ported, task)


def test_constraint_only_change_keeps_a_task_whose_node_still_matches() -> None:
    node = node_object("a", labels={"zone": "east"})
    svc = service(constraints=["node.labels.zone==east"])
    task = new_task(svc, NOW, node_id=node["ID"])
    loosened = clone(svc)
    loosened["Spec"]["TaskTemplate"]["Placement"]["Constraints"] = ["node.role==worker"]
    assert not is_task_dirty(loosened, task, node)
    moved = clone(svc)
    moved["Spec"]["TaskTemplate"]["Placement"]["Constraints"] = ["node.labels.zone==west"]
    assert is_task_dirty(moved, task, node)
    assert is_task_dirty(loosened, task)  # without the node nothing can be proven
