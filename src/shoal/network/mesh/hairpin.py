"""Hairpin mode on the bridge ports behind the mesh's backends.

With br_netfilter loaded (docker loads it), a packet that enters a bridge and is DNATed to a host on
the same bridge is bridged, not routed: when a task reaches its own service through the mesh and the
turn falls on itself, the frame must leave through the port it came in on, which a bridge refuses
unless that port is in hairpin mode (CNI's bridge plugin sets it for kube-proxy for the same reason).
So for each backend reached through a local bridge, the kernel path turns hairpin mode on for the
bridge's ports."""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    interface: str
    network: ipaddress.IPv4Network
    metric: int


def _hex_ip(field: str) -> ipaddress.IPv4Address:
    # /proc/net/route prints addresses as host-order (little-endian here) hex words.
    return ipaddress.IPv4Address(socket.inet_ntoa(struct.pack("<L", int(field, 16))))


def parse_routes(text: str) -> list[Route]:
    """The main table from /proc/net/route."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination, mask = _hex_ip(fields[1]), _hex_ip(fields[7])
        network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        routes.append(Route(fields[0], network, int(fields[6])))
    return routes


def interface_for(ip: str, routes: Iterable[Route]) -> str | None:
    """The interface the longest matching route sends `ip` through (lowest metric on ties)."""
    address = ipaddress.IPv4Address(ip)
    matching = [r for r in routes if address in r.network]
    if not matching:
        return None
    best = max(matching, key=lambda r: (r.network.prefixlen, -r.metric))
    return best.interface


class Hairpin:
    def __init__(self, proc_route: Path = Path("/proc/net/route"), sys_net: Path = Path("/sys/class/net")):
        self.proc_route = proc_route
        self.sys_net = sys_net

    def ensure(self, backend_ips: Iterable[str]) -> list[str]:
        """Turn hairpin mode on for every port of the bridges the backends sit behind; returns the
        ports changed. Best effort: failures are logged, never raised."""
        try:
            routes = parse_routes(self.proc_route.read_text())
        except OSError as exc:
            log.warning("hairpin: cannot read routes: %s", exc)
            return []
        bridges = {interface_for(ip, routes) for ip in backend_ips}
        changed = []
        for bridge in sorted(b for b in bridges if b and (self.sys_net / b / "bridge").is_dir()):
            for port_flag in sorted((self.sys_net / bridge / "brif").glob("*/hairpin_mode")):
                try:
                    if port_flag.read_text().strip() != "1":
                        port_flag.write_text("1\n")
                        changed.append(port_flag.parent.name)
                except OSError as exc:  # the port went away meanwhile, or sysfs is read-only
                    log.debug("hairpin: %s: %s", port_flag, exc)
        return changed
