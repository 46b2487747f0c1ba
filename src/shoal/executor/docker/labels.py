"""The labels the docker executor puts on task containers.

Swarm's own `com.docker.swarm.*` labels make `docker ps --filter label=...` and tools that read them
(Portainer, Traefik) work as with real Swarm. shoal's labels tell which executor instance made a
container (two shoald daemons may share one dockerd and must not adopt each other's tasks) and keep
the TaskRuntime the container was made from, so adopt() can rebuild it after a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping

from shoal.executor.base import TaskRuntime

NODE_ID = "com.docker.swarm.node.id"
SERVICE_ID = "com.docker.swarm.service.id"
SERVICE_NAME = "com.docker.swarm.service.name"
TASK = "com.docker.swarm.task"
TASK_ID = "com.docker.swarm.task.id"
TASK_NAME = "com.docker.swarm.task.name"

EXECUTOR_INSTANCE = "io.shoal.executor.instance"
RUNTIME = "io.shoal.executor.runtime"

INTERNAL_LABELS = frozenset({EXECUTOR_INSTANCE, RUNTIME})


def swarm_labels(runtime: TaskRuntime) -> dict[str, str]:
    """As Swarm sets them; task.name is the full container name, as in Swarm."""
    return {
        NODE_ID: runtime.node_id,
        SERVICE_ID: runtime.service_id,
        SERVICE_NAME: runtime.service_name,
        TASK: "",
        TASK_ID: runtime.task_id,
        TASK_NAME: runtime.container_name,
    }


def container_labels(runtime: TaskRuntime, instance_id: str) -> dict[str, str]:
    """The service's container labels first, so a user label can never mask a system one."""
    labels = dict(runtime.labels)
    labels.update(swarm_labels(runtime))
    labels[EXECUTOR_INSTANCE] = instance_id
    labels[RUNTIME] = json.dumps(runtime.to_json(), separators=(",", ":"), sort_keys=True)
    return labels


def runtime_from_labels(labels: Mapping[str, str]) -> TaskRuntime | None:
    """The TaskRuntime stored on a container, or None if it carries none we can read."""
    raw = labels.get(RUNTIME)
    if not raw:
        return None
    try:
        return TaskRuntime.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None


def visible_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """What `docker ps` against shoald shows: everything but shoal's bookkeeping."""
    return {key: value for key, value in labels.items() if key not in INTERNAL_LABELS}
