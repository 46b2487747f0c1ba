"""The filters a node must pass to take a task, in Swarm's order, each able to explain how many nodes it
turned away ("insufficient resources on 2 nodes")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shoal.api.objects import Obj, dig
from shoal.scheduler.constraints import node_matches, task_constraints
from shoal.scheduler.nodeinfo import NodeInfo, host_ports, reservations


class Filter(Protocol):
    def enabled(self, task: Obj) -> bool:
        """False when the filter has nothing to say about this task (it then passes every node)."""
        ...

    def check(self, info: NodeInfo, task: Obj) -> bool: ...

    def explain(self, nodes: int) -> str: ...


def _on_nodes(text: str, nodes: int) -> str:
    return f"{text} on 1 node" if nodes == 1 else f"{text} on {nodes} nodes"


class ReadyFilter:
    def enabled(self, task: Obj) -> bool:
        return True

    def check(self, info: NodeInfo, task: Obj) -> bool:
        state = dig(info.node, "Status", "State")
        availability = dig(info.node, "Spec", "Availability", default="active")
        return bool(state == "ready" and availability == "active")

    def explain(self, nodes: int) -> str:
        return "1 node not available for new tasks" if nodes == 1 else f"{nodes} nodes not available for new tasks"


class ResourceFilter:
    def enabled(self, task: Obj) -> bool:
        return reservations(task.get("Spec")) != (0, 0)

    def check(self, info: NodeInfo, task: Obj) -> bool:
        cpu, memory = reservations(task.get("Spec"))
        return cpu <= info.free_cpu and memory <= info.free_memory

    def explain(self, nodes: int) -> str:
        return _on_nodes("insufficient resources", nodes)


class ConstraintFilter:
    def enabled(self, task: Obj) -> bool:
        return bool(dig(task, "Spec", "Placement", "Constraints", default=[]))

    def check(self, info: NodeInfo, task: Obj) -> bool:
        return node_matches(task_constraints(task.get("Spec")), info.node)

    def explain(self, nodes: int) -> str:
        return _on_nodes("scheduling constraints not satisfied", nodes)


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name.lower(), name.lower())


class PlatformFilter:
    def enabled(self, task: Obj) -> bool:
        return bool(dig(task, "Spec", "Placement", "Platforms", default=[]))

    def check(self, info: NodeInfo, task: Obj) -> bool:
        node_os = str(dig(info.node, "Description", "Platform", "OS", default="")).lower()
        node_arch = _arch(str(dig(info.node, "Description", "Platform", "Architecture", default="")))
        for platform in dig(task, "Spec", "Placement", "Platforms", default=[]):
            want_os = str(platform.get("OS") or "").lower()
            want_arch = _arch(str(platform.get("Architecture") or ""))
            if (not want_os or want_os == node_os) and (not want_arch or want_arch == node_arch):
                return True
        return False

    def explain(self, nodes: int) -> str:
        return _on_nodes("unsupported platform", nodes)


class HostPortFilter:
    def enabled(self, task: Obj) -> bool:
        return bool(host_ports(task))

    def check(self, info: NodeInfo, task: Obj) -> bool:
        return not (host_ports(task) & info.host_ports)

    def explain(self, nodes: int) -> str:
        return _on_nodes("host-mode port already in use", nodes)


class MaxReplicasFilter:
    def enabled(self, task: Obj) -> bool:
        return int(dig(task, "Spec", "Placement", "MaxReplicas", default=0) or 0) > 0

    def check(self, info: NodeInfo, task: Obj) -> bool:
        limit = int(dig(task, "Spec", "Placement", "MaxReplicas", default=0) or 0)
        return info.active_by_service[str(task.get("ServiceID", ""))] < limit

    def explain(self, nodes: int) -> str:
        return "max replicas per node limit exceed"


FILTERS: tuple[Filter, ...] = (
    ReadyFilter(),
    ResourceFilter(),
    ConstraintFilter(),
    PlatformFilter(),
    HostPortFilter(),
    MaxReplicasFilter(),
)


@dataclass
class Pipeline:
    """Runs the enabled filters for one task and counts, per filter, the nodes it rejected first."""

    task: Obj

    def __post_init__(self) -> None:
        self._filters = [f for f in FILTERS if f.enabled(self.task)]
        self._rejections = [0] * len(self._filters)

    def passes(self, info: NodeInfo, *, count: bool = True) -> bool:
        for position, candidate in enumerate(self._filters):
            if not candidate.check(info, self.task):
                if count:
                    self._rejections[position] += 1
                return False
        return True

    def explain(self) -> str:
        """Non-zero filters, most rejections first, joined as Swarm does."""
        ranked = sorted(
            (index for index, n in enumerate(self._rejections) if n),
            key=lambda index: -self._rejections[index],
        )
        return "; ".join(self._filters[i].explain(self._rejections[i]) for i in ranked)
