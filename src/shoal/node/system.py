"""`GET /version` and `GET /info` bodies: this host's facts plus the Swarm block the CLI prints."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import shoal
from shoal.engineapi.constants import API_VERSION, ENGINE_VERSION, MIN_API_VERSION

GIT_COMMIT = "shoal"


def kernel_version() -> str:
    return platform.release()


def operating_system() -> str:
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def memory_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def version_body() -> dict[str, Any]:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    details = {
        "ApiVersion": API_VERSION, "Arch": arch, "BuildTime": "", "Experimental": "false",
        "GitCommit": GIT_COMMIT, "GoVersion": f"python{platform.python_version()}",
        "KernelVersion": kernel_version(), "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
    }
    return {
        "Platform": {"Name": "shoal"},
        "Components": [
            {"Name": "Engine", "Version": ENGINE_VERSION, "Details": details},
            {"Name": "shoal", "Version": shoal.__version__, "Details": {"GitCommit": GIT_COMMIT}},
        ],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }


def info_body(*, node_name: str, data_root: str, executor: str, containers: list[dict[str, Any]],
              swarm: dict[str, Any], daemon_id: str) -> dict[str, Any]:
    running = sum(1 for c in containers if c.get("State") == "running")
    return {
        "ID": daemon_id,
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(containers) - running,
        "Images": 0,
        "Driver": executor,
        "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null", "overlay"], "Log": ["json-file"]},
        "MemoryLimit": True,
        "SwapLimit": False,
        "Debug": False,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": "",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "KernelVersion": kernel_version(),
        "OperatingSystem": operating_system(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": memory_total(),
        "DockerRootDir": data_root,
        "Name": node_name or socket.gethostname(),
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {executor: {"path": executor}},
        "DefaultRuntime": executor,
        "Swarm": swarm,
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": [],
        "Warnings": None,
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
    }


INACTIVE_SWARM: dict[str, Any] = {
    "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
    "RemoteManagers": None,
}


def locked_swarm(node_addr: str, error: str) -> dict[str, Any]:
    """The Swarm block of a manager waiting for its unlock key (as dockerd's: no node id, no control)."""
    return {
        "NodeID": "", "NodeAddr": node_addr, "LocalNodeState": "locked", "ControlAvailable": False,
        "Error": error, "RemoteManagers": None,
    }
