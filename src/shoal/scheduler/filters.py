"""The filters a node must pass to take a task, in Swarm's order, each able to explain how many nodes it
turned away ("insufficient resources on 2 nodes"). What a task needs is read from it once (TaskNeeds),
so checking many nodes, or many identical tasks, parses nothing twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from shoal.api.constraints import Constraint, node_matches, task_constraints
from shoal.api.objects import Obj, dig, reservations
from shoal.scheduler.needs_extra import generic_reservations, node_plugins, required_plugins
from shoal.scheduler.nodeinfo import NodeInfo, host_ports

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name.lower(), name.lower())


@dataclass(frozen=True)
class TaskNeeds:
    """Everything the filters ask of a task, read once."""

    service_id: str
    cpu: int
    memory: int
    constraints: list[Constraint]
    platforms: list[tuple[str, str]]  # (os, arch), lower-cased, arch aliases resolved
    host_ports: set[tuple[str, int]]
    max_replicas: int
    has_constraints: bool = field(default=False)
    generic: Counter[str] = field(default_factory=Counter)
    plugins: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, task: Obj) -> TaskNeeds:
        spec = task.get("Spec") or {}
        cpu, memory = reservations(spec)
        platforms = [
            (str(p.get("OS") or "").lower(), _arch(str(p.get("Architecture") or "")))
            for p in dig(spec, "Placement", "Platforms", default=[])
        ]
        return cls(
            service_id=str(task.get("ServiceID", "")),
            cpu=cpu,
            memory=memory,
            constraints=task_constraints(spec),
            platforms=platforms,
            host_ports=host_ports(task),
            max_replicas=int(dig(spec, "Placement", "MaxReplicas", default=0) or 0),
            has_constraints=bool(dig(spec, "Placement", "Constraints", default=[])),
            generic=generic_reservations(spec),
            plugins=required_plugins(spec),
        )


class Filter(Protocol):
    def enabled(self, needs: TaskNeeds) -> bool:
        """False when the filter has nothing to say about this task (it then passes every node)."""
        ...

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool: ...

    def explain(self, nodes: int) -> str: ...


def _on_nodes(text: str, nodes: int) -> str:
    return f"{text} on 1 node" if nodes == 1 else f"{text} on {nodes} nodes"


class ReadyFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return True

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        state = dig(info.node, "Status", "State")
        availability = dig(info.node, "Spec", "Availability", default="active")
        return bool(state == "ready" and availability == "active")

    def explain(self, nodes: int) -> str:
        return "1 node not available for new tasks" if nodes == 1 else f"{nodes} nodes not available for new tasks"


class ResourceFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return (needs.cpu, needs.memory) != (0, 0) or bool(needs.generic)

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        return (needs.cpu <= info.free_cpu and needs.memory <= info.free_memory
                and all(count <= info.free_generic[kind] for kind, count in needs.generic.items()))

    def explain(self, nodes: int) -> str:
        return _on_nodes("insufficient resources", nodes)


class PluginFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return bool(needs.plugins)

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        return needs.plugins <= node_plugins(info.node)

    def explain(self, nodes: int) -> str:
        return _on_nodes("missing plugin", nodes)


class ConstraintFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return needs.has_constraints

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        return node_matches(needs.constraints, info.node)

    def explain(self, nodes: int) -> str:
        return _on_nodes("scheduling constraints not satisfied", nodes)


class PlatformFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return bool(needs.platforms)

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        node_os = str(dig(info.node, "Description", "Platform", "OS", default="")).lower()
        node_arch = _arch(str(dig(info.node, "Description", "Platform", "Architecture", default="")))
        return any(
            (not want_os or want_os == node_os) and (not want_arch or want_arch == node_arch)
            for want_os, want_arch in needs.platforms
        )

    def explain(self, nodes: int) -> str:
        return _on_nodes("unsupported platform", nodes)


class HostPortFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return bool(needs.host_ports)

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        return not (needs.host_ports & info.host_ports)

    def explain(self, nodes: int) -> str:
        return _on_nodes("host-mode port already in use", nodes)


class MaxReplicasFilter:
    def enabled(self, needs: TaskNeeds) -> bool:
        return needs.max_replicas > 0

    def check(self, info: NodeInfo, needs: TaskNeeds) -> bool:
        return info.active_by_service[needs.service_id] < needs.max_replicas

    def explain(self, nodes: int) -> str:
        return "max replicas per node limit exceed"


FILTERS: tuple[Filter, ...] = (
    ReadyFilter(),
    ResourceFilter(),
    PluginFilter(),
    ConstraintFilter(),
    PlatformFilter(),
    HostPortFilter(),
    MaxReplicasFilter(),
)


class Pipeline:
    """Runs the enabled filters for one task and counts, per filter, the nodes it rejected first."""

    def __init__(self, needs: TaskNeeds) -> None:
        self.needs = needs
        self._filters = [f for f in FILTERS if f.enabled(needs)]
        self._rejections = [0] * len(self._filters)

    def passes(self, info: NodeInfo, *, count: bool = True) -> bool:
        for position, candidate in enumerate(self._filters):
            if not candidate.check(info, self.needs):
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
