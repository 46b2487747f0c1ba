"""The routing mesh of one node: every ingress-mode published port accepts TCP/UDP on all of the node's
addresses (127.0.0.1 included) and spreads new connections over the service's running tasks.

    mesh = await open_mesh("node-1")            # kernel path when root + iptables work, else proxy
    await mesh.apply({PublishedPort(8080): [Backend("10.0.0.2", 80), Backend("10.0.0.3", 80)]})
    await mesh.close(keep_kernel_rules=True)     # kernel rules keep serving while shoald is down
"""

from shoal.network.mesh.factory import kernel_path_unavailable, open_mesh
from shoal.network.mesh.kernel import KernelMesh, remove_kernel_rules
from shoal.network.mesh.protocol import Mesh, MeshError, MeshKind
from shoal.network.mesh.state import (
    Backend,
    InvalidMeshState,
    MeshState,
    PublishedPort,
    mesh_state,
)
from shoal.network.mesh.userspace import UserspaceMesh

__all__ = [
    "Backend",
    "InvalidMeshState",
    "KernelMesh",
    "Mesh",
    "MeshError",
    "MeshKind",
    "MeshState",
    "PublishedPort",
    "UserspaceMesh",
    "kernel_path_unavailable",
    "mesh_state",
    "open_mesh",
    "remove_kernel_rules",
]
