"""Whether a task is out of date with its service (and a rolling update must replace it). Also backs
the API's `_up-to-date` task filter."""

from __future__ import annotations

from typing import Any

from shoal.api.constraints import node_matches, task_constraints
from shoal.api.objects import Obj, clone, dig


def is_task_dirty(service: Obj, task: Obj, node: Obj | None = None) -> bool:
    """True when the task's spec or endpoint spec differs from the service's. A change to placement
    constraints alone does not replace a task whose node (when given) still satisfies them; a
    ForceUpdate bump changes the spec and so makes every task dirty."""
    template: Obj = dig(service, "Spec", "TaskTemplate", default={})
    task_spec: Obj = task.get("Spec") or {}
    if _endpoint_spec(dig(service, "Spec", "EndpointSpec")) != _endpoint_spec(dig(task, "Endpoint", "Spec")):
        return True
    if task_spec == template:
        return False
    if node is None or _without_constraints(task_spec) != _without_constraints(template):
        return True
    return not node_matches(task_constraints(template), node)


def _without_constraints(task_spec: Obj) -> Obj:
    copy = clone(task_spec)
    placement = copy.get("Placement")
    if isinstance(placement, dict):
        placement.pop("Constraints", None)
        if not placement:
            copy.pop("Placement")
    return copy


def _endpoint_spec(spec: Any) -> tuple[str, list[tuple[Any, ...]]]:
    """An endpoint spec with Docker's defaults filled, so {} and {"Mode": "vip"} compare equal."""
    spec = spec or {}
    ports = [
        (
            port.get("Name") or "",
            port.get("Protocol") or "tcp",
            int(port.get("TargetPort") or 0),
            int(port.get("PublishedPort") or 0),
            port.get("PublishMode") or "ingress",
        )
        for port in spec.get("Ports") or []
    ]
    return (str(spec.get("Mode") or "vip"), ports)
