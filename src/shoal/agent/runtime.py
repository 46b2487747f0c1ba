"""From a task object (Docker JSON) to the executor's TaskRuntime: command, environment, Swarm's
container labels, the hostname template (`{{.Task.Slot}}`, `{{.Service.Name}}`, ...), and the
secrets and configs it references as files (from those its assignments delivered)."""

from __future__ import annotations

import base64
import binascii
import platform
import posixpath
from collections.abc import Callable, Mapping, Sequence

from shoal.agent.templating import TemplateContext, TemplateError, render
from shoal.api.defaults import STOP_GRACE_PERIOD, seconds
from shoal.api.names import container_name
from shoal.api.objects import Obj, dig
from shoal.executor.base import PortSpec, Resources, TaskFile, TaskRuntime, parse_signal


def expand_template(text: str, task: Obj, node_id: str, node_hostname: str) -> str:
    """swarmkit's expansion of a ContainerSpec string (the hostname, an env value) with the task's
    context: field paths at any depth (.Node.Platform.OS), index, join. One that does not render
    raises TemplateError (a ValueError: the task is rejected); the manager refused most at create."""
    if "{{" not in text:
        return text
    return render(text, _template_context(task, node_id, node_hostname, {}, {}))


def _expanded_env(env: Sequence[str], task: Obj, node_id: str, node_hostname: str) -> tuple[str, ...]:
    """Each NAME=value with its value expanded, as swarmkit's expandEnv (a bare NAME stays as it is)."""
    expanded = []
    for entry in env:
        name, sep, value = str(entry).partition("=")
        if sep and "{{" in value:
            try:
                entry = f"{name}={expand_template(value, task, node_id, node_hostname)}"
            except TemplateError as exc:
                raise ValueError(f"expanding env failed: expanding env {entry!r}: {exc}") from None
        expanded.append(str(entry))
    return tuple(expanded)


def _expanded_hostname(hostname: str, task: Obj, node_id: str, node_hostname: str) -> str:
    try:
        return expand_template(hostname, task, node_id, node_hostname)
    except TemplateError as exc:
        raise ValueError(f"expanding hostname failed: {exc}") from None


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


SECRETS_DIR = "/run/secrets"
DEFAULT_FILE_MODE = 0o444


def _payload(obj: Obj) -> bytes:
    try:
        return base64.b64decode(str(dig(obj, "Spec", "Data", default="")), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"malformed data in {obj.get('ID')}") from None


def _file_target(ref: Obj, secret: bool) -> str:
    """Docker's places: a secret's relative target under /run/secrets, a config's under /."""
    name = str(dig(ref, "File", "Name", default=""))
    return posixpath.normpath(name if name.startswith("/") else posixpath.join(SECRETS_DIR if secret else "/", name))


def _owner(ref: Obj, key: str) -> int:
    raw = dig(ref, "File", key, default="0")
    try:
        value = int(str(raw or "0"))
    except ValueError:
        raise ValueError(f"invalid {key} {raw!r} for {ref.get('SecretName') or ref.get('ConfigName')}") from None
    if value < 0:
        raise ValueError(f"invalid {key} {raw!r}")
    return value


def _template_context(task: Obj, node_id: str, node_hostname: str, secrets: Mapping[str, Obj],
                      configs: Mapping[str, Obj]) -> TemplateContext:
    container = dig(task, "Spec", "ContainerSpec") or {}
    service_name = str(dig(task, "ServiceAnnotations", "Name", default=""))
    slot = int(task.get("Slot") or 0)
    fields = {
        "Service": {"ID": task.get("ServiceID", ""), "Name": service_name,
                    "Labels": dict(dig(task, "ServiceAnnotations", "Labels") or {})},
        "Node": {"ID": node_id, "Hostname": node_hostname,
                 "Platform": {"OS": platform.system().lower(), "Architecture": platform.machine()}},
        "Task": {"ID": task["ID"], "Name": container_name(service_name, slot, node_id, task["ID"]),
                 "Slot": str(slot) if slot else node_id},
    }

    def env(name: str) -> str:
        for entry in container.get("Env") or ():
            key, sep, value = str(entry).partition("=")
            if sep and key == name:
                return value
        return ""

    def lookup(kind: str, refs: str, key: str, delivered: Mapping[str, Obj]) -> Callable[[str], str]:
        def find(target: str) -> str:
            for ref in container.get(refs) or ():
                if dig(ref, "File", "Name") == target:
                    obj = delivered.get(str(ref.get(key)))
                    if obj is None:
                        raise TemplateError(f"{kind} {ref.get(key)} not found")
                    return _payload(obj).decode(errors="replace")
            raise TemplateError(f"{kind} target {target} not found")
        return find

    return TemplateContext(fields, env, lookup("secret", "Secrets", "SecretID", secrets),
                           lookup("config", "Configs", "ConfigID", configs))


def task_files(task: Obj, node_id: str, node_hostname: str, secrets: Mapping[str, Obj] | None = None,
               configs: Mapping[str, Obj] | None = None) -> tuple[TaskFile, ...]:
    """The files a task's secret and config references become. A reference whose object was not
    delivered, or a template that does not render, raises ValueError: the task is rejected saying
    why (as Swarm's agent fails it) instead of running without its file."""
    secrets, configs = secrets or {}, configs or {}
    container = dig(task, "Spec", "ContainerSpec") or {}
    files: list[TaskFile] = []
    for refs, key, name_key, delivered, secret in (("Secrets", "SecretID", "SecretName", secrets, True),
                                                   ("Configs", "ConfigID", "ConfigName", configs, False)):
        kind = "secret" if secret else "config"
        for ref in container.get(refs) or ():
            if not isinstance(ref, dict) or not isinstance(ref.get("File"), dict):
                continue  # runtime targets (credential specs) are for Windows
            obj = delivered.get(str(ref.get(key)))
            if obj is None:
                raise ValueError(f"{kind} {ref.get(name_key)} ({ref.get(key)}) not found on this node")
            data = _payload(obj)
            if dig(obj, "Spec", "Templating", "Name") == "golang":
                context = _template_context(task, node_id, node_hostname, secrets, configs)
                try:
                    data = render(data.decode(errors="replace"), context).encode()
                except TemplateError as exc:
                    raise ValueError(f"failed to expand templated {kind} {obj['ID']}: {exc}") from None
            mode = dig(ref, "File", "Mode")
            files.append(TaskFile(
                target=_file_target(ref, secret), data=data, uid=_owner(ref, "UID"), gid=_owner(ref, "GID"),
                mode=DEFAULT_FILE_MODE if mode is None else int(mode) & 0o7777, secret=secret,
            ))
    return tuple(files)


def task_runtime(task: Obj, node_id: str, node_hostname: str, secrets: Mapping[str, Obj] | None = None,
                 configs: Mapping[str, Obj] | None = None) -> TaskRuntime:
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
        env=_with_term(_expanded_env(container.get("Env") or (), task, node_id, node_hostname),
                       bool(container.get("TTY"))),
        workdir=container.get("Dir") or None,
        user=container.get("User") or None,
        hostname=_expanded_hostname(hostname, task, node_id, node_hostname) if hostname else None,
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
        files=task_files(task, node_id, node_hostname, secrets, configs),
    )
