"""A blocking GET /info, with the standard library only. `Executor.capabilities`
is a plain property, so the first read of it cannot await; this answers in a few milliseconds."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from shoal.executor.base import (
    CAP_ADOPT,
    CAP_CPU_LIMIT,
    CAP_EXEC,
    CAP_HOSTNAME,
    CAP_ISOLATION,
    CAP_MEMORY_LIMIT,
    CAP_PIDS_LIMIT,
    CAP_TASK_ADDRESS,
    CAP_USER,
    Capabilities,
)
from shoal.executor.docker.address import EngineAddress

_PROBE_TIMEOUT_S = 5.0

ALWAYS = frozenset({CAP_ADOPT, CAP_EXEC, CAP_HOSTNAME, CAP_ISOLATION, CAP_TASK_ADDRESS, CAP_USER})
# /info flags that say whether the kernel's cgroups let the engine enforce each limit.
LIMIT_FLAGS = {
    CAP_MEMORY_LIMIT: "MemoryLimit",
    CAP_PIDS_LIMIT: "PidsLimit",
    CAP_CPU_LIMIT: "CpuCfsQuota",
}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("docker", timeout=_PROBE_TIMEOUT_S)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_PROBE_TIMEOUT_S)
        sock.connect(self._socket_path)
        self.sock = sock


def _connection(address: EngineAddress) -> http.client.HTTPConnection:
    if address.unix_path is not None:
        return _UnixConnection(address.unix_path)
    return http.client.HTTPConnection(str(address.host), address.port, timeout=_PROBE_TIMEOUT_S)


def engine_info_blocking(host: str) -> dict[str, Any] | None:
    """GET /info, or None if the engine does not answer. `host` as EngineClient takes it."""
    try:
        connection = _connection(EngineAddress.parse(host))
    except ValueError:
        return None
    try:
        connection.request("GET", "/info")
        response = connection.getresponse()
        if response.status != 200:
            return None
        decoded = json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return decoded if isinstance(decoded, dict) else None


def capabilities_from_info(info: dict[str, Any] | None, *, network: str = "bridge") -> Capabilities:
    """Everything but the limits the engine reports it cannot enforce. An engine that does not answer
    gets the benefit of the doubt: its calls will fail with a clear error anyway. On the host's
    network, tasks share the node's addresses."""
    supported = set(ALWAYS)
    missing: dict[str, str] = {}
    if network == "host":
        supported.discard(CAP_TASK_ADDRESS)
        missing[CAP_TASK_ADDRESS] = "task containers use the host's network (network=host)"
    for capability, flag in LIMIT_FLAGS.items():
        if info is None or info.get(flag, True):
            supported.add(capability)
        else:
            missing[capability] = f"the Docker Engine reports {flag}=false (no cgroup support on this host)"
    return Capabilities(supported=frozenset(supported), missing=missing)
