"""What every part of the NodeBackend shares: the node it serves, the stores it reads, and `on_leader`,
which runs a control call on the Raft leader (forwarding it there from a follower).

NodeBackend is composed of one mixin per kind of object (backend_secrets, backend_networks,
backend_containers, backend_logs); each subclasses BackendBase for these helpers."""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shoal.api import errors
from shoal.controlapi.cluster import ClusterControl
from shoal.controlapi.nodes import NodeControl
from shoal.controlapi.services import ServiceControl
from shoal.engineapi.backend import SwarmUpdateFlags
from shoal.images.service import ImageService
from shoal.node.engine_images import EngineImages
from shoal.node.local_tasks import LocalTasks
from shoal.node.node import Node
from shoal.store.memory import MemoryStore

Json = dict[str, Any]


def not_yet(what: str) -> errors.NotImplementedYet:
    return errors.NotImplementedYet(f"{what} are not supported by shoal yet")


# Set while a call forwarded by another manager runs here: it runs locally, never forwarded again.
_FORWARDED: contextvars.ContextVar[bool] = contextvars.ContextVar("forwarded", default=False)
_ARG_TYPES: dict[str, type[Any]] = {"SwarmUpdateFlags": SwarmUpdateFlags}
_ON_LEADER: set[str] = set()
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _encode_arg(arg: Any) -> Any:
    if dataclasses.is_dataclass(arg) and not isinstance(arg, type):
        return {"__type__": type(arg).__name__, "fields": dataclasses.asdict(arg)}
    return arg


def _decode_arg(arg: Any) -> Any:
    if isinstance(arg, dict) and "__type__" in arg:
        kind = _ARG_TYPES.get(str(arg["__type__"]))
        if kind is None or not isinstance(arg.get("fields"), dict):
            raise errors.InvalidArgument(f"malformed forwarded argument of type {arg['__type__']!r}")
        return kind(**arg["fields"])
    return arg


def on_leader(method: F) -> F:
    """Run the call on the Raft leader: here when this manager leads, else forwarded to it (the
    control API's writes, and the node listing whose reachability only the leader knows)."""
    _ON_LEADER.add(method.__name__)

    @functools.wraps(method)
    async def run(self: BackendBase, *args: Any, **kwargs: Any) -> Any:
        manager = self._node.require_manager()
        if manager.is_leader() or _FORWARDED.get():
            return await method(self, *args, **kwargs)
        return await manager.forward_control(method.__name__, [_encode_arg(arg) for arg in args],
                                             {name: _encode_arg(arg) for name, arg in kwargs.items()})

    return run  # type: ignore[return-value]


class BackendBase:
    """State and helpers shared by the backend's mixins (NodeBackend sets them up)."""

    _node: Node
    _images: ImageService | EngineImages | None  # the node's image store (shared with oci), or dockerd's
    _local: LocalTasks

    async def _serve_forwarded(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A control call another manager forwarded to this one (the leader)."""
        if method not in _ON_LEADER:
            raise errors.InvalidArgument(f"{method} is not a control call")
        token = _FORWARDED.set(True)
        try:
            return await getattr(self, method)(*(_decode_arg(arg) for arg in args),
                                               **{name: _decode_arg(arg) for name, arg in kwargs.items()})
        finally:
            _FORWARDED.reset(token)

    def _store(self) -> MemoryStore:
        return self._node.require_manager().store

    def _services(self) -> ServiceControl:
        store = self._store()
        return ServiceControl(store, self._node.clock)

    def _nodes(self) -> NodeControl:
        store = self._store()
        return NodeControl(store)

    def _cluster(self) -> ClusterControl:
        store = self._store()
        return ClusterControl(store, self._node.clock)
