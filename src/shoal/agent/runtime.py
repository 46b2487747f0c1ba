"""From a task object (Docker JSON) to the executor's TaskRuntime: command, environment, Swarm's
container labels, and the hostname template (`{{.Task.Slot}}`, `{{.Service.Name}}`, ...)."""

from __future__ import annotations

import re

from shoal.api.defaults import STOP_GRACE_PERIOD, seconds
from shoal.api.names import container_name
from shoal.api.objects import Obj, dig
from shoal.executor.base import PortSpec, Resources, TaskRuntime, parse_signal

_TEMPLATE = re.compile(r"\{\{\s*\.(\w+)\.(\w+)\s*\}\}")


def expand_template(text: str, task: Obj, node_id: str, node_hostname: str) -> str:
    service_name = str(dig(task, "ServiceAnnotations", "Name", default=""))
    slot = int(task.get("Slot") or 0)
    values = {
        ("Service", "ID"): task.get("ServiceID", ""),
        ("Service", "Name"): service_name,
        ("Node", "ID"): node_id,
        ("Node", "Hostname"): node_hostname,
        ("Task", "ID"): task["ID"],
        ("Task", "Slot"): str(slot) if slot else node_id,
        ("Task", "Name"): container_name(service_name, slot, node_id, task["ID"]),
    }
    return _TEMPLATE.sub(lambda m: str(values.get((m.group(1), m.group(2)), m.group(0))), text)


def swarm_labels(task: Obj, node_id: str) -> dict[str, str]:
    service_name = str(dig(task, "ServiceAnnotations", "Name", default=""))
    slot = int(task.get("Slot") or 0)
    name = container_name(service_name, slot, node_id, task["ID"])
    labels = dict(dig(task, "Spec", "ContainerSpec", "Labels") or {})
    labels.update({
        "com.docker.swarm.node.id": node_id,
        "com.docker.swarm.service.id": task.get("ServiceID", ""),
        "com.docker.swarm.service.name": service_name,
        "com.docker.swarm.task": "",
        "com.docker.swarm.task.id": task["ID"],
        "com.docker.swarm.task.name": name,
    })
    return labels


def _with_term(env: tuple[str, ...], tty: bool) -> tuple[str, ...]:
    """A task with a TTY gets TERM=xterm unless it sets TERM itself, as dockerd gives containers."""
    if tty and not any(item.startswith("TERM=") for item in env):
        return (*env, "TERM=xterm")
    return env


def task_runtime(task: Obj, node_id: str, node_hostname: str) -> TaskRuntime:
    container = dig(task, "Spec", "ContainerSpec") or {}
    limits = dig(task, "Spec", "Resources", "Limits") or {}
    hostname = container.get("Hostname")
    grace_ns = container.get("StopGracePeriod")
    ports = [
        PortSpec(int(p.get("TargetPort", 0)), p.get("Protocol") or "tcp")
        for p in dig(task, "Endpoint", "Spec", "Ports") or dig(task, "Endpoint", "Ports") or []
    ]
    stop_signal = container.get("StopSignal") or "SIGTERM"
    parse_signal(stop_signal)  # reject a bad signal before anything runs
    return TaskRuntime(
        task_id=task["ID"],
        service_id=task.get("ServiceID", ""),
        service_name=str(dig(task, "ServiceAnnotations", "Name", default="")),
        node_id=node_id,
        slot=int(task.get("Slot") or 0),
        image=container.get("Image", ""),
        command=tuple(container.get("Command") or ()),
        args=tuple(container.get("Args") or ()),
        env=_with_term(tuple(container.get("Env") or ()), bool(container.get("TTY"))),
        workdir=container.get("Dir") or None,
        user=container.get("User") or None,
        hostname=expand_template(hostname, task, node_id, node_hostname) if hostname else None,
        stop_signal=stop_signal,
        stop_grace_period=seconds(STOP_GRACE_PERIOD if grace_ns is None else grace_ns),
        labels=swarm_labels(task, node_id),
        resources=Resources(
            nano_cpus=int(limits.get("NanoCPUs") or 0),
            memory_bytes=int(limits.get("MemoryBytes") or 0),
            pids_limit=int(limits.get("Pids") or 0),
        ),
        tty=bool(container.get("TTY")),
        ports=tuple(ports),
        raw_task=task,
    )
