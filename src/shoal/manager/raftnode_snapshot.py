"""What a Raft snapshot of a manager holds: the members' addresses next to the state machine's bytes.

Addresses travel in conf-change contexts; once the log holding them is compacted, only the snapshot
can tell a restarted or newly joined member where its peers listen.
"""

from __future__ import annotations

from typing import Any

import msgpack

_VERSION = 1


def encode_snapshot_data(members: dict[int, str], app: bytes) -> bytes:
    data = msgpack.packb(
        {"v": _VERSION, "members": [[node_id, addr] for node_id, addr in sorted(members.items())], "app": app},
        use_bin_type=True,
    )
    assert isinstance(data, bytes)
    return data


def decode_snapshot_data(data: bytes) -> tuple[dict[int, str], bytes]:
    """(members, state machine bytes); an empty snapshot has neither."""
    if not data:
        return {}, b""
    obj: Any = msgpack.unpackb(data, raw=False)
    if not isinstance(obj, dict) or "v" not in obj:
        raise ValueError("not a shoal raft snapshot")
    if obj["v"] != _VERSION:
        raise ValueError(f"raft snapshot has format {obj['v']!r}, this shoald reads format {_VERSION}: "
                         "run the same shoald version on every manager (upgrade this one)")
    members = {int(node_id): str(addr) for node_id, addr in obj["members"]}
    app = obj["app"]
    if not isinstance(app, bytes):
        raise ValueError("snapshot state machine data is not bytes")
    return members, app
