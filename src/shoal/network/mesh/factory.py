"""Choosing the mesh implementation when the node starts."""

from __future__ import annotations

import logging
import os
from typing import Literal

from shoal.network.mesh.commands import IptablesCommands
from shoal.network.mesh.kernel import KernelMesh
from shoal.network.mesh.protocol import Mesh, MeshError
from shoal.network.mesh.userspace import UserspaceMesh

log = logging.getLogger(__name__)

Preference = Literal["auto", "kernel", "userspace"]


def kernel_path_unavailable() -> str | None:
    """Why the kernel path cannot be tried here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root"
    if not IptablesCommands.available():
        return "iptables-save/iptables-restore not found"
    return None


async def open_mesh(instance: str, prefer: Preference = "auto") -> Mesh:
    """The node's mesh, started. `instance` names this daemon's kernel chains (unique per daemon on
    a machine). "auto" takes the kernel path when it works and falls back to the userspace proxy;
    "kernel" raises MeshError instead of falling back."""
    if prefer != "userspace":
        reason = kernel_path_unavailable()
        if reason is None:
            kernel = KernelMesh(instance)
            try:
                await kernel.start()
                return kernel
            except MeshError as exc:
                reason = str(exc)
        if prefer == "kernel":
            raise MeshError(f"kernel mesh unavailable: {reason}")
        log.warning("routing mesh: userspace proxy (%s)", reason)
    proxy = UserspaceMesh()
    await proxy.start()
    return proxy
