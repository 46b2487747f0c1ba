"""Published ports: the short syntax ("[IP:][HOST:]CONTAINER[/PROTO]", ranges allowed) as the docker CLI
reads it (go-connections' ParsePortSpec), and the long syntax, both to Engine API PortConfigs."""

from __future__ import annotations

from typing import Any

from shoal.api.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    start, dash, end = text.partition("-")
    try:
        low = int(start)
        high = int(end) if dash else low
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if not (0 <= low <= 65535 and low <= high <= 65535):
        raise InvalidArgument(f"invalid {what}: {text}")
    return low, high


def parse_port_spec(spec: str) -> list[dict[str, Any]]:
    """One short-syntax entry to PortConfigs (one per port of a range), as ConvertPortToPortConfig
    builds them: the protocol and the ingress publish mode are always spelled out."""
    body, _, protocol = spec.partition("/")
    protocol = protocol.lower() or "tcp"
    if protocol not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {protocol}")
    if body.startswith("["):  # [IPv6]:host:container
        closing = body.find("]")
        body = body[closing + 2:] if closing >= 0 else body
    parts = body.split(":")
    if len(parts) == 1:
        host, container = "", parts[0]
    elif len(parts) == 2:
        host, container = parts
    elif len(parts) == 3:
        host, container = parts[1], parts[2]
    else:
        raise InvalidArgument(f"invalid port specification: \"{spec}\"")
    if not container:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    low, high = _port_range(container, "containerPort", spec)
    if host:
        host_low, host_high = _port_range(host, "hostPort", spec)
        if host_high - host_low != high - low and high != low:
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: {container} and {host}")
    else:
        host_low = host_high = 0
    configs = []
    for offset in range(high - low + 1):
        published = host_low + offset if host and host_high != host_low else host_low
        config = {"Protocol": protocol, "TargetPort": low + offset, "PublishedPort": published,
                  "PublishMode": "ingress"}
        if not published:
            del config["PublishedPort"]  # omitempty: no published port means Swarm picks one
        configs.append(config)
    return configs


def _long_port(entry: dict[str, Any]) -> dict[str, Any]:
    """The long syntax: fields the file leaves out stay out (Swarm fills tcp and ingress)."""
    config: dict[str, Any] = {"TargetPort": int(entry.get("target") or 0)}
    if entry.get("protocol"):
        config["Protocol"] = str(entry["protocol"])
    if entry.get("published") not in (None, ""):
        published = str(entry["published"])
        if not published.isdigit():
            raise InvalidArgument(f"invalid published port: {published}")
        config["PublishedPort"] = int(published)
    if entry.get("mode"):
        config["PublishMode"] = str(entry["mode"])
    return config


def convert_ports(entries: list[Any]) -> list[dict[str, Any]]:
    """All of a service's ports, sorted by published port as the CLI sends them."""
    configs: list[dict[str, Any]] = []
    for entry in entries:
        if isinstance(entry, dict):
            configs.append(_long_port(entry))
        else:
            configs.extend(parse_port_spec(str(entry)))
    return sorted(configs, key=lambda port: int(port.get("PublishedPort") or 0))
