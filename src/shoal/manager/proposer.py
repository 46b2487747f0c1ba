"""RaftProposer: the store's Proposer protocol on top of a RaftNode (bytes in, raft index out).

Each payload is wrapped with a request id unique to this process, so that when the entry comes back
through the apply path the proposal waiting for it is found. ``propose`` returns only once the entry
is committed and applied locally. Every committed entry, including those proposed on other members,
goes to the store's apply callback in index order.

Two failures, told apart because a client must handle them differently:

* ``NotLeader``: the payload was never appended; it certainly was not written (safe to retry).
* ``LostLeadership``: it was appended, then this member lost leadership before it was applied; it
  may still commit under the next leader (outcome unknown).

Both are ``shoal.api.errors.Unavailable``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable

from shoal.api.errors import Unavailable
from shoal.manager.raftnode import LeadershipChange, RaftNode
from shoal.raft.errors import ProposalDropped

ApplyFn = Callable[[int, bytes], None]

_ENVELOPE_VERSION = 1
_REQUEST_ID_BYTES = 16


class NotLeader(Unavailable):
    def __init__(self, detail: str = "raft: no leader") -> None:
        super().__init__(detail)


class LostLeadership(Unavailable):
    def __init__(self) -> None:
        super().__init__("raft: lost leadership")


def wrap_payload(request_id: bytes, payload: bytes) -> bytes:
    return bytes([_ENVELOPE_VERSION]) + request_id + payload


def unwrap_payload(data: bytes) -> tuple[bytes, bytes]:
    """(request id, payload) of an entry written by ``wrap_payload``."""
    if len(data) < 1 + _REQUEST_ID_BYTES or data[0] != _ENVELOPE_VERSION:
        raise ValueError(f"raft entry is not a proposer envelope ({len(data)} bytes)")
    return data[1 : 1 + _REQUEST_ID_BYTES], data[1 + _REQUEST_ID_BYTES :]


def _noop_apply(index: int, payload: bytes) -> None:
    return None


class RaftProposer:
    """Implements shoal.store.proposer.Proposer; is the RaftNode's state machine."""

    def __init__(
        self,
        node: RaftNode,
        *,
        snapshot: Callable[[], bytes] | None = None,
        restore: Callable[[bytes], None] | None = None,
    ) -> None:
        self._node = node
        self._apply_fn: ApplyFn = _noop_apply
        self._snapshot_fn = snapshot
        self._restore_fn = restore
        self._prefix = os.urandom(_REQUEST_ID_BYTES - 8)
        self._counter = itertools.count(1)
        self._pending: dict[bytes, asyncio.Future[int]] = {}
        node.set_state_machine(self)
        node.add_leadership_listener(self._on_leadership)

    # --- store.proposer.Proposer ----------------------------------------------------------------

    def set_apply(self, apply: ApplyFn) -> None:
        self._apply_fn = apply

    def set_snapshotter(self, snapshot: Callable[[], bytes], restore: Callable[[bytes], None]) -> None:
        self._snapshot_fn = snapshot
        self._restore_fn = restore

    def is_leader(self) -> bool:
        return self._node.is_leader()

    async def propose(self, payload: bytes) -> int:
        if not self._node.is_leader():
            raise NotLeader()
        request_id = self._prefix + next(self._counter).to_bytes(8, "big")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await self._node.propose(wrap_payload(request_id, payload))
            except ProposalDropped as exc:
                raise NotLeader(f"raft: proposal dropped: {exc}") from exc
            return await future
        finally:
            self._pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: a failure raised elsewhere is not "never retrieved"

    def subscribe(self) -> asyncio.Queue[LeadershipChange]:
        """Leadership changes of this member (first item: the current state)."""
        return self._node.subscribe()

    def pending(self) -> int:
        return len(self._pending)

    # --- raftnode.StateMachine ------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> None:
        request_id, payload = unwrap_payload(data)
        self._apply_fn(index, payload)
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(index)

    def snapshot(self) -> bytes:
        return b"" if self._snapshot_fn is None else self._snapshot_fn()

    def restore(self, data: bytes) -> None:
        if self._restore_fn is not None:
            self._restore_fn(data)

    # --- leadership -------------------------------------------------------------------------------

    def _on_leadership(self, change: LeadershipChange) -> None:
        if change.is_leader:
            return
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(LostLeadership())
