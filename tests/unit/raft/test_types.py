"""Wire converters produce plain primitives and round-trip exactly."""

from __future__ import annotations

from typing import Any

from shoal.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    entry_from_wire,
    entry_to_wire,
    hardstate_from_wire,
    hardstate_to_wire,
    message_from_wire,
    message_to_wire,
    snapshot_from_wire,
    snapshot_to_wire,
)

PRIMITIVES = (int, bytes, bool, str, type(None))


def only_primitives(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_primitives(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_primitives(v) for v in value)
    # IntEnum members are ints, but a codec should see plain ints.
    return type(value) in PRIMITIVES


SNAP = Snapshot(SnapshotMetadata(9, 3, ConfState((1, 2, 3), (), (7,))), b"\x00state")
MSG = Message(
    MessageType.APP,
    to=2,
    frm=1,
    term=3,
    log_term=2,
    index=8,
    entries=(Entry(3, 9, EntryType.NORMAL, b"a"), Entry(3, 10, EntryType.CONF_CHANGE, b"\x01")),
    commit=8,
    snapshot=SNAP,
    reject=True,
    reject_hint=4,
    context=b"ctx",
)


def test_message_round_trip_with_primitives_only() -> None:
    wire = message_to_wire(MSG)
    assert only_primitives(wire)
    assert message_from_wire(wire) == MSG


def test_message_from_wire_fills_defaults() -> None:
    minimal = {"type": int(MessageType.HEARTBEAT), "to": 2, "from": 1, "term": 4}
    assert message_from_wire(minimal) == Message(MessageType.HEARTBEAT, to=2, frm=1, term=4)


def test_entry_hardstate_snapshot_round_trip() -> None:
    entry = Entry(5, 6, EntryType.CONF_CHANGE, b"cc")
    assert only_primitives(entry_to_wire(entry))
    assert entry_from_wire(entry_to_wire(entry)) == entry
    hs = HardState(3, 2, 9)
    assert hardstate_from_wire(hardstate_to_wire(hs)) == hs
    assert only_primitives(snapshot_to_wire(SNAP))
    assert snapshot_from_wire(snapshot_to_wire(SNAP)) == SNAP


def test_empty_values() -> None:
    assert HardState().is_empty() and not HardState(1, 0, 0).is_empty()
    assert Snapshot().is_empty() and not SNAP.is_empty()
    assert not Ready().contains_updates()
    assert Ready(messages=(MSG,)).contains_updates()
