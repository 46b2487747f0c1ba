"""What every oci controller of one executor shares, beside the process executor's context (state
dir, network, shim): the image source, the OCI runtime and its state root, volumes, the seccomp
profile and the init binary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.executor.oci.source import ImageSource
from shoal.executor.oci.volumes import LocalVolumes


@dataclass(frozen=True)
class OciContext:
    images: ImageSource
    runtime: str  # path of crun or runc
    runtime_root: Path  # the runtime's --root: its per-container state (on tmpfs: gone after a reboot)
    volumes: LocalVolumes
    seccomp_profile: Mapping[str, Any] | None  # Docker's format; None: unconfined (package missing)
    init_binary: Path | None  # tini (docker-init), for --init
    cgroup_parent: str  # cgroupsPath prefix for the runtime

    def runtime_argv(self, *args: str) -> list[str]:
        return [self.runtime, "--root", str(self.runtime_root), *args]

    def runtime_argv_with_log(self, log: Path, *args: str) -> list[str]:
        """As runtime_argv, the runtime's own errors going to `log` as JSON lines (not the task's
        stderr, which it shares with the container)."""
        return [self.runtime, "--root", str(self.runtime_root), "--log", str(log), "--log-format", "json", *args]
