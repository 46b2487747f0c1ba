"""The manager's store on Raft: a RaftNode over the encrypted WAL under the data root, the store's
Proposer on top of it, and the Raft transport (served on the cluster port by the Manager). A
single-manager swarm is a one-member group; other managers join it through the leader."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

from shoal.api import errors
from shoal.base.clock import Clock
from shoal.manager.proposer import RaftProposer
from shoal.manager.raftnode import RaftNode, RaftNodeConfig
from shoal.manager.raftnode_snapshot import encode_snapshot_data
from shoal.manager.raftnode_storage import DiskLog
from shoal.manager.transport import RaftTransport
from shoal.manager.wal.crypto import KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.raft.types import ConfState, HardState, Snapshot, SnapshotMetadata
from shoal.store.changes import encode_changes
from shoal.store.memory import MemoryStore

START_TIMEOUT = 30.0


@dataclass
class Consensus:
    store: MemoryStore
    raft: RaftNode
    proposer: RaftProposer
    log: DiskLog
    transport: RaftTransport

    async def bootstrap(self, raft_id: int, address: str) -> None:
        """Found a one-member group and return once this member leads with its store caught up."""
        await self.raft.start(bootstrap={raft_id: address})
        await self._lead_alone()

    async def join(self, members: dict[int, str]) -> None:
        """Start as a new member of a running group (``members`` as the leader's join answer gave
        them); the leader replicates its log or a snapshot to us."""
        await self.raft.start(peers=members)

    async def restart(self, raft_id: int) -> None:
        """Start from the log on disk and return once what it had committed is applied. A member
        alone in its group leads at once; one of several follows whoever leads (or campaigns after an
        election timeout) in the background."""
        committed = max(self.log.initial_state()[0].commit, 1)
        await self.raft.start()
        try:
            await asyncio.wait_for(self.raft.wait_applied(committed), START_TIMEOUT)
        except TimeoutError:
            raise errors.Unavailable(
                f"raft: this manager could not replay its log within {START_TIMEOUT:.0f} s"
            ) from None
        if set(self.raft.members()) == {raft_id}:
            await self._lead_alone()

    async def refound(self, raft_id: int, address: str, state: bytes) -> None:
        """`swarm init --force-new-cluster`: a new one-member group in this (empty) log whose first
        snapshot holds ``state``, the store as this manager last applied it; then lead it."""
        snapshot = Snapshot(
            SnapshotMetadata(index=1, term=1, conf_state=ConfState(voters=(raft_id,))),
            encode_snapshot_data({raft_id: address}, state),
        )
        self.log.save(HardState(term=1, vote=raft_id, commit=1), [], snapshot)
        self.log.sync()
        await self.restart(raft_id)

    async def _lead_alone(self) -> None:
        """Alone in the group no one else can win, so campaign at once instead of waiting out an
        election timeout; then a no-op transaction through the log is the barrier after which the
        store holds everything committed before."""
        changes = self.proposer.subscribe()

        async def lead() -> None:
            await self.raft.campaign()
            while not self.raft.is_leader():
                await changes.get()
            await self.proposer.propose(encode_changes([]))

        try:
            await asyncio.wait_for(lead(), START_TIMEOUT)
        except TimeoutError:
            members = sorted(self.raft.members())
            raise errors.Unavailable(
                f"raft: this manager could not become leader within {START_TIMEOUT:.0f} s "
                f"(members in its log: {members or 'none'})"
            ) from None

    async def stop(self) -> None:
        await self.raft.stop()
        self.log.close()


def open_consensus(swarm_dir: Path, raft_id: int, cluster_id: str, address: str, clock: Clock,
                   client_ssl: ssl.SSLContext, *, data_keys: KeyRing | None = None,
                   repair: bool = False) -> Consensus:
    """``data_keys`` seal the WAL and snapshots (already unwrapped: with autolock, by the unlock key;
    None: the WAL reads or makes its own, unwrapped); ``client_ssl`` dials the other members."""
    transport = RaftTransport(raft_id, client_ssl=client_ssl, cluster_id=cluster_id)
    # ``repair`` (--repair-raft-log) cuts a damaged WAL at the damage instead of refusing to start.
    log = DiskLog(DiskStorage.open(swarm_dir / "raft", keys=data_keys, repair=repair))
    raft = RaftNode(RaftNodeConfig(node_id=raft_id, address=address), log, transport)
    proposer = RaftProposer(raft)
    store = MemoryStore(proposer, clock)
    proposer.set_snapshotter(store.snapshot, store.restore)
    return Consensus(store, raft, proposer, log, transport)
