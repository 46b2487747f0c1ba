"""Frames of the Raft stream: round trips, chunking, and refusal of malformed input."""

from __future__ import annotations

import msgpack
import pytest

from shoal.manager.raftnode_snapshot import decode_snapshot_data, encode_snapshot_data
from shoal.manager.transport_codec import (
    Batch,
    FrameError,
    SnapshotAck,
    SnapshotAssembler,
    SnapshotChunk,
    decode_frame,
    encode_batch,
    encode_snapshot,
    encode_snapshot_ack,
)
from shoal.raft.types import ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata


def _snap_message(data: bytes) -> Message:
    meta = SnapshotMetadata(index=9, term=2, conf_state=ConfState(voters=(1, 2)))
    return Message(MessageType.SNAP, to=2, frm=1, term=2, snapshot=Snapshot(meta, data))


def test_batch_round_trips() -> None:
    messages = (
        Message(MessageType.APP, to=2, frm=1, term=1, entries=(Entry(1, 1, data=b"\x00\xff"),)),
        Message(MessageType.HEARTBEAT, to=2, frm=1, term=1, context=b"ctx"),
    )
    assert decode_frame(encode_batch(messages)) == Batch(messages)


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1000])
def test_snapshot_chunks_reassemble(size: int) -> None:
    message = _snap_message(bytes(i % 251 for i in range(size)))
    frames = [decode_frame(f) for f in encode_snapshot(message, stream_id=7, chunk_size=100)]
    assert len(frames) == max(1, -(-size // 100))
    chunks = [f for f in frames if isinstance(f, SnapshotChunk)]
    assembler = SnapshotAssembler(chunks[0], max_size=10_000)
    result = assembler.complete()
    for chunk in chunks[1:]:
        result = assembler.add(chunk)
    assert result == message


def test_out_of_order_chunk_is_refused() -> None:
    frames = [decode_frame(f) for f in encode_snapshot(_snap_message(b"x" * 300), 1, 100)]
    chunks = [f for f in frames if isinstance(f, SnapshotChunk)]
    assembler = SnapshotAssembler(chunks[0], max_size=10_000)
    with pytest.raises(FrameError):
        assembler.add(chunks[2])


def test_snapshot_over_the_limit_is_refused_at_the_header() -> None:
    first = decode_frame(next(encode_snapshot(_snap_message(b"x" * 300), 1, 100)))
    assert isinstance(first, SnapshotChunk)
    with pytest.raises(FrameError):
        SnapshotAssembler(first, max_size=200)


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # never-used msgpack byte
        msgpack.packb([1, 2, 3]),
        msgpack.packb({"t": "nope"}),
        msgpack.packb({"t": "batch", "msgs": [{"type": 999}]}),
        msgpack.packb({"t": "snap", "id": 1, "seq": 0, "size": 1, "data": "text"}),
    ],
)
def test_malformed_frames_raise_frame_error(payload: bytes) -> None:
    with pytest.raises(FrameError):
        decode_frame(payload)


def test_ack_round_trips() -> None:
    assert decode_frame(encode_snapshot_ack(3, False)) == SnapshotAck(3, False)


def test_snapshot_envelope_keeps_members_and_state() -> None:
    blob = encode_snapshot_data({2: "b:1", 1: "a:1"}, b"state")
    assert decode_snapshot_data(blob) == ({1: "a:1", 2: "b:1"}, b"state")
    assert decode_snapshot_data(b"") == ({}, b"")


def test_a_raft_snapshot_of_another_format_names_both_formats() -> None:
    data = msgpack.packb({"v": 2, "members": [], "app": b""}, use_bin_type=True)
    with pytest.raises(ValueError, match="format 2, this shoald reads format 1"):
        decode_snapshot_data(data)
    assert decode_snapshot_data(encode_snapshot_data({1: "a:1"}, b"x")) == ({1: "a:1"}, b"x")
