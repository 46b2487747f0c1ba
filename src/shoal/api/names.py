"""How Swarm names tasks and their containers: `<service>.<slot>` for a replicated task,
`<service>.<node id>` for a global one (slot 0), and the container `<task name>.<task id>`. Docker
CLI output, container names, labels and hostname templates all use these."""

from __future__ import annotations


def task_name(service_name: str, slot: int, node_id: str) -> str:
    return f"{service_name}.{slot}" if slot else f"{service_name}.{node_id}"


def container_name(service_name: str, slot: int, node_id: str, task_id: str) -> str:
    return f"{task_name(service_name, slot, node_id)}.{task_id}"
