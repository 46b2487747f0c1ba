"""Cluster-port addresses: how a node's listen and advertise settings become the address its peers
dial ("host:port", port 2377 unless given)."""

from __future__ import annotations

import socket
from typing import Any

CLUSTER_PORT = 2377


def detect_advertise_addr() -> str:
    """The address other hosts would reach us on: the source address of the default route."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for a UDP connect
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def advertise_addr(request: dict[str, Any], listen: str) -> str:
    """The address other nodes reach this one on: as asked, else the listen address's host when it
    names one (as Swarm does), else the source address of the default route."""
    asked = host_part(str(request.get("AdvertiseAddr") or ""))
    if asked:
        return asked
    host = split(listen)[0]
    return host if host not in ("0.0.0.0", "::", "[::]") else detect_advertise_addr()


def member_address(advertise: str, listen: str) -> str:
    return f"{advertise}:{split(listen)[1] or CLUSTER_PORT}"


def host_part(addr: str) -> str:
    if not addr:
        return ""
    host, sep, port = addr.rpartition(":")
    return host if sep and port.isdigit() else addr


def split(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if sep and port.isdigit():
        return host or "0.0.0.0", int(port)
    return addr or "0.0.0.0", CLUSTER_PORT


def with_port(addr: str) -> str:
    host, port = split(addr)
    return f"{host}:{port}"
