"""The /etc files an isolated task sees instead of the host's (pure text builders)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # what Docker falls back to


def hosts_file(hostname: str, address: str | None) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if address:
        lines.append(f"{address}\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(host_text: str, nameservers: Sequence[str] | None = None) -> str:
    """The host's resolv.conf for a task in its own network namespace: `nameservers` if given (an
    embedded DNS), else the host's minus loopback ones (unreachable from the task), else Docker's
    fallback. search/options lines are kept."""
    kept: list[str] = []
    host_servers: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            host_servers.append(words[1])
        elif words and not words[0].startswith(("#", ";")):
            kept.append(line.strip())
    servers = list(nameservers) if nameservers else [s for s in host_servers if not _is_loopback(s)]
    if not servers:
        servers = list(FALLBACK_NAMESERVERS)
    return "".join(f"nameserver {s}\n" for s in servers) + "".join(f"{line}\n" for line in kept)


def _is_loopback(server: str) -> bool:
    try:
        return ipaddress.ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return False
