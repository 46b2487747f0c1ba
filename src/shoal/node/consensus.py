"""The manager's store on Raft: a RaftNode over the encrypted WAL under the data root, the store's
Proposer on top of it, and this node's certificates for the cluster transport. A single-manager swarm
is a one-member group; joining managers come with multi-host support."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from shoal.api import errors
from shoal.base.clock import Clock
from shoal.manager.proposer import RaftProposer
from shoal.manager.raftnode import RaftNode, RaftNodeConfig
from shoal.manager.raftnode_storage import DiskLog
from shoal.manager.transport import RaftTransport
from shoal.manager.transport_tls import client_context
from shoal.store.changes import encode_changes
from shoal.store.memory import MemoryStore

START_TIMEOUT = 30.0


@dataclass
class Consensus:
    store: MemoryStore
    raft: RaftNode
    proposer: RaftProposer
    log: DiskLog

    async def start(self, raft_id: int, address: str, bootstrap: bool) -> None:
        """Start the member and return once this node leads and its store has applied everything
        committed before (a no-op transaction through the log is the barrier). A member that cannot
        lead within START_TIMEOUT (its log names other members it cannot reach, or none) fails clearly
        instead of hanging the daemon."""
        try:
            await asyncio.wait_for(self._start(raft_id, address, bootstrap), START_TIMEOUT)
        except TimeoutError:
            members = sorted(self.raft.members())
            raise errors.Unavailable(
                f"raft: this manager could not become leader within {START_TIMEOUT:.0f} s "
                f"(members in its log: {members or 'none'})"
            ) from None

    async def _start(self, raft_id: int, address: str, bootstrap: bool) -> None:
        committed = max(self.log.initial_state()[0].commit, 1)
        await self.raft.start(bootstrap={raft_id: address} if bootstrap else None)
        changes = self.proposer.subscribe()
        # The core knows its members (and takes a campaign) once what was committed is applied.
        while self.raft.applied_index < committed:
            await asyncio.sleep(0.005)
        if set(self.raft.members()) == {raft_id}:
            # Alone in the group: no one else can win, so do not wait out an election timeout.
            await self.raft.campaign()
        while not (await changes.get()).is_leader:
            pass
        await self.proposer.propose(encode_changes([]))

    async def stop(self) -> None:
        await self.raft.stop()
        self.log.close()


def open_consensus(swarm_dir: Path, raft_id: int, cluster_id: str, address: str, clock: Clock) -> Consensus:
    certs = swarm_dir / "certificates"
    client_ssl = client_context(certs / "swarm-node.crt", certs / "swarm-node.key", certs / "swarm-root-ca.crt")
    transport = RaftTransport(raft_id, client_ssl=client_ssl, cluster_id=cluster_id)
    log = DiskLog.open(swarm_dir / "raft")
    raft = RaftNode(RaftNodeConfig(node_id=raft_id, address=address), log, transport)
    proposer = RaftProposer(raft)
    store = MemoryStore(proposer, clock)
    proposer.set_snapshotter(store.snapshot, store.restore)
    return Consensus(store, raft, proposer, log)
