"""What the container runs, from the image config and the task, as dockerd combines them (pure):
Command replaces the image's Entrypoint (and then its Cmd), Args replace its Cmd; the task's Env
overrides the image's by name; Dir, User and StopSignal fall back to the image's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shoal.executor.base import DEFAULT_STOP_SIGNAL, TaskRuntime, parse_signal
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.taskoptions import container_spec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ProcessPlan:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str  # as written (name, uid, name:group, ...); resolved against the rootfs later
    stop_signal: str
    exposed_ports: tuple[str, ...]  # "80/tcp", from the image


def merge_env(image_env: Sequence[str], task_env: Sequence[str], hostname: str) -> tuple[str, ...]:
    """Image Env, then the task's (same name: the task wins), PATH defaulted and HOSTNAME set, as
    dockerd does; order kept so `env` lists them as Docker would."""
    merged: dict[str, str] = {"PATH": f"PATH={DEFAULT_PATH}", "HOSTNAME": f"HOSTNAME={hostname}"}
    for entry in (*image_env, *task_env):
        name = entry.partition("=")[0]
        merged[name] = entry
    return tuple(merged.values())


def process_plan(runtime: TaskRuntime, image_config: Mapping[str, Any], hostname: str) -> ProcessPlan:
    image = image_config
    entrypoint = list(image.get("Entrypoint") or ())
    cmd = list(image.get("Cmd") or ())
    # Command replaces the entrypoint and its Cmd; Args replace the Cmd only
    argv = [*runtime.command, *runtime.args] if runtime.command else [*entrypoint, *(runtime.args or cmd)]
    if not argv:
        raise InvalidTaskSpec("no command specified")
    spec = container_spec(runtime)
    # TaskRuntime cannot tell an unset stop signal from SIGTERM; the spec can
    own = spec.get("StopSignal") or (runtime.stop_signal if runtime.stop_signal != DEFAULT_STOP_SIGNAL else None)
    stop_signal = str(own or image.get("StopSignal") or DEFAULT_STOP_SIGNAL)
    try:
        parse_signal(stop_signal)
    except ValueError as exc:
        raise InvalidTaskSpec(str(exc)) from None
    return ProcessPlan(
        argv=tuple(argv),
        env=merge_env(list(image.get("Env") or ()), runtime.env, hostname),
        cwd=runtime.workdir or str(image.get("WorkingDir") or "") or "/",
        user=runtime.user or str(image.get("User") or ""),
        stop_signal=stop_signal,
        exposed_ports=tuple(sorted((image.get("ExposedPorts") or {}).keys())),
    )
