"""The /etc files an isolated task sees instead of the host's (pure text builders)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # what Docker falls back to


def hosts_file(
    hostname: str, address: str | None, extra: Sequence[tuple[str, Sequence[str]]] = ()
) -> str:
    """localhost, then the extra hosts (--host), then the task's own name, in Docker's order."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{' '.join(names)}" for ip, names in extra]
    if address:
        lines.append(f"{address}\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(
    host_text: str,
    nameservers: Sequence[str] | None = None,
    search: Sequence[str] = (),
    options: Sequence[str] = (),
) -> str:
    """The host's resolv.conf for a task in its own network namespace: `nameservers` if given (an
    embedded DNS, or --dns), else the host's minus loopback ones (unreachable from the task), else
    Docker's fallback. search/options lines are kept unless `search`/`options` (--dns-search,
    --dns-option) replace them, as Docker does."""
    kept: list[str] = []
    host_servers: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            host_servers.append(words[1])
        elif words and not words[0].startswith(("#", ";")):
            if (words[0] == "search" and search) or (words[0] == "options" and options):
                continue
            kept.append(line.strip())
    servers = list(nameservers) if nameservers else [s for s in host_servers if not _is_loopback(s)]
    if not servers:
        servers = list(FALLBACK_NAMESERVERS)
    if search:
        kept.append("search " + " ".join(search))
    if options:
        kept.append("options " + " ".join(options))
    return "".join(f"nameserver {s}\n" for s in servers) + "".join(f"{line}\n" for line in kept)


def _is_loopback(server: str) -> bool:
    try:
        return ipaddress.ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return False
