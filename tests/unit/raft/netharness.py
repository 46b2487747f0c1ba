"""A synchronous in-memory network of Raft state machines for unit tests (etcd style).

``send`` delivers messages until the network is quiet; ``cut``/``isolate``/``drop``/
``ignore`` shape delivery. No clocks, no threads: a test is a sequence of steps.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shoal.raft.config import Config
from shoal.raft.core import Raft
from shoal.raft.errors import ProposalDropped
from shoal.raft.storage import MemoryStorage
from shoal.raft.types import ConfState, Entry, Message, MessageType

MT = MessageType


class QuietLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


def new_storage(peers: Iterable[int] = ()) -> MemoryStorage:
    return MemoryStorage(ConfState(tuple(sorted(peers))))


def new_raft(
    node_id: int,
    peers: Iterable[int] = (),
    election: int = 10,
    heartbeat: int = 1,
    storage: MemoryStorage | None = None,
    pre_vote: bool = False,
    check_quorum: bool = False,
    seed: int = 0,
    max_inflight: int = 256,
    max_size_per_msg: int | None = None,
) -> Raft:
    if storage is None:
        storage = new_storage(peers)
    return Raft(
        Config(
            id=node_id,
            storage=storage,
            election_tick=election,
            heartbeat_tick=heartbeat,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            rand=random.Random(seed * 1000 + node_id),
            logger=QuietLogger(),
            max_inflight_msgs=max_inflight,
            max_size_per_msg=max_size_per_msg,
        )
    )


def read_messages(r: Raft) -> list[Message]:
    msgs, r.msgs = r.msgs, []
    return msgs


def entries_of(r: Raft) -> list[tuple[int, int, bytes]]:
    return [(e.term, e.index, e.data) for e in r.log.all_entries()]


def ents_with_terms(*terms: int) -> list[Entry]:
    return [Entry(term=t, index=i + 1) for i, t in enumerate(terms)]


def storage_with_terms(peers: Iterable[int], *terms: int) -> MemoryStorage:
    storage = new_storage(peers)
    storage.append(ents_with_terms(*terms))
    return storage


class BlackHole:
    """A peer that swallows everything."""


@dataclass
class Network:
    peers: dict[int, Raft | BlackHole]
    dropped: dict[tuple[int, int], float] = field(default_factory=dict)
    ignored: set[MessageType] = field(default_factory=set)
    msg_hook: Callable[[Message], bool] | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    delivered: list[Message] = field(default_factory=list)

    def raft(self, node_id: int) -> Raft:
        node = self.peers[node_id]
        assert isinstance(node, Raft)
        return node

    def send(self, *msgs: Message) -> None:
        queue = list(msgs)
        while queue:
            m = queue.pop(0)
            node = self.peers.get(m.to)
            if not isinstance(node, Raft):
                continue
            with contextlib.suppress(ProposalDropped):
                node.step(m)
            self.delivered.append(m)
            queue.extend(self.filter(read_messages(node)))

    def filter(self, msgs: list[Message]) -> list[Message]:
        kept = []
        for m in msgs:
            if m.type in self.ignored:
                continue
            if m.type is MT.HUP:
                raise AssertionError("unexpected local message on the wire")
            perc = self.dropped.get((m.frm, m.to), 0.0)
            if perc and self.rng.random() < perc:
                continue
            if self.msg_hook is not None and not self.msg_hook(m):
                continue
            kept.append(m)
        return kept

    def campaign(self, node_id: int) -> None:
        self.send(Message(MT.HUP, to=node_id, frm=node_id))

    def propose(self, node_id: int, data: bytes = b"somedata") -> None:
        self.send(Message(MT.PROP, to=node_id, frm=node_id, entries=(Entry(0, 0, data=data),)))

    def drop(self, frm: int, to: int, perc: float) -> None:
        self.dropped[(frm, to)] = perc

    def cut(self, a: int, b: int) -> None:
        self.drop(a, b, 2.0)
        self.drop(b, a, 2.0)

    def isolate(self, node_id: int) -> None:
        for other in self.peers:
            if other != node_id:
                self.cut(node_id, other)

    def ignore(self, kind: MessageType) -> None:
        self.ignored.add(kind)

    def recover(self) -> None:
        self.dropped.clear()
        self.ignored.clear()


def new_network(*nodes: Raft | BlackHole | None, pre_vote: bool = False, check_quorum: bool = False) -> Network:
    """Peers are numbered 1..n; None means a fresh Raft node with every peer as a voter."""
    ids = list(range(1, len(nodes) + 1))
    peers: dict[int, Raft | BlackHole] = {}
    for node_id, node in zip(ids, nodes, strict=True):
        if node is None:
            peers[node_id] = new_raft(node_id, ids, pre_vote=pre_vote, check_quorum=check_quorum)
        else:
            peers[node_id] = node
    return Network(peers)
