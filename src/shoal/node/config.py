"""The daemon's settings: dockerd-like flags, so several daemons can share one machine."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shoal.api import errors

DEFAULT_SOCKET = "unix:///var/run/shoal.sock"
DEFAULT_DATA_ROOT = "/var/lib/shoal"
DEFAULT_LISTEN_ADDR = "0.0.0.0:2377"
DEFAULT_TCP_HOST = "localhost"
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_TCP_PORT = 2376


def default_cert_dir() -> Path:
    """Where dockerd looks for ca.pem, cert.pem and key.pem when --tlscacert/--tlscert/--tlskey are not given."""
    explicit = os.environ.get("DOCKER_CERT_PATH")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


@dataclass(frozen=True)
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    executor: str = "process"
    executor_reason: str = "as configured"  # why this executor (shoald logs it at start)
    docker_host: str = "unix:///var/run/docker.sock"
    log_level: str = "info"
    listen_addr: str = DEFAULT_LISTEN_ADDR
    node_name: str = ""
    # The Engine API's TLS, as dockerd's flags. None means the flag was not given: dockerd tells "not
    # given" from "given as false" (only an explicit choice may serve TCP without client certificates).
    tls: bool | None = None
    tls_verify: bool | None = None
    tls_ca_cert: Path = field(default_factory=lambda: default_cert_dir() / "ca.pem")
    tls_cert: Path = field(default_factory=lambda: default_cert_dir() / "cert.pem")
    tls_key: Path = field(default_factory=lambda: default_cert_dir() / "key.pem")
    repair_raft_log: bool = False
    """Cut a damaged raft log at the damage and start; entries after it are lost."""

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

    @property
    def api_tls(self) -> bool:
        """TCP listeners speak TLS: --tls, or --tlsverify given at all (even =false, as dockerd)."""
        return self.tls_verify is not None or bool(self.tls)

    @property
    def api_verify_clients(self) -> bool:
        """Clients must show a certificate from --tlscacert. As dockerd (since 20.10), TLS verifies
        clients unless --tlsverify=false says otherwise, so `--tls` alone verifies too."""
        return self.api_tls and self.tls_verify is not False

    @property
    def tls_chosen_explicitly(self) -> bool:
        """dockerd's checkTLSAuthOK: the user said something about TLS (--tls=false included)."""
        return self.tls is not None or self.tls_verify is not None


def normalize_host(address: str, *, tls: bool) -> str:
    """A -H value in dockerd's forms: `unix:///path`, `tcp://HOST:PORT`, or `HOST:PORT` (tcp). A TCP
    address without a host means localhost, without a port 2375 (2376 with TLS), as dockerd."""
    address = address.strip()
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme == "unix":
        return f"unix://{rest}" if rest else DEFAULT_SOCKET
    if scheme != "tcp":
        raise errors.InvalidArgument(f"invalid bind address ({address}): unsupported proto '{scheme}'")
    try:
        parts = urlsplit(f"tcp://{rest}")
        port = parts.port
    except ValueError as exc:
        raise errors.InvalidArgument(f"invalid bind address ({address}): {exc}") from None
    if parts.path or parts.query or parts.fragment:
        raise errors.InvalidArgument(f"invalid bind address ({address}): should not contain a path element")
    host = parts.hostname or DEFAULT_TCP_HOST
    if port is None:
        port = DEFAULT_TLS_TCP_PORT if tls else DEFAULT_TCP_PORT
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether a listen host only reaches this machine. Names are resolved (dockerd does too); a name
    that does not resolve, or resolves to any non-loopback address, counts as reachable from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def unauthenticated_tcp_hosts(config: DaemonConfig) -> list[str]:
    """The TCP hosts that would serve the API to anyone who reaches them (no client certificates).

    Raises InvalidArgument for such a host on a non-loopback address unless the user chose TLS
    settings explicitly (`--tls=false`, `--tlsverify=false`): Docker deprecated unauthenticated TCP
    (v26) for removal, and its daemon names those two flags as the way to say you mean it."""
    if config.api_verify_clients:
        return []
    exposed = [host for host in config.hosts if host.startswith("tcp://")]
    if config.tls_chosen_explicitly:
        return exposed
    for host in exposed:
        hostname = urlsplit(host).hostname or ""
        if not is_loopback(hostname):
            raise errors.InvalidArgument(
                f"refusing to serve the API on {host} without TLS client verification: anyone who can reach "
                "it gets root on this machine. Use --tlsverify with --tlscacert, --tlscert and --tlskey, or "
                "pass --tls=false (or --tlsverify=false) to say you mean it"
            )
    return exposed
