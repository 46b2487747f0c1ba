"""The daemon's settings: dockerd-like flags, so several daemons can share one machine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SOCKET = "unix:///var/run/shoal.sock"
DEFAULT_DATA_ROOT = "/var/lib/shoal"
DEFAULT_LISTEN_ADDR = "0.0.0.0:2377"


@dataclass(frozen=True)
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    executor: str = "process"
    docker_host: str = "unix:///var/run/docker.sock"
    log_level: str = "info"
    listen_addr: str = DEFAULT_LISTEN_ADDR
    node_name: str = ""

    @property
    def instance(self) -> str:
        """A short name unique to this daemon's data root, for host-wide resources (iptables chains,
        bridges, container labels) that several daemons on one machine must not share."""
        return hashlib.sha256(str(self.data_root.resolve()).encode()).hexdigest()[:8]

    @property
    def executor_dir(self) -> Path:
        return self.data_root / "executor" / self.executor

    @property
    def swarm_dir(self) -> Path:
        return self.data_root / "swarm"
