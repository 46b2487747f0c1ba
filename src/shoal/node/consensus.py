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
from shoal.manager.wal.crypto import KeyRing
from shoal.manager.wal.storage import DiskStorage
from shoal.rpc.tls import client_context
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


def open_consensus(swarm_dir: Path, raft_id: int, cluster_id: str, address: str, clock: Clock, *,
                   data_keys: KeyRing | None = None, tls_key_password: bytes | None = None,
                   repair: bool = False) -> Consensus:
    """``data_keys`` seal the WAL and snapshots (already unwrapped: with autolock, by the unlock key;
    None: the WAL reads or makes its own, unwrapped); ``tls_key_password`` opens the node's TLS key
    file (None when it is stored in the clear)."""
    certs = swarm_dir / "certificates"
    client_ssl = client_context(None, None, certs / "swarm-root-ca.crt")
    # The key file may be encrypted: load it with its password here, never by a prompt.
    client_ssl.load_cert_chain(certs / "swarm-node.crt", certs / "swarm-node.key", password=tls_key_password)
    transport = RaftTransport(raft_id, client_ssl=client_ssl, cluster_id=cluster_id)
    log = _open_log(swarm_dir / "raft", data_keys, repair)
    raft = RaftNode(RaftNodeConfig(node_id=raft_id, address=address), log, transport)
    proposer = RaftProposer(raft)
    store = MemoryStore(proposer, clock)
    proposer.set_snapshotter(store.snapshot, store.restore)
    return Consensus(store, raft, proposer, log)


def _open_log(raft_dir: Path, data_keys: KeyRing | None, repair: bool) -> DiskLog:
    # ``repair`` (--repair-raft-log) cuts a damaged WAL at the damage instead of refusing to start.
    return DiskLog(DiskStorage.open(raft_dir, keys=data_keys, repair=repair))
