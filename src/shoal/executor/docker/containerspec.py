"""TaskRuntime → the body of POST /containers/create, as Docker's own Swarm executor builds it.
Pure, so it is unit tested without an engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
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
    extra_config, extra_host = spec_passthrough(runtime.raw_task)
    body.update(extra_config)
    body["HostConfig"].update(extra_host)
    if runtime.workdir:
        body["WorkingDir"] = runtime.workdir
    if runtime.user:
        body["User"] = runtime.user
    if runtime.hostname:
        body["Hostname"] = runtime.hostname
    exposed, bindings = host_mode_ports(runtime.raw_task)
    if exposed:
        body["ExposedPorts"] = exposed
        body["HostConfig"]["PortBindings"] = bindings
    return body


def host_mode_ports(raw_task: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """Ports published in host mode bind on this node directly (the engine does it), as in Swarm;
    ingress-mode ports are the routing mesh's, so the container neither exposes nor binds them.
    PublishedPort 0 lets the engine pick a free host port."""
    endpoint = raw_task.get("Endpoint") or {}
    ports = endpoint.get("Ports") or (endpoint.get("Spec") or {}).get("Ports") or []
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in ports:
        if port.get("PublishMode") != "host":
            continue
        key = f"{int(port['TargetPort'])}/{str(port.get('Protocol') or 'tcp').lower()}"
        published = int(port.get("PublishedPort") or 0)
        exposed[key] = {}
        bindings[key] = [{"HostPort": str(published) if published else ""}]
    return exposed, bindings


def extra_hosts(hosts: list[str]) -> list[str]:
    """Swarm's `IP name [alias...]` entries → the engine's `name:IP`, one per name."""
    converted: list[str] = []
    for entry in hosts:
        fields = entry.split()
        if len(fields) < 2:
            raise InvalidTaskSpec(f"invalid host entry {entry!r}: expected 'IP hostname [aliases...]'")
        converted.extend(f"{name}:{fields[0]}" for name in fields[1:])
    return converted


# ContainerSpec fields whose Docker shape is the engine's: (spec key, where it goes, engine key).
_PASSTHROUGH: tuple[tuple[str, str, str], ...] = (
    ("Mounts", "host", "Mounts"),
    ("Init", "host", "Init"),
    ("ReadOnly", "host", "ReadonlyRootfs"),
    ("CapabilityAdd", "host", "CapAdd"),
    ("CapabilityDrop", "host", "CapDrop"),
    ("Sysctls", "host", "Sysctls"),
    ("Groups", "host", "GroupAdd"),
    ("Ulimits", "host", "Ulimits"),
    ("Healthcheck", "config", "Healthcheck"),
    ("OpenStdin", "config", "OpenStdin"),
)


def spec_passthrough(raw_task: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's ContainerSpec fields that TaskRuntime does not carry: (Config fields, HostConfig fields)."""
    spec = (raw_task.get("Spec") or {}).get("ContainerSpec") or {}
    sections: dict[str, dict[str, Any]] = {"config": {}, "host": {}}
    for spec_key, section, engine_key in _PASSTHROUGH:
        value = spec.get(spec_key)
        if value is not None and value != [] and value != {}:
            sections[section][engine_key] = value
    if spec.get("Hosts"):
        sections["host"]["ExtraHosts"] = extra_hosts(list(spec["Hosts"]))
    log_driver = raw_task.get("LogDriver") or (raw_task.get("Spec") or {}).get("LogDriver")
    if log_driver and log_driver.get("Name"):
        # As Swarm: the engine then keeps the logs; `logs` works only with drivers it can read back.
        sections["host"]["LogConfig"] = {"Type": log_driver["Name"], "Config": dict(log_driver.get("Options") or {})}
    security = security_options(spec.get("Privileges") or {})
    if security:
        sections["host"]["SecurityOpt"] = security
    dns = spec.get("DNSConfig") or {}
    for spec_key, engine_key in (("Nameservers", "Dns"), ("Search", "DnsSearch"), ("Options", "DnsOptions")):
        if dns.get(spec_key):
            sections["host"][engine_key] = list(dns[spec_key])
    return sections["config"], sections["host"]


def security_options(privileges: Mapping[str, Any]) -> list[str]:
    """ContainerSpec.Privileges as dockerd's --security-opt entries, as Swarm's executor sets them."""
    options = []
    seccomp = privileges.get("Seccomp") or {}
    mode = str(seccomp.get("Mode") or "").lower()
    if mode == "unconfined":
        options.append("seccomp=unconfined")
    elif mode == "custom" and seccomp.get("Profile"):
        profile = seccomp["Profile"]
        options.append("seccomp=" + (profile.decode() if isinstance(profile, bytes | bytearray) else str(profile)))
    apparmor = str((privileges.get("AppArmor") or {}).get("Mode") or "").lower()
    if apparmor == "disabled":
        options.append("apparmor=unconfined")
    if privileges.get("NoNewPrivileges"):
        options.append("no-new-privileges")
    selinux = privileges.get("SELinuxContext") or {}
    for key, name in (("User", "user"), ("Role", "role"), ("Type", "type"), ("Level", "level")):
        if selinux.get(key):
            options.append(f"label={name}:{selinux[key]}")
    if selinux.get("Disable"):
        options.append("label=disable")
    return options
