"""Read-index bookkeeping on the leader: a read is served at the commit index it saw,
once a quorum has answered a heartbeat sent after the read arrived (so the leader knows
it was still leader when the read was taken)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.raft.types import Message


@dataclass
class ReadIndexStatus:
    request: Message
    index: int
    acks: dict[int, bool] = field(default_factory=dict)


class ReadOnly:
    def __init__(self) -> None:
        self._pending: dict[bytes, ReadIndexStatus] = {}
        self._queue: list[bytes] = []

    def add_request(self, index: int, request: Message) -> None:
        ctx = request.context
        if ctx in self._pending:
            return
        self._pending[ctx] = ReadIndexStatus(request, index)
        self._queue.append(ctx)

    def recv_ack(self, node_id: int, ctx: bytes) -> dict[int, bool] | None:
        status = self._pending.get(ctx)
        if status is None:
            return None
        status.acks[node_id] = True
        return status.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Release every request queued up to and including ``ctx`` (all were confirmed)."""
        if ctx not in self._pending:
            return []
        position = self._queue.index(ctx)
        released_ctxs = self._queue[: position + 1]
        self._queue = self._queue[position + 1 :]
        return [self._pending.pop(c) for c in released_ctxs]

    def last_pending_ctx(self) -> bytes:
        return self._queue[-1] if self._queue else b""

    def pending_count(self) -> int:
        return len(self._queue)
