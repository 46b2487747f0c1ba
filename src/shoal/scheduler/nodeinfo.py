"""What the scheduler knows about a node: its object, the resources still free (total minus the
reservations of tasks on it that have not stopped), its active tasks per service, host ports in use,
and recent failures of each service there."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shoal.api import states
from shoal.api.objects import NODES, Obj, dig, reservations
from shoal.base.clock import parse_rfc3339
from shoal.scheduler.needs_extra import generic_offered, generic_reservations
from shoal.store.memory import ReadView

# A node where a service failed this often recently ranks last for it ("potentially faulty").
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=5)


@dataclass
class NodeInfo:
    node: Obj
    free_cpu: int = 0
    free_memory: int = 0
    free_generic: Counter[str] = field(default_factory=Counter)  # generic resources by kind
    active_by_service: Counter[str] = field(default_factory=Counter)
    active_total: int = 0
    host_ports: set[tuple[str, int]] = field(default_factory=set)
    recent_failures: Counter[str] = field(default_factory=Counter)
    _hostname: str | None = None

    @property
    def id(self) -> str:
        return str(self.node["ID"])

    @property
    def hostname(self) -> str:
        if self._hostname is None:
            self._hostname = str(dig(self.node, "Description", "Hostname", default=""))
        return self._hostname

    def add_task(self, task: Obj) -> None:
        """Charge a task placed on this node (its reservations, its ports, the spread counters)."""
        cpu, memory = reservations(task.get("Spec"))
        self.free_cpu -= cpu
        self.free_memory -= memory
        self.free_generic.subtract(generic_reservations(task.get("Spec")))
        if is_active(task):
            self.active_by_service[str(task.get("ServiceID", ""))] += 1
            self.active_total += 1
        self.host_ports |= host_ports(task)


def is_active(task: Obj) -> bool:
    """Counts for spreading: not being shut down (desired at most running or complete)."""
    desired = str(task.get("DesiredState", states.RUNNING))
    return states.rank(desired) <= states.rank(states.COMPLETE)


def holds_resources(task: Obj) -> bool:
    """A task holds its node's resources from assignment until it has stopped."""
    state = str(dig(task, "Status", "State", default=states.NEW))
    return (
        bool(task.get("NodeID"))
        and states.rank(states.ASSIGNED) <= states.rank(state)
        and not (states.is_terminal(state))
    )


def host_ports(task: Obj) -> set[tuple[str, int]]:
    """(protocol, port) pairs the task binds on its node (host-mode published ports)."""
    ports = dig(task, "Endpoint", "Spec", "Ports", default=None) or dig(task, "Endpoint", "Ports", default=[])
    found: set[tuple[str, int]] = set()
    for port in ports:
        if port.get("PublishMode") == "host" and port.get("PublishedPort"):
            found.add((str(port.get("Protocol") or "tcp"), int(port["PublishedPort"])))
    return found


def build_node_infos(view: ReadView, now: datetime) -> dict[str, NodeInfo]:
    infos: dict[str, NodeInfo] = {}
    for node in view.objects(NODES):
        info = NodeInfo(
            node=node,
            free_cpu=int(dig(node, "Description", "Resources", "NanoCPUs", default=0) or 0),
            free_memory=int(dig(node, "Description", "Resources", "MemoryBytes", default=0) or 0),
            free_generic=generic_offered(node),
        )
        for task in view.tasks_of_node(node["ID"]):
            if holds_resources(task):
                info.add_task(task)
            elif _recent_failure(task, now):
                info.recent_failures[_failure_key(task)] += 1
        infos[node["ID"]] = info
    return infos


def failure_key(service_id: str, task_spec: Obj | None) -> str:
    """Failures count per service and spec: a fixed spec may well run where the old one failed."""
    return f"{service_id}:{hash(repr(task_spec))}"


def _failure_key(task: Obj) -> str:
    return failure_key(str(task.get("ServiceID", "")), task.get("Spec"))


def _recent_failure(task: Obj, now: datetime) -> bool:
    if dig(task, "Status", "State") not in (states.FAILED, states.REJECTED):
        return False
    stamp = dig(task, "Status", "Timestamp")
    try:
        return bool(stamp) and now - parse_rfc3339(str(stamp)) <= FAILURE_WINDOW
    except ValueError:
        return False
