"""Where one task goes: the nodes that pass the pipeline, narrowed level by level by the placement
preferences (the label value holding the fewest tasks of the service wins), then the spread ranking
(a node with many recent failures of this service last, then fewest tasks of the service, then fewest
tasks overall). Placing tasks one at a time with updated counts gives Swarm's even spread."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from shoal.api.objects import Obj, dig
from shoal.scheduler.constraints import ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX
from shoal.scheduler.filters import Pipeline
from shoal.scheduler.nodeinfo import MAX_FAILURES, NodeInfo, failure_key


@dataclass(frozen=True)
class Placement:
    node: NodeInfo | None
    explanation: str  # why no node fits ("" when one does or when there is nothing to explain)


def place_task(task: Obj, infos: Sequence[NodeInfo]) -> Placement:
    pipeline = Pipeline(task)
    candidates = [info for info in infos if pipeline.passes(info)]
    if not candidates:
        return Placement(None, pipeline.explain())
    service_id = str(task.get("ServiceID", ""))
    for descriptor in spread_descriptors(task.get("Spec")):
        candidates = _least_loaded_branch(candidates, descriptor, service_id)
    fkey = failure_key(service_id, task.get("Spec"))
    best = min(candidates, key=lambda info: _rank(info, service_id, fkey))
    return Placement(best, "")


def check_preassigned(task: Obj, info: NodeInfo) -> str | None:
    """For a task bound to a node (global services): None if it may run there, else the explanation."""
    pipeline = Pipeline(task)
    if pipeline.passes(info):
        return None
    return pipeline.explain()


def spread_descriptors(task_spec: Obj | None) -> list[str]:
    """The usable spread descriptors (only node and engine labels; others are ignored as in Swarm)."""
    found: list[str] = []
    for preference in dig(task_spec or {}, "Placement", "Preferences", default=[]):
        descriptor = str(dig(preference, "Spread", "SpreadDescriptor", default=""))
        if descriptor.lower().startswith((NODE_LABEL_PREFIX, ENGINE_LABEL_PREFIX)):
            found.append(descriptor)
    return found


def _label_value(info: NodeInfo, descriptor: str) -> str:
    if descriptor.lower().startswith(NODE_LABEL_PREFIX):
        labels = dig(info.node, "Spec", "Labels", default={})
        return str(labels.get(descriptor[len(NODE_LABEL_PREFIX) :], ""))
    labels = dig(info.node, "Description", "Engine", "Labels", default={})
    return str(labels.get(descriptor[len(ENGINE_LABEL_PREFIX) :], ""))


def _least_loaded_branch(candidates: list[NodeInfo], descriptor: str, service_id: str) -> list[NodeInfo]:
    """Nodes missing the label form their own "" branch, which gets its fair share like any other."""
    branches: dict[str, list[NodeInfo]] = defaultdict(list)
    for info in candidates:
        branches[_label_value(info, descriptor)].append(info)
    value = min(branches, key=lambda v: (sum(i.active_by_service[service_id] for i in branches[v]), v))
    return branches[value]


def _rank(info: NodeInfo, service_id: str, fkey: str) -> tuple[int, int, int, str, str]:
    failures = info.recent_failures[fkey]
    faulty = failures if failures >= MAX_FAILURES else 0
    hostname = str(dig(info.node, "Description", "Hostname", default=""))
    return (faulty, info.active_by_service[service_id], info.active_total, hostname, info.id)
