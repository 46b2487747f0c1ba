"""An agent's dispatcher across the cluster port: it finds the leader through any manager it knows,
keeps the session there, and learns the current manager list from every registration so it can fail
over when the leader changes or goes away."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from shoal.api import errors
from shoal.api.dispatch import Assignments, Session, StatusUpdate
from shoal.api.dispatch_wire import (
    ASSIGNMENTS_PATH,
    HEARTBEAT_PATH,
    LEADER_PATH,
    REGISTER_PATH,
    STATUS_PATH,
    AssignmentReceiver,
)
from shoal.api.objects import Obj
from shoal.rpc.client import RpcClient

log = logging.getLogger(__name__)
CALL_TIMEOUT = 5.0


class RemoteDispatcher:
    def __init__(self, client: RpcClient, managers: list[str],
                 on_managers: Callable[[list[str]], None] | None = None) -> None:
        """``managers``: cluster-port addresses to start from; ``on_managers`` is told each new list
        (the node keeps it on disk, so a restart can find the cluster again)."""
        if not managers:
            raise ValueError("a remote dispatcher needs at least one manager address")
        self._client = client
        self._managers = list(managers)
        self._on_managers = on_managers
        self._leader: str | None = None

    def set_client(self, client: RpcClient) -> None:
        """Dial with another client from now on (the node's certificate was renewed)."""
        self._client = client

    @property
    def managers(self) -> list[str]:
        return list(self._managers)

    @property
    def leader(self) -> str | None:
        return self._leader

    def _learn(self, managers: Any) -> None:
        well_formed = isinstance(managers, list) and managers and all(isinstance(m, str) for m in managers)
        if well_formed and managers != self._managers:
            self._managers = list(managers)
            if self._on_managers is not None:
                self._on_managers(self.managers)

    async def _find_leader(self) -> str:
        last: errors.ShoalError = errors.Unavailable("no manager known")
        for address in list(self._managers):
            try:
                reply = await self._client.call(address, LEADER_PATH, None, timeout=CALL_TIMEOUT)
            except errors.Unavailable as exc:
                last = exc
                continue
            self._learn(reply.get("managers"))
            leader = reply.get("leader")
            if isinstance(leader, str) and leader:
                return leader
            last = errors.Unavailable(f"{address} knows no leader")
        raise last

    def _session_target(self) -> str:
        if self._leader is None:
            raise errors.Unavailable("no session: register first")
        return self._leader

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        self._leader = None
        leader = await self._find_leader()
        reply = await self._client.call(leader, REGISTER_PATH, {"description": description, "addr": addr},
                                        timeout=CALL_TIMEOUT * 2)
        self._leader = leader
        self._learn(reply.get("managers"))
        log.info("agent session with the leader at %s", leader)
        return Session(str(reply["session_id"]), float(reply["period"]))

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        reply = await self._client.call(self._session_target(), HEARTBEAT_PATH, {"session_id": session_id},
                                        timeout=CALL_TIMEOUT)
        return float(reply["period"])

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None:
        body = {"session_id": session_id, "updates": [[u.task_id, u.status] for u in updates]}
        await self._client.call(self._session_target(), STATUS_PATH, body, timeout=CALL_TIMEOUT)

    async def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]:
        stream = await self._client.stream(self._session_target(), ASSIGNMENTS_PATH)
        try:
            await stream.send({"session_id": session_id})
            receiver = AssignmentReceiver()
            while True:
                tasks = receiver.apply(await stream.recv())
                yield Assignments(tasks, receiver.node, receiver.current("secrets"), receiver.current("configs"))
        finally:
            await stream.close()
