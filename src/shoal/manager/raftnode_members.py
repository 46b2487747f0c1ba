"""Where each Raft member listens, kept in step with the committed configuration and mirrored into
the transport (a peer is dialled once it is added, dropped once it is removed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from shoal.manager.raftnode_api import PeerTransport
from shoal.raft.types import ConfChange, ConfChangeType


class MemberDirectory:
    def __init__(self, self_id: int, transport: PeerTransport) -> None:
        self._self_id = self_id
        self._transport = transport
        self.addresses: dict[int, str] = {}
        self.removed: set[int] = set()
        self._closing: set[asyncio.Task[None]] = set()  # held so they are not collected mid-way

    def apply(self, change: ConfChange) -> None:
        """Follow one committed conf change (the core applies it to itself in advance())."""
        if change.node_id in self.removed:
            return  # removed ids never come back
        if change.type is ConfChangeType.REMOVE_NODE:
            self.removed.add(change.node_id)
            self.addresses.pop(change.node_id, None)
            self._drop_peer(change.node_id)
        elif change.context:
            address = change.context.decode()
            self.addresses[change.node_id] = address
            if change.node_id != self._self_id:
                self._transport.add_peer(change.node_id, address)

    def replace(self, addresses: dict[int, str], removed: Iterable[int] = ()) -> None:
        """Take the whole membership at once (bootstrap, join, or an installed snapshot)."""
        self.removed |= set(removed)
        for node_id in set(self.addresses) - set(addresses):
            self._drop_peer(node_id)
        self.addresses = dict(addresses)
        for node_id, address in self.addresses.items():
            if node_id != self._self_id:
                self._transport.add_peer(node_id, address)

    def _drop_peer(self, node_id: int) -> None:
        if node_id == self._self_id:
            return
        task = asyncio.get_running_loop().create_task(self._transport.remove_peer(node_id))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
