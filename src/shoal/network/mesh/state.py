"""The mesh's desired state: which ports this node publishes and where their traffic goes.

Pure values, no I/O. The agent builds a MeshState from the tasks it knows are running (on every
node, for ingress ports) and hands it to Mesh.apply(); equal states mean "nothing to do"."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

IpProtocol: TypeAlias = Literal["tcp", "udp"]
PublishMode: TypeAlias = Literal["ingress", "host"]

PROTOCOLS: tuple[IpProtocol, ...] = ("tcp", "udp")
PUBLISH_MODES: tuple[PublishMode, ...] = ("ingress", "host")


class InvalidMeshState(ValueError):
    """A MeshState that no implementation could apply (bad port, address or protocol)."""


@dataclass(frozen=True, order=True)
class PublishedPort:
    """A port this node accepts traffic on (Swarm's PortConfig.PublishedPort/Protocol/PublishMode)."""

    port: int
    protocol: IpProtocol = "tcp"
    mode: PublishMode = "ingress"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise InvalidMeshState(f"published port {self.port} is outside 1-65535")
        if self.protocol not in PROTOCOLS:
            raise InvalidMeshState(f"protocol {self.protocol!r} is not one of {PROTOCOLS}")
        if self.mode not in PUBLISH_MODES:
            raise InvalidMeshState(f"publish mode {self.mode!r} is not one of {PUBLISH_MODES}")

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol} ({self.mode})"


@dataclass(frozen=True, order=True)
class Backend:
    """One running task's address for a published port: its IP and target port."""

    ip: str
    port: int

    def __post_init__(self) -> None:
        try:
            address = ipaddress.ip_address(self.ip)
        except ValueError as exc:
            raise InvalidMeshState(f"backend address {self.ip!r} is not an IP address") from exc
        if address.version != 4:
            raise InvalidMeshState(f"backend address {self.ip} is not IPv4 (the mesh is IPv4 only)")
        if not 1 <= self.port <= 65535:
            raise InvalidMeshState(f"backend port {self.port} is outside 1-65535")

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


MeshState: TypeAlias = Mapping[PublishedPort, Sequence[Backend]]


def normalize(state: MeshState) -> dict[PublishedPort, tuple[Backend, ...]]:
    """Canonical form of a state: backends de-duplicated and sorted, so equal intents compare equal
    and generated rules do not churn when the caller's list order changes."""
    port_numbers: dict[tuple[int, IpProtocol], PublishedPort] = {}
    result: dict[PublishedPort, tuple[Backend, ...]] = {}
    for published in sorted(state):
        key = (published.port, published.protocol)
        if key in port_numbers:
            raise InvalidMeshState(
                f"port {published.port}/{published.protocol} is published both as "
                f"{port_numbers[key].mode} and {published.mode}"
            )
        port_numbers[key] = published
        result[published] = tuple(sorted(set(state[published])))
    return result


def ingress_ports(state: MeshState) -> dict[PublishedPort, tuple[Backend, ...]]:
    """The part of a state the mesh routes itself (host-mode ports are bound by the workload)."""
    return {p: b for p, b in normalize(state).items() if p.mode == "ingress"}


def mesh_state(entries: Iterable[tuple[PublishedPort, Iterable[Backend]]]) -> dict[PublishedPort, list[Backend]]:
    """Build a state from (port, backends) pairs, merging repeated ports (e.g. one per task)."""
    merged: dict[PublishedPort, list[Backend]] = {}
    for published, backends in entries:
        merged.setdefault(published, []).extend(backends)
    return merged
