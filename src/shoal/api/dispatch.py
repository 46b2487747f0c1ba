"""What an agent and a dispatcher say to each other. Both sides import this; neither imports the
other, so the same agent runs against a dispatcher in the same process or across the cluster port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from shoal.api.objects import Obj


@dataclass(frozen=True)
class StatusUpdate:
    """A task's observed status as the agent saw it (Task.Status in Docker's shape)."""

    task_id: str
    status: Obj


@dataclass(frozen=True)
class Assignments:
    """Every task the managers have placed on this node, keyed by id. A task that disappears from
    the set has been deleted: its container can go. ``node`` is this node's own object as the
    managers hold it (its desired role and availability), when the dispatcher sends it.

    ``secrets`` and ``configs`` (by id, in the API's shape with their base64 Data) are exactly those
    the node's unfinished tasks reference, as Swarm sends them: a node never holds another node's."""

    tasks: dict[str, Obj]
    node: Obj | None = None
    secrets: dict[str, Obj] = field(default_factory=dict)
    configs: dict[str, Obj] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    session_id: str
    heartbeat_period: float  # seconds between heartbeats the dispatcher expects


class DispatcherClient(Protocol):
    """Refusals are shoal.api.errors with swarmkit's texts: NotFound "node not found" (register) and
    "node not registered", InvalidArgument "session invalid" (register again), Forbidden "cannot
    update a task not assigned this node"."""

    async def register(self, node_id: str, description: Obj, addr: str) -> Session: ...

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        """Returns the period until the next heartbeat is due."""
        ...

    def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]: ...

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None: ...
