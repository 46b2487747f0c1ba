"""A committed transaction is a list of changes; this is what travels through the Proposer (the local
journal or Raft) and what every store replica applies, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from shoal.api.objects import Obj
from shoal.store.frozen import freezing_object_hook

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    table: str
    obj: Obj  # the whole object after the change (for delete: the object as it was)


def encode_changes(changes: list[Change]) -> bytes:
    doc: list[dict[str, Any]] = [{"a": c.action, "t": c.table, "o": c.obj} for c in changes]
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_changes(payload: bytes) -> list[Change]:
    """The changes of a committed payload, their objects already read-only (the store keeps them)."""
    return [Change(item["a"], item["t"], item["o"]) for item in json.loads(payload, object_hook=freezing_object_hook)]
