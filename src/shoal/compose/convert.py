"""One compose service to the ServiceSpec `docker stack deploy` sends (cli/compose/convert in the docker
CLI): names scoped to the stack, the namespace and image labels, the stack's default network, durations
in nanoseconds, empty fields left out as Go's omitempty leaves them out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.api.errors import InvalidArgument
from shoal.compose.envfile import parse_env_file
from shoal.compose.loader import Compose
from shoal.compose.objects import (
    NAMESPACE_LABEL,
    external_name,
    is_external,
    is_user_defined,
    reference_name,
    scoped,
    stack_labels,
)
from shoal.compose.ports import convert_ports
from shoal.compose.units import go_duration_ns, nano_cpus, ram_in_bytes
from shoal.compose.values import command, go_str, mapping, string_list
from shoal.compose.volumes import convert_volume, parse_volume

IMAGE_LABEL = "com.docker.stack.image"
DEFAULT_FILE_MODE = 0o444


def _duration(value: Any) -> int:
    return go_duration_ns(str(value))


def _prune(values: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty: drop None, "", 0, False and empty containers."""
    return {k: v for k, v in values.items() if v not in (None, "", 0, False, [], {})}


def environment(service: dict[str, Any], compose: Compose) -> list[str]:
    """env_file entries then `environment`; a variable left without a value (or empty) takes the
    environment's value when it has one, as the CLI's resolveEnvironment does."""
    merged: dict[str, str | None] = {}
    sources = [parse_env_file(compose.working_dir / name, compose.environ)
               for name in string_list(service.get("env_file"))]
    sources.append(mapping(service.get("environment"), allow_nil=True))
    for source in sources:
        for name, value in source.items():
            merged[name] = compose.environ[name] if not value and name in compose.environ else value
    return sorted(name if value is None else f"{name}={value}" for name, value in merged.items())


def _healthcheck(check: dict[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    test = check.get("test")
    if check.get("disable"):
        if test:
            raise InvalidArgument("test and disable can't be set at the same time")
        return {"Test": ["NONE"]}
    converted: dict[str, Any] = {"Test": ["CMD-SHELL", test] if isinstance(test, str) else test}
    for key, field in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                       ("start_interval", "StartInterval")):
        if check.get(key) is not None:
            converted[field] = _duration(check[key])
    if check.get("retries") is not None:
        converted["Retries"] = int(check["retries"])
    return _prune(converted)


def _restart_policy(service: dict[str, Any]) -> dict[str, Any] | None:
    policy = (service.get("deploy") or {}).get("restart_policy")
    if policy is not None:
        converted: dict[str, Any] = {"Condition": policy.get("condition", "")}
        for key, field in (("delay", "Delay"), ("window", "Window")):
            if policy.get(key) is not None:
                converted[field] = _duration(policy[key])
        if policy.get("max_attempts") is not None:
            converted["MaxAttempts"] = int(policy["max_attempts"])
        return {k: v for k, v in converted.items() if v != ""}
    # The (unsupported, warned about) `restart:` key still sets the policy, as in the CLI.
    restart = str(service.get("restart") or "")
    name, _, count = restart.partition(":")
    if name in ("", "no"):
        return None
    if name in ("always", "unless-stopped"):
        return {"Condition": "any"}
    if name == "on-failure":
        return {"Condition": "on-failure", "MaxAttempts": int(count or 0)}
    raise InvalidArgument(f"unknown restart policy: {restart}")


def _go_float(value: Any) -> float | int:
    """A float64 as Go's encoding/json writes it: 0, not 0.0."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _update_config(source: dict[str, Any] | None) -> dict[str, Any] | None:
    if source is None:
        return None
    # Parallelism, MaxFailureRatio and Order are sent even when empty (no omitempty on them in the CLI).
    config: dict[str, Any] = {"Parallelism": int(source.get("parallelism", 1)),
                              "MaxFailureRatio": _go_float(source.get("max_failure_ratio") or 0),
                              "Order": str(source.get("order") or "")}
    config.update(_prune({"Delay": _duration(source["delay"]) if source.get("delay") else 0,
                          "FailureAction": source.get("failure_action"),
                          "Monitor": _duration(source["monitor"]) if source.get("monitor") else 0}))
    return config


def _resources(source: dict[str, Any] | None) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    source = source or {}
    limits = source.get("limits")
    if limits is not None:
        resources["Limits"] = _prune({
            "NanoCPUs": nano_cpus(limits["cpus"]) if limits.get("cpus") not in (None, "") else 0,
            "MemoryBytes": ram_in_bytes(limits["memory"]) if limits.get("memory") else 0,
            "Pids": int(limits.get("pids") or 0)})
    reservations = source.get("reservations")
    if reservations is not None:
        generic = [{"DiscreteResourceSpec": {"Kind": item["discrete_resource_spec"].get("kind", ""),
                                             "Value": int(item["discrete_resource_spec"].get("value", 0))}}
                   for item in reservations.get("generic_resources") or [] if item.get("discrete_resource_spec")]
        resources["Reservations"] = _prune({
            "NanoCPUs": nano_cpus(reservations["cpus"]) if reservations.get("cpus") not in (None, "") else 0,
            "MemoryBytes": ram_in_bytes(reservations["memory"]) if reservations.get("memory") else 0,
            "GenericResources": generic})
    return resources


def _mode(deploy: dict[str, Any]) -> dict[str, Any]:
    mode = deploy.get("mode") or "replicated"
    replicas = deploy.get("replicas")
    if mode in ("global", "global-job"):
        if replicas is not None:
            raise InvalidArgument("replicas can only be used with replicated or replicated-job mode")
        return {"Global": {}} if mode == "global" else {"GlobalJob": {}}
    counts = {} if replicas is None else {"Replicas": int(replicas)}
    if mode == "replicated":
        return {"Replicated": counts}
    if mode == "replicated-job":
        return {"ReplicatedJob": {} if replicas is None else {"MaxConcurrent": int(replicas),
                                                              "TotalCompletions": int(replicas)}}
    raise InvalidArgument(f"Unknown mode: {mode}")


def _networks(service_name: str, service: dict[str, Any], compose: Compose, namespace: str) -> list[dict[str, Any]]:
    declared_all = compose.config.get("networks") or {}
    wanted = service.get("networks") or {"default": None}
    if isinstance(wanted, list):
        wanted = dict.fromkeys(wanted)
    attachments = []
    for name, given in wanted.items():
        options: dict[str, Any] = given or {}
        if name not in declared_all and name != "default":
            raise InvalidArgument(f'undefined network "{name}"')
        declared = declared_all.get(name) or {}
        target = external_name(name, declared, "network") if is_external(declared) else str(
            declared.get("name") or scoped(namespace, name))
        aliases = list(string_list(options.get("aliases")))
        if is_user_defined(target):
            aliases.append(service_name)
        attachment: dict[str, Any] = {"Target": target}
        if aliases:
            attachment["Aliases"] = aliases
        if options.get("driver_opts"):
            attachment["DriverOpts"] = {k: go_str(v) for k, v in options["driver_opts"].items()}
        attachments.append(attachment)
    return sorted(attachments, key=lambda item: str(item["Target"]))


def _file_references(kind: str, service: dict[str, Any], compose: Compose, namespace: str,
                     ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """A service's secrets or configs with their swarm IDs, sorted by name (so a redeploy changes nothing)."""
    references: dict[str, dict[str, Any]] = {}
    for entry in service.get(f"{kind}s") or []:
        entry = {"source": entry} if isinstance(entry, str) else entry
        source = str(entry.get("source") or "")
        name = reference_name(compose, namespace, kind, source)
        target = str(entry.get("target") or source)
        if target in references:
            raise InvalidArgument(f"duplicate {kind} target for {name} not allowed")
        mode = entry.get("mode")
        references[target] = {
            "File": {"Name": target, "UID": go_str(entry.get("uid") or "0"), "GID": go_str(entry.get("gid") or "0"),
                     "Mode": DEFAULT_FILE_MODE if mode is None else int(mode)},
            f"{kind.capitalize()}Name": name,
        }
    for reference in references.values():
        name = reference[f"{kind.capitalize()}Name"]
        if name not in ids:
            raise InvalidArgument(f"{kind} not found: {name}")
        reference[f"{kind.capitalize()}ID"] = ids[name]
    return sorted(references.values(), key=lambda ref: str(ref[f"{kind.capitalize()}Name"]))


def _capabilities(add: Any, drop: Any) -> tuple[list[str], list[str]]:
    def normalize(names: Any) -> set[str]:
        result = set()
        for name in string_list(names):
            upper = name.strip().upper()
            result.add(upper if upper in ("ALL", "RESET") or upper.startswith("CAP_") else f"CAP_{upper}")
        return result
    added, dropped = normalize(add), normalize(drop)
    added = {"ALL"} if "ALL" in added else added
    dropped = {"ALL"} if "ALL" in dropped else dropped
    return sorted(added - {"RESET"}), sorted(dropped - added - {"RESET"})


def _ulimits(source: dict[str, Any] | None) -> list[dict[str, Any]]:
    limits = []
    for name, value in sorted((source or {}).items()):
        soft, hard = (value, value) if isinstance(value, int) else (value.get("soft", 0), value.get("hard", 0))
        limits.append({"Name": name, "Soft": int(soft), "Hard": int(hard)})
    return limits


def _extra_hosts(value: Any) -> list[str]:
    """host:ip (or host=ip) to Swarm's "ip host"; IPv6 brackets dropped."""
    if isinstance(value, dict):
        pairs = [(str(k), go_str(v)) for k, v in sorted(value.items())]
    else:
        pairs = []
        for item in string_list(value):
            separator = "=" if "=" in item else ":"
            host, found, address = item.partition(separator)
            if found:  # an entry without an address is dropped, as the CLI drops it
                pairs.append((host, address))
    return [f"{address[1:-1] if address.startswith('[') and address.endswith(']') else address} {host}"
            for host, address in pairs]


def convert_service(name: str, service: dict[str, Any], compose: Compose, namespace: str,
                    secret_ids: Mapping[str, str] | None = None,
                    config_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ServiceSpec of compose service `name` in stack `namespace`."""
    try:
        return _convert(name, service, compose, namespace, {} if secret_ids is None else secret_ids,
                        {} if config_ids is None else config_ids)
    except InvalidArgument as exc:
        raise InvalidArgument(f"service {name}: {exc}") from None
    except (ValueError, TypeError) as exc:
        # A value the schema lets through but that does not convert (e.g. "published: 80-81"): an error
        # for the user, not a traceback.
        raise InvalidArgument(f"service {name}: {exc}") from None


def _convert(name: str, service: dict[str, Any], compose: Compose, namespace: str, secret_ids: Mapping[str, str],
             config_ids: Mapping[str, str]) -> dict[str, Any]:
    deploy = service.get("deploy") or {}
    cap_add, cap_drop = _capabilities(service.get("cap_add"), service.get("cap_drop"))
    volumes = [parse_volume(v) if isinstance(v, str) else v for v in service.get("volumes") or []]
    dns = service.get("dns")
    dns_search = service.get("dns_search")
    container = _prune({
        "Image": service["image"], "Labels": stack_labels(namespace, service.get("labels")),
        "Command": command(service.get("entrypoint")), "Args": command(service.get("command")),
        "Hostname": service.get("hostname"), "Env": environment(service, compose), "Dir": service.get("working_dir"),
        "User": go_str(service.get("user")) if service.get("user") is not None else None,
        "Mounts": [convert_volume(v, compose.config.get("volumes") or {}, namespace, compose.working_dir,
                                  compose.environ.get("HOME")) for v in volumes],
        "StopGracePeriod": _duration(service["stop_grace_period"]) if service.get("stop_grace_period") else None,
        "StopSignal": service.get("stop_signal"), "TTY": service.get("tty"), "OpenStdin": service.get("stdin_open"),
        "ReadOnly": service.get("read_only"), "Hosts": _extra_hosts(service.get("extra_hosts")),
        "Healthcheck": _healthcheck(service.get("healthcheck")), "Isolation": service.get("isolation"),
        "Sysctls": {k: v or "" for k, v in mapping(service.get("sysctls")).items()},
        "CapabilityAdd": cap_add, "CapabilityDrop": cap_drop, "Ulimits": _ulimits(service.get("ulimits")),
        "OomScoreAdj": service.get("oom_score_adj"),
        "Secrets": _file_references("secret", service, compose, namespace, secret_ids),
        "Configs": _file_references("config", service, compose, namespace, config_ids),
    })
    if dns is not None or dns_search is not None:
        container["DNSConfig"] = _prune({"Nameservers": string_list(dns), "Search": string_list(dns_search)})
    if service.get("init") is not None:
        container["Init"] = bool(service["init"])  # a pointer in Go: false is sent when the file says so
    container["Privileges"] = {"CredentialSpec": None, "SELinuxContext": None, "NoNewPrivileges": False}
    placement = deploy.get("placement") or {}
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": _resources(deploy.get("resources")),
        "Placement": _prune({
            "Constraints": string_list(placement.get("constraints")),
            "Preferences": [{"Spread": {"SpreadDescriptor": p.get("spread", "")}}
                            for p in placement.get("preferences") or []],
            "MaxReplicas": int(placement.get("max_replicas_per_node") or 0)}),
        "Networks": _networks(name, service, compose, namespace),
        "ForceUpdate": 0,
    }
    restart = _restart_policy(service)
    if restart is not None:
        task["RestartPolicy"] = restart
    logging = service.get("logging")
    if logging is not None:
        task["LogDriver"] = _prune({"Name": logging.get("driver"),
                                    "Options": {k: go_str(v) for k, v in (logging.get("options") or {}).items()}})
    spec: dict[str, Any] = {
        "Name": scoped(namespace, name),
        "Labels": {**stack_labels(namespace, deploy.get("labels")), IMAGE_LABEL: service["image"]},
        "TaskTemplate": task,
        "Mode": _mode(deploy),
        "EndpointSpec": _prune({"Mode": str(deploy.get("endpoint_mode") or "").lower(),
                                "Ports": convert_ports(service.get("ports") or [])}),
    }
    for key, field in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        config = _update_config(deploy.get(key))
        if config is not None:
            spec[field] = config
    assert spec["Labels"][NAMESPACE_LABEL] == namespace
    return spec
