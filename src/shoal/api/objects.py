"""Cluster objects are kept in the Docker Engine API's own JSON shape (plain dicts), so inspect needs no
translation and fields a client sends round-trip untouched. This module names the tables and gives the
small helpers every layer uses on those dicts."""

from __future__ import annotations

from typing import Any

from shoal.api import names

Obj = dict[str, Any]

CLUSTER = "clusters"
NODES = "nodes"
SERVICES = "services"
TASKS = "tasks"
NETWORKS = "networks"
SECRETS = "secrets"
CONFIGS = "configs"
# Each node's load-balancer address on each network it needs (swarmkit's Node.Attachments), kept apart
# from the node object so the allocator's writes never change a node's Version (clients never see them).
NODE_ATTACHMENTS = "nodeattachments"
TABLES: tuple[str, ...] = (CLUSTER, NODES, SERVICES, TASKS, NETWORKS, SECRETS, CONFIGS, NODE_ATTACHMENTS)
# The field of the node object a dispatcher sends its node under which that node's load-balancer
# addresses travel (each with its whole network), as Swarm's session carries Node.Attachments. Private:
# the Engine API never shows it.
SENT_ATTACHMENTS_FIELD = "_Attachments"


def clone(obj: Obj) -> Obj:
    """A plain, mutable deep copy to modify: objects read from the store are shared and read-only."""
    copied: Obj = plain_copy(obj)
    return copied


def plain_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value made of plain dicts and lists (whatever dict and list
    subclasses it was made of)."""
    if isinstance(value, dict):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value


def version_of(obj: Obj) -> int:
    return int(obj.get("Version", {}).get("Index", 0))


def dig(obj: Any, *path: str, default: Any = None) -> Any:
    """obj["A"]["B"]... or default when any step is missing or null."""
    current = obj
    for key in path:
        if not isinstance(current, dict):
            return default
        current = current.get(key)
        if current is None:
            return default
    return current


def service_name(service: Obj) -> str:
    return str(dig(service, "Spec", "Name", default=""))


def is_global(service: Obj) -> bool:
    return dig(service, "Spec", "Mode", "Global") is not None


def replicas(service: Obj) -> int:
    return int(dig(service, "Spec", "Mode", "Replicated", "Replicas", default=1))


def node_name(node: Obj) -> str:
    return str(dig(node, "Spec", "Name") or dig(node, "Description", "Hostname", default=""))


def reservations(task_spec: Obj | None) -> tuple[int, int]:
    """(NanoCPUs, MemoryBytes) a task spec reserves on its node."""
    cpu = int(dig(task_spec or {}, "Resources", "Reservations", "NanoCPUs", default=0) or 0)
    memory = int(dig(task_spec or {}, "Resources", "Reservations", "MemoryBytes", default=0) or 0)
    return cpu, memory


def task_name(task: Obj) -> str:
    """`<service>.<slot>` for replicated tasks, `<service>.<node id>` for global ones (api.names)."""
    return names.task_name(_annotated_service(task), int(task.get("Slot") or 0), str(task.get("NodeID") or ""))


def container_name(task: Obj) -> str:
    return names.container_name(_annotated_service(task), int(task.get("Slot") or 0),
                                str(task.get("NodeID") or ""), task["ID"])


def _annotated_service(task: Obj) -> str:
    return str(dig(task, "ServiceAnnotations", "Name", default=""))
