"""Where tasks go. Identical tasks (same service, same spec) are placed as a group: the nodes that pass
the pipeline are found once, then each task in turn goes to the best of them, narrowed level by level
by the placement preferences (the label value holding the fewest tasks of the service wins), then the
spread ranking (a node with many recent failures of this service last, then fewest tasks of the
service, then fewest tasks overall). Only the node just used is checked again, since only its counts
changed. Placing tasks one at a time with updated counts gives Swarm's even spread."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from shoal.api.constraints import ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX
from shoal.api.objects import Obj, dig
from shoal.scheduler.filters import Pipeline, TaskNeeds
from shoal.scheduler.nodeinfo import MAX_FAILURES, NodeInfo, failure_key


@dataclass(frozen=True)
class Placement:
    task: Obj
    node: NodeInfo | None
    explanation: str  # why no node fits ("" when one does or when there is nothing to explain)


def place_group(tasks: Sequence[Obj], infos: Sequence[NodeInfo]) -> list[Placement]:
    """Place identical tasks one by one; `infos` are charged with every task placed."""
    if not tasks:
        return []
    first = tasks[0]
    needs = TaskNeeds.of(first)
    pipeline = Pipeline(needs)
    candidates = [info for info in infos if pipeline.passes(info)]
    descriptors = spread_descriptors(first.get("Spec"))
    fkey = failure_key(needs.service_id, first.get("Spec"))
    if not descriptors:
        return _place_by_rank(tasks, infos, candidates, pipeline, fkey)
    placements: list[Placement] = []
    for index, task in enumerate(tasks):
        if not candidates:
            placements.extend(_unplaced(tasks[index:], infos, needs))
            break
        best = _choose(candidates, descriptors, needs.service_id, fkey)
        placements.append(Placement(task, best, ""))
        best.add_task(task)
        if not pipeline.passes(best, count=False):
            candidates.remove(best)
    return placements


def _place_by_rank(
    tasks: Sequence[Obj], infos: Sequence[NodeInfo], candidates: list[NodeInfo], pipeline: Pipeline, fkey: str
) -> list[Placement]:
    """Without placement preferences the best node is the head of a heap; placing a task changes only
    that node's rank, so it alone goes back in."""
    service_id = pipeline.needs.service_id
    heap = [(_rank(info, service_id, fkey), position, info) for position, info in enumerate(candidates)]
    heapq.heapify(heap)
    placements: list[Placement] = []
    for index, task in enumerate(tasks):
        if not heap:
            placements.extend(_unplaced(tasks[index:], infos, pipeline.needs))
            break
        _, position, best = heapq.heappop(heap)
        placements.append(Placement(task, best, ""))
        best.add_task(task)
        if pipeline.passes(best, count=False):
            heapq.heappush(heap, (_rank(best, service_id, fkey), position, best))
    return placements


def _unplaced(tasks: Sequence[Obj], infos: Sequence[NodeInfo], needs: TaskNeeds) -> list[Placement]:
    """Why these wait: the filters' verdicts over every node as things stand now."""
    recount = Pipeline(needs)
    for info in infos:
        recount.passes(info)
    explanation = recount.explain()
    return [Placement(task, None, explanation) for task in tasks]


def check_preassigned(task: Obj, info: NodeInfo) -> str | None:
    """For a task bound to a node (global services): None if it may run there, else the explanation."""
    pipeline = Pipeline(TaskNeeds.of(task))
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


def _choose(candidates: list[NodeInfo], descriptors: list[str], service_id: str, fkey: str) -> NodeInfo:
    for descriptor in descriptors:
        candidates = _least_loaded_branch(candidates, descriptor, service_id)
    return min(candidates, key=lambda info: _rank(info, service_id, fkey))


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
    return (faulty, info.active_by_service[service_id], info.active_total, info.hostname, info.id)
