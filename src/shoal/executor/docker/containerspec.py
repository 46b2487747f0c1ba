"""TaskRuntime → the body of POST /containers/create, as Docker's own Swarm executor builds it.
Pure, so it is unit tested without an engine."""

from __future__ import annotations

import math
from typing import Any

from shoal.executor.base import TaskRuntime, parse_signal
from shoal.executor.docker.labels import container_labels
from shoal.executor.errors import InvalidTaskSpec


def stop_timeout_seconds(grace: float) -> int:
    """The engine counts stop timeouts in whole seconds; round up so a task never gets less grace."""
    return max(0, math.ceil(grace))


def command_fields(runtime: TaskRuntime) -> dict[str, Any]:
    """Docker's rule for services: Command replaces the image's entrypoint and Args become Cmd; with
    Args alone the image's entrypoint stays and Args replace its Cmd; with neither, the image decides."""
    if runtime.command:
        return {"Entrypoint": list(runtime.command), "Cmd": list(runtime.args)}
    if runtime.args:
        return {"Cmd": list(runtime.args)}
    return {}


def stop_signal_name(runtime: TaskRuntime) -> str:
    try:
        return parse_signal(runtime.stop_signal).name
    except ValueError as error:
        raise InvalidTaskSpec(str(error)) from None


def host_config(runtime: TaskRuntime, network: str) -> dict[str, Any]:
    limits = runtime.resources
    config: dict[str, Any] = {
        # shoal restarts tasks itself (as a new task), as Swarm does: the engine must not.
        "RestartPolicy": {"Name": "no"},
        "NetworkMode": network,
    }
    if limits.memory_bytes:
        config["Memory"] = limits.memory_bytes
    if limits.nano_cpus:
        config["NanoCpus"] = limits.nano_cpus
    if limits.pids_limit:
        config["PidsLimit"] = limits.pids_limit
    return config


def create_body(runtime: TaskRuntime, *, image: str, instance_id: str, network: str) -> dict[str, Any]:
    """`image` is the local reference the image was found under (see images.resolve_local_image)."""
    body: dict[str, Any] = {
        "Image": image,
        "Env": list(runtime.env),
        "Labels": container_labels(runtime, instance_id),
        "StopSignal": stop_signal_name(runtime),
        "StopTimeout": stop_timeout_seconds(runtime.stop_grace_period),
        "Tty": runtime.tty,
        "OpenStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": host_config(runtime, network),
        **command_fields(runtime),
    }
    if runtime.workdir:
        body["WorkingDir"] = runtime.workdir
    if runtime.user:
        body["User"] = runtime.user
    if runtime.hostname:
        body["Hostname"] = runtime.hostname
    if runtime.ports:
        body["ExposedPorts"] = {f"{port.target}/{port.protocol}": {} for port in runtime.ports}
    return body
