"""Choosing the mesh implementation when the node starts."""

from __future__ import annotations

import logging
import os
from typing import Literal

from shoal.network.mesh.commands import CommandFailed, IptablesCommands
from shoal.network.mesh.kernel import KernelMesh, remove_kernel_rules
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
    """The node's mesh, started. `instance` names this daemon's kernel chains: keep it stable across
    restarts (so stale rules get replaced) and unique per daemon sharing a network namespace. "auto"
    takes the kernel path when it works and falls back to the userspace proxy; "kernel" raises
    MeshError instead of falling back."""
    reason = kernel_path_unavailable()
    if prefer != "userspace":
        failure = f"kernel mesh unavailable: {reason}"
        if reason is None:
            kernel = KernelMesh(instance)
            try:
                await kernel.start()
                return kernel
            except MeshError as exc:
                failure = str(exc)
        if prefer == "kernel":
            raise MeshError(failure)
        log.warning("routing mesh: using the userspace proxy (%s)", failure)
    if reason is None:
        # Rules of an earlier run on the kernel path would catch the proxy's traffic.
        try:
            await remove_kernel_rules(instance)
        except CommandFailed as exc:
            log.warning("could not remove kernel mesh rules of an earlier run: %s", exc)
    proxy = UserspaceMesh()
    await proxy.start()
    return proxy
