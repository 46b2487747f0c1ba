"""Names of the iptables chains one shoald instance owns.

Every name starts with SHOAL-<TAG>-, where TAG is derived from the daemon's instance name, so
several daemons on one machine (cluster tests) never touch each other's rules. iptables limits a
chain name to 28 characters; the longest we make is SHOAL- + 10 + -T65535 = 23."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from shoal.network.mesh.state import PublishedPort

_TAG_MAX = 10
_NOT_TAG_CHAR = re.compile(r"[^A-Z0-9]")


def instance_tag(instance: str) -> str:
    """A short chain-safe tag for an instance name; names that do not fit as they are get a hash
    suffix so two different names never share a tag."""
    upper = instance.upper()
    cleaned = _NOT_TAG_CHAR.sub("", upper)
    if cleaned and cleaned == upper and len(cleaned) <= _TAG_MAX:
        return cleaned
    digest = hashlib.sha256(instance.encode()).hexdigest()[:6].upper()
    return cleaned[:4] + digest


@dataclass(frozen=True)
class ChainNames:
    prefix: str  # "SHOAL-<TAG>"

    @classmethod
    def for_instance(cls, instance: str) -> ChainNames:
        return cls(f"SHOAL-{instance_tag(instance)}")

    @property
    def mesh(self) -> str:
        """nat: entered from PREROUTING and OUTPUT for local destinations; one rule per port."""
        return f"{self.prefix}-MESH"

    @property
    def postrouting(self) -> str:
        """nat: masquerades mesh connections on their way to a backend."""
        return f"{self.prefix}-POST"

    @property
    def forward(self) -> str:
        """filter: accepts forwarded mesh connections (docker sets FORWARD's policy to DROP)."""
        return f"{self.prefix}-FWD"

    def port_chain(self, published: PublishedPort) -> str:
        """nat: spreads one published port's new connections over its backends."""
        letter = "T" if published.protocol == "tcp" else "U"
        return f"{self.prefix}-{letter}{published.port}"

    def owns(self, chain: str) -> bool:
        return chain.startswith(self.prefix + "-")
