"""What the node sees of the routing mesh, whichever implementation serves it."""

from __future__ import annotations

from typing import Literal, Protocol, TypeAlias

from shoal.network.mesh.state import Backend, MeshState, PublishedPort

MeshKind: TypeAlias = Literal["kernel", "userspace"]


class MeshError(RuntimeError):
    """apply() could not make the node match the state; what could be applied was."""


class Mesh(Protocol):
    @property
    def kind(self) -> MeshKind: ...

    @property
    def applied(self) -> dict[PublishedPort, tuple[Backend, ...]]:
        """The last state apply() made real (normalized; host-mode ports recorded, not routed)."""
        ...

    async def apply(self, state: MeshState) -> None:
        """Make the node match `state`: every ingress port accepts on all local addresses and
        spreads new connections over its backends. Idempotent; call it whenever running tasks or
        published ports change. Raises InvalidMeshState (nothing changed) or MeshError."""
        ...

    async def close(self, keep_kernel_rules: bool = True) -> None:
        """Stop managing the mesh. The kernel path leaves its rules serving unless told not to;
        the userspace proxy always stops listening."""
        ...
