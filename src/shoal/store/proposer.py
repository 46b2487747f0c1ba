"""Where the store meets consensus. A Proposer makes a transaction's payload durable (and, with Raft,
replicated to a quorum), then hands every committed payload to the store's apply function, in index
order, on every replica. propose() returns once the payload is applied locally."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

ApplyFn = Callable[[int, bytes], None]


class Proposer(Protocol):
    def set_apply(self, apply: ApplyFn) -> None:
        """Install the store's apply callback; called once before any proposal."""
        ...

    async def propose(self, payload: bytes) -> int:
        """Commit payload; return its index after it has been applied locally. Raises
        shoal.api.errors.Unavailable when this member cannot commit (no leader, lost leadership)."""
        ...

    def is_leader(self) -> bool: ...
