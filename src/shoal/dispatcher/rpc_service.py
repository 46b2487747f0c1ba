"""The dispatcher on the cluster port. Agents (local or remote) hold their session through these
routes; the node a call comes from is the one its certificate names, never one it claims.

Only the leader runs a dispatcher. Any manager answers where the leader is (``LEADER_PATH``); the
other routes, on a manager that does not lead, answer Unavailable so the agent finds the leader again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.api import errors
from shoal.api.dispatch import StatusUpdate
from shoal.api.dispatch_wire import (
    ASSIGNMENTS_PATH,
    HEARTBEAT_PATH,
    LEADER_PATH,
    REGISTER_PATH,
    STATUS_PATH,
    AssignmentDiffer,
)
from shoal.dispatcher.dispatcher import Dispatcher
from shoal.rpc.identity import Access
from shoal.rpc.leader import Leadership
from shoal.rpc.server import Caller, RpcServer
from shoal.rpc.stream import MessageStream

NOT_LEADER = "node must disconnect: this manager is not the leader"


def _node_of(caller: Caller) -> str:
    assert caller.identity is not None  # Access.NODE admits only callers with a certificate
    return caller.identity.node_id


def _field(body: Any, name: str, kind: type) -> Any:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise errors.InvalidArgument(f"malformed dispatcher request: {name} must be {kind.__name__}")
    return value


class DispatcherService:
    def __init__(self, current: Callable[[], Dispatcher | None], leadership: Leadership,
                 managers: Callable[[], list[str]]) -> None:
        """``current()`` is the leader's dispatcher while this manager leads, else None;
        ``managers()`` the cluster-port addresses of every manager, for agents to fail over."""
        self._current = current
        self._leadership = leadership
        self._managers = managers

    def register(self, server: RpcServer) -> None:
        server.unary(LEADER_PATH, Access.NODE, self._leader)
        server.unary(REGISTER_PATH, Access.NODE, self._register)
        server.unary(HEARTBEAT_PATH, Access.NODE, self._heartbeat)
        server.unary(STATUS_PATH, Access.NODE, self._status)
        server.stream(ASSIGNMENTS_PATH, Access.NODE, self._assignments)

    def _dispatcher(self) -> Dispatcher:
        dispatcher = self._current()
        if dispatcher is None:
            raise errors.Unavailable(NOT_LEADER)
        return dispatcher

    async def _leader(self, caller: Caller, body: Any) -> Any:
        return {"leader": self._leadership.leader_address(), "managers": self._managers()}

    async def _register(self, caller: Caller, body: Any) -> Any:
        description = _field(body, "description", dict)
        addr = _field(body, "addr", str)
        if addr in ("", "0.0.0.0"):
            addr = caller.remote
        session = await self._dispatcher().register(_node_of(caller), description, addr)
        return {"session_id": session.session_id, "period": session.heartbeat_period, "managers": self._managers()}

    async def _heartbeat(self, caller: Caller, body: Any) -> Any:
        period = await self._dispatcher().heartbeat(_node_of(caller), _field(body, "session_id", str))
        return {"period": period}

    async def _status(self, caller: Caller, body: Any) -> Any:
        raw = _field(body, "updates", list)
        updates = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and isinstance(item[1], dict)):
                raise errors.InvalidArgument("malformed dispatcher request: updates must be [task id, status] pairs")
            updates.append(StatusUpdate(item[0], item[1]))
        await self._dispatcher().update_status(_node_of(caller), _field(body, "session_id", str), updates)
        return None

    async def _assignments(self, caller: Caller, stream: MessageStream) -> None:
        session_id = _field(await stream.recv(timeout=10.0), "session_id", str)
        dispatcher = self._dispatcher()
        differ = AssignmentDiffer()
        async for assignments in dispatcher.assignments(_node_of(caller), session_id):
            if self._current() is not dispatcher:
                raise errors.Unavailable(NOT_LEADER)
            message = differ.message(assignments.tasks, assignments.node, secrets=assignments.secrets,
                                     configs=assignments.configs)
            if message is not None:
                await stream.send(message)
