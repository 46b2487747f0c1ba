"""Frames of the Raft WebSocket stream: msgpack maps built from the core's wire converters.

Three kinds of frame travel on a stream:

* ``{"t": "batch", "msgs": [message, ...]}`` — ordinary Raft messages;
* ``{"t": "snap", "id", "seq", "size", "msg"?, "data"}`` — one chunk of a snapshot message; the
  first chunk (seq 0) carries the message with its snapshot data left empty, ``size`` is the length
  of the whole data, and the chunks' data concatenate to it;
* ``{"t": "snap_ack", "id", "ok"}`` — sent back by the receiver once a snapshot is reassembled and
  handed to Raft (or refused), so the sender can report SNAP_STATUS truthfully.

msgpack only ever yields plain maps, lists, ints, bytes and strings; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from shoal.raft.types import Message, Snapshot, message_from_wire, message_to_wire


class FrameError(ValueError):
    """A frame that does not decode to one of the known shapes; the stream is closed."""


@dataclass(frozen=True)
class Batch:
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class SnapshotChunk:
    stream_id: int
    seq: int
    size: int
    data: bytes
    message: Message | None  # only on seq 0, with empty snapshot data


@dataclass(frozen=True)
class SnapshotAck:
    stream_id: int
    ok: bool


Frame = Batch | SnapshotChunk | SnapshotAck


def _pack(obj: dict[str, Any]) -> bytes:
    data = msgpack.packb(obj, use_bin_type=True)
    assert isinstance(data, bytes)
    return data


def encode_batch(messages: Sequence[Message]) -> bytes:
    return _pack({"t": "batch", "msgs": [message_to_wire(m) for m in messages]})


def encode_snapshot(message: Message, stream_id: int, chunk_size: int) -> Iterator[bytes]:
    """The frames that carry a SNAP message, ``chunk_size`` bytes of snapshot data each."""
    assert message.snapshot is not None, "a snapshot message carries a snapshot"
    data = message.snapshot.data
    header = dataclasses.replace(message, snapshot=Snapshot(message.snapshot.metadata, b""))
    view = memoryview(data)
    seq = 0
    offset = 0
    while True:
        chunk = bytes(view[offset : offset + chunk_size])
        frame: dict[str, Any] = {"t": "snap", "id": stream_id, "seq": seq, "size": len(data), "data": chunk}
        if seq == 0:
            frame["msg"] = message_to_wire(header)
        yield _pack(frame)
        offset += len(chunk)
        seq += 1
        if offset >= len(data):
            return


def encode_snapshot_ack(stream_id: int, ok: bool) -> bytes:
    return _pack({"t": "snap_ack", "id": stream_id, "ok": ok})


def decode_frame(payload: bytes) -> Frame:
    try:
        obj = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
        if not isinstance(obj, dict):
            raise FrameError("frame is not a map")
        kind = obj.get("t")
        if kind == "batch":
            return Batch(tuple(message_from_wire(m) for m in obj["msgs"]))
        if kind == "snap":
            raw_msg = obj.get("msg")
            data = obj["data"]
            if not isinstance(data, bytes):
                raise FrameError("snapshot chunk data is not bytes")
            return SnapshotChunk(
                stream_id=int(obj["id"]),
                seq=int(obj["seq"]),
                size=int(obj["size"]),
                data=data,
                message=None if raw_msg is None else message_from_wire(raw_msg),
            )
        if kind == "snap_ack":
            return SnapshotAck(int(obj["id"]), bool(obj["ok"]))
        raise FrameError(f"unknown frame kind {kind!r}")
    except FrameError:
        raise
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FrameError(f"undecodable frame: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FrameError(f"malformed frame: {exc!r}") from exc


class SnapshotAssembler:
    """Rebuilds one snapshot message from its chunks, checking order and size."""

    def __init__(self, first: SnapshotChunk, max_size: int) -> None:
        if first.seq != 0 or first.message is None or first.message.snapshot is None:
            raise FrameError("snapshot stream does not start with its header chunk")
        if first.size < 0 or first.size > max_size:
            raise FrameError(f"snapshot of {first.size} bytes exceeds the limit of {max_size}")
        self.stream_id = first.stream_id
        self._message = first.message
        self._size = first.size
        self._next_seq = 0
        self._buffer = bytearray()
        self.add(first)

    def add(self, chunk: SnapshotChunk) -> Message | None:
        """Take the next chunk; the complete message once all data has arrived."""
        if chunk.stream_id != self.stream_id or chunk.seq != self._next_seq:
            raise FrameError(f"snapshot chunk {chunk.stream_id}/{chunk.seq} out of order")
        if len(self._buffer) + len(chunk.data) > self._size:
            raise FrameError("snapshot chunks exceed the announced size")
        self._buffer += chunk.data
        self._next_seq += 1
        return self.complete()

    def complete(self) -> Message | None:
        if len(self._buffer) != self._size:
            return None
        snap = self._message.snapshot
        assert snap is not None
        return dataclasses.replace(self._message, snapshot=Snapshot(snap.metadata, bytes(self._buffer)))
