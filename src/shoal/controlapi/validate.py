"""Semantic checks on service specs, with swarmkit's wording (clients and users match on it). Each
section has its own validator; the first problem found is reported, and nothing is written."""

from __future__ import annotations

import re
from typing import Any

from shoal.allocator.networks import find_network, ingress_of, is_ingress, network_name
from shoal.api import errors
from shoal.api.defaults import NANOS
from shoal.api.objects import Obj, dig
from shoal.store.memory import ReadView

_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$")
# The distribution reference grammar (docker/distribution/reference), lowercase path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*"
    rf"(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
)
MIN_MEMORY = 4 * 1024 * 1024
MIN_NANO_CPUS = 1_000_000
RESTART_CONDITIONS = ("none", "on-failure", "any")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
ORDERS = ("stop-first", "start-first")
PROTOCOLS = ("tcp", "udp", "sctp")
PUBLISH_MODES = ("ingress", "host")


def invalid(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, grpc=True)


def validate_name(name: str) -> None:
    if not name:
        raise invalid("meta: name must be provided")
    if not _NAME.match(name):
        raise invalid("name must be valid as a DNS name component")


def validate_image(image: str) -> None:
    if not image:
        raise invalid("ContainerSpec: image reference must be provided")
    if len(image) > 255 or not _REFERENCE.match(image):
        raise invalid(f'ContainerSpec: "{image}" is not a valid repository/tag')


def validate_resources(resources: Obj | None) -> None:
    for section in ("Limits", "Reservations"):
        values = dig(resources, section) or {}
        memory = values.get("MemoryBytes") or 0
        cpus = values.get("NanoCPUs") or 0
        if memory and memory < MIN_MEMORY:
            raise invalid(f"invalid memory value {memory}: Must be at least 4MiB")
        if cpus and cpus < MIN_NANO_CPUS:
            raise invalid(f"invalid cpu value {cpus / NANOS:g}: Must be at least 0.001")
        if memory < 0 or cpus < 0:
            raise invalid("TaskSpec: resources cannot be negative")


def validate_restart_policy(policy: Obj | None) -> None:
    if not policy:
        return
    condition = policy.get("Condition")
    if condition and condition not in RESTART_CONDITIONS:
        raise invalid(f"TaskSpec: invalid restart condition {condition!r}")
    if (policy.get("Delay") or 0) < 0:
        raise invalid("TaskSpec: restart-delay cannot be negative")
    if (policy.get("Window") or 0) < 0:
        raise invalid("TaskSpec: restart-window cannot be negative")


def validate_update_config(config: Obj | None, what: str) -> None:
    if not config:
        return
    if (config.get("Delay") or 0) < 0:
        raise invalid(f"{what}: update-delay cannot be negative")
    if (config.get("Monitor") or 0) < 0:
        raise invalid(f"{what}: update-monitor cannot be negative")
    ratio = config.get("MaxFailureRatio") or 0
    if ratio < 0 or ratio > 1:
        raise invalid(f"{what}: update-maxfailureratio cannot be less than 0 or bigger than 1")
    action = config.get("FailureAction")
    if action and action not in FAILURE_ACTIONS:
        raise invalid(f"{what}: invalid failure action {action!r}")
    order = config.get("Order")
    if order and order not in ORDERS:
        raise invalid(f"{what}: invalid update order {order!r}")


def validate_endpoint(endpoint: Obj | None) -> None:
    if not endpoint:
        return
    mode = endpoint.get("Mode") or "vip"
    if mode not in ("vip", "dnsrr"):
        raise invalid(f"EndpointSpec: invalid endpoint mode {mode!r}")
    seen: set[tuple[int, str]] = set()
    for port in endpoint.get("Ports") or []:
        protocol = port.get("Protocol") or "tcp"
        publish_mode = port.get("PublishMode") or "ingress"
        target = port.get("TargetPort") or 0
        published = port.get("PublishedPort") or 0
        if protocol not in PROTOCOLS:
            raise invalid(f"EndpointSpec: invalid protocol {protocol!r}")
        if publish_mode not in PUBLISH_MODES:
            raise invalid(f"EndpointSpec: invalid publish mode {publish_mode!r}")
        if not 0 < target <= 65535 or published > 65535:
            raise invalid("EndpointSpec: port number out of range")
        if mode == "dnsrr" and publish_mode == "ingress":
            raise invalid(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
            )
        # swarmkit keys a published port by number and protocol: a host-mode twin is a duplicate too
        if published and (published, protocol) in seen:
            raise invalid("EndpointSpec: duplicate published ports provided")
        if published:
            seen.add((published, protocol))


def validate_mode(mode: Obj | None) -> None:
    modes = ("Replicated", "Global", "ReplicatedJob", "GlobalJob")
    chosen = [key for key in modes if dig(mode, key) is not None]
    if len(chosen) > 1:
        raise invalid("ServiceSpec: only one mode can be set")


def validate_service_spec(spec: Obj, constraint_check: Any = None) -> None:
    validate_name(spec.get("Name") or "")
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec")
    if container is None:
        raise invalid("TaskSpec: missing runtime")
    validate_image(container.get("Image") or "")
    if (container.get("StopGracePeriod") or 0) < 0:
        raise invalid("ContainerSpec: stop grace period cannot be negative")
    # a bad StopSignal is not refused here: dockerd creates the service and rejects its tasks
    validate_resources(task.get("Resources"))
    validate_restart_policy(task.get("RestartPolicy"))
    if constraint_check is not None:
        constraint_check(dig(task, "Placement", "Constraints") or [])
    validate_mode(spec.get("Mode"))
    validate_update_config(spec.get("UpdateConfig"), "UpdateConfig")
    validate_update_config(spec.get("RollbackConfig"), "RollbackConfig")
    validate_endpoint(spec.get("EndpointSpec"))


def check_service_networks(view: ReadView, spec: Obj) -> None:
    """Checks on the networks a service spec names, against the store (call it inside the create or
    update transaction). Each attachment's Target becomes the network's id, as dockerd stores it (so
    `service update --network-rm NAME`, which compares ids, finds it); an unknown network is refused
    with dockerd's words, the ingress network by name with swarmkit's."""
    task = spec.get("TaskTemplate") or {}
    attachments = task.get("Networks") or spec.get("Networks") or []
    for attachment in attachments:
        target = str(attachment.get("Target") or "")
        network = find_network(view, target)
        if network is None:
            raise errors.NotFound(f"network {target} not found")
        if is_ingress(network):
            raise invalid(f'Service cannot be explicitly attached to the ingress network "{network_name(network)}"')
        attachment["Target"] = network["ID"]
    ingress_ports = [p for p in dig(spec, "EndpointSpec", "Ports", default=None) or []
                     if (p.get("PublishMode") or "ingress") == "ingress"]
    if ingress_ports and ingress_of(view) is None:
        raise invalid("service needs ingress network, but no ingress network is present")
