"""Data types shared by the raft core, its storage (WAL) and its driver/transport.

Everything here is an immutable value. Node ids are ints > 0; 0 means "none".
The ``*_to_wire`` / ``*_from_wire`` helpers turn the values into plain ints, bytes, bools,
lists and dicts (and back) so that a transport or a WAL can msgpack them without
knowing these classes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoal.raft.errors import Compacted, SnapshotTemporarilyUnavailable, Unavailable

__all__ = [
    "NONE",
    "Compacted",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Entry",
    "EntryType",
    "HardState",
    "Message",
    "MessageType",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "Storage",
    "Unavailable",
    "conf_state_from_wire",
    "conf_state_to_wire",
    "entry_from_wire",
    "entry_size",
    "entry_to_wire",
    "hardstate_from_wire",
    "hardstate_to_wire",
    "is_local_message",
    "is_response_message",
    "message_from_wire",
    "message_to_wire",
    "snapshot_from_wire",
    "snapshot_to_wire",
]

NONE = 0
"""The node id meaning "no node" (no vote, no leader)."""


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


def entry_size(entry: Entry) -> int:
    """Approximate encoded size, used to bound the bytes per append message."""
    return len(entry.data) + 16


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message depending on it is sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership: voters, learners, and ids removed for good (never to be re-added)."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()


class ConfChangeType(enum.IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1
    UPDATE_NODE = 2


_CONF_CHANGE_HEADER = struct.Struct(">BQ")


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A single-member configuration change; ``context`` carries the member's address."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        return _CONF_CHANGE_HEADER.pack(int(self.type), self.node_id) + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        if len(data) < _CONF_CHANGE_HEADER.size:
            raise ValueError(f"conf change too short: {len(data)} bytes")
        kind, node_id = _CONF_CHANGE_HEADER.unpack_from(data)
        return cls(ConfChangeType(kind), node_id, bytes(data[_CONF_CHANGE_HEADER.size :]))


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""

    def is_empty(self) -> bool:
        return self.metadata.index == 0


class MessageType(enum.IntEnum):
    # Sent between nodes.
    APP = 0
    APP_RESP = 1
    VOTE = 2
    VOTE_RESP = 3
    PRE_VOTE = 4
    PRE_VOTE_RESP = 5
    HEARTBEAT = 6
    HEARTBEAT_RESP = 7
    SNAP = 8
    TIMEOUT_NOW = 9
    READ_INDEX = 10
    READ_INDEX_RESP = 11
    PROP = 12
    # Local only: stepped into a node by its own driver, never sent.
    HUP = 20
    BEAT = 21
    UNREACHABLE = 22
    SNAP_STATUS = 23
    CHECK_QUORUM = 24
    TRANSFER_LEADER = 25


_LOCAL_TYPES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    }
)
_RESPONSE_TYPES = frozenset(
    {
        MessageType.APP_RESP,
        MessageType.VOTE_RESP,
        MessageType.PRE_VOTE_RESP,
        MessageType.HEARTBEAT_RESP,
        MessageType.READ_INDEX_RESP,
        MessageType.UNREACHABLE,
    }
)


def is_local_message(kind: MessageType) -> bool:
    return kind in _LOCAL_TYPES


def is_response_message(kind: MessageType) -> bool:
    return kind in _RESPONSE_TYPES


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


class Role(enum.IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth telling the application about; never persisted."""

    lead: int = NONE
    role: Role = Role.FOLLOWER


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read is safe once the applied index reaches ``index``."""

    index: int
    request_ctx: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """One batch of effects the driver must carry out, in this order:

    1. install ``snapshot`` (if any), append ``entries`` and store ``hard_state`` (if any)
       to durable storage, fsync'ing when ``must_sync`` is true;
    2. only then send ``messages`` (they may depend on 1);
    3. apply ``committed_entries`` to the state machine; serve ``read_states`` once applied;
    4. call ``RawNode.advance(ready)``.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: tuple[ReadState, ...] = ()
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    must_sync: bool = False

    def contains_updates(self) -> bool:
        return bool(
            self.soft_state is not None
            or self.hard_state is not None
            or self.read_states
            or self.entries
            or self.snapshot is not None
            or self.committed_entries
            or self.messages
        )


class Storage(Protocol):
    """The read side of the log the core needs (the durable part, like etcd's Storage).

    Errors: ``entries``/``term`` raise ``Compacted`` below the first available index and
    ``Unavailable`` past the last; ``snapshot`` may raise ``SnapshotTemporarilyUnavailable``.
    Index ``first_index() - 1`` is the snapshot's index, and its term is still answered.
    """

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries in [lo, hi); at least one if any, then stop before exceeding ``max_size``."""
        ...

    def term(self, index: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


# --- plain-primitive converters -------------------------------------------------------------


def entry_to_wire(entry: Entry) -> dict[str, Any]:
    return {"term": entry.term, "index": entry.index, "type": int(entry.type), "data": bytes(entry.data)}


def entry_from_wire(d: dict[str, Any]) -> Entry:
    return Entry(int(d["term"]), int(d["index"]), EntryType(int(d["type"])), bytes(d["data"]))


def hardstate_to_wire(hs: HardState) -> dict[str, Any]:
    return {"term": hs.term, "vote": hs.vote, "commit": hs.commit}


def hardstate_from_wire(d: dict[str, Any]) -> HardState:
    return HardState(int(d["term"]), int(d["vote"]), int(d["commit"]))


def conf_state_to_wire(cs: ConfState) -> dict[str, Any]:
    return {"voters": list(cs.voters), "learners": list(cs.learners), "removed": list(cs.removed)}


def conf_state_from_wire(d: dict[str, Any]) -> ConfState:
    return ConfState(
        tuple(int(v) for v in d["voters"]),
        tuple(int(v) for v in d.get("learners", ())),
        tuple(int(v) for v in d.get("removed", ())),
    )


def snapshot_to_wire(snap: Snapshot) -> dict[str, Any]:
    meta = snap.metadata
    return {
        "index": meta.index,
        "term": meta.term,
        "conf_state": conf_state_to_wire(meta.conf_state),
        "data": bytes(snap.data),
    }


def snapshot_from_wire(d: dict[str, Any]) -> Snapshot:
    meta = SnapshotMetadata(int(d["index"]), int(d["term"]), conf_state_from_wire(d["conf_state"]))
    return Snapshot(meta, bytes(d["data"]))


def message_to_wire(m: Message) -> dict[str, Any]:
    return {
        "type": int(m.type),
        "to": m.to,
        "from": m.frm,
        "term": m.term,
        "log_term": m.log_term,
        "index": m.index,
        "entries": [entry_to_wire(e) for e in m.entries],
        "commit": m.commit,
        "snapshot": None if m.snapshot is None else snapshot_to_wire(m.snapshot),
        "reject": m.reject,
        "reject_hint": m.reject_hint,
        "context": bytes(m.context),
    }


def message_from_wire(d: dict[str, Any]) -> Message:
    snap = d.get("snapshot")
    return Message(
        type=MessageType(int(d["type"])),
        to=int(d["to"]),
        frm=int(d["from"]),
        term=int(d["term"]),
        log_term=int(d.get("log_term", 0)),
        index=int(d.get("index", 0)),
        entries=tuple(entry_from_wire(e) for e in d.get("entries", ())),
        commit=int(d.get("commit", 0)),
        snapshot=None if snap is None else snapshot_from_wire(snap),
        reject=bool(d.get("reject", False)),
        reject_hint=int(d.get("reject_hint", 0)),
        context=bytes(d.get("context", b"")),
    )
