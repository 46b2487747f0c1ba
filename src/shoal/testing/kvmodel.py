"""A small key-value state machine for raft simulations, and its sequential model.

Commands are put/get/append on string keys. Each command carries (client, seq) so the
state machine applies a command at most once even if the log holds it twice (a
duplicated proposal message), as a real service must.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shoal.testing.lincheck import Model, Operation

PUT = "put"
GET = "get"
APPEND = "append"


@dataclass(frozen=True)
class KVOp:
    kind: str
    key: str
    value: str = ""


@dataclass(frozen=True)
class Command:
    client: int
    seq: int
    op: KVOp

    def encode(self) -> bytes:
        return json.dumps([self.client, self.seq, self.op.kind, self.op.key, self.op.value]).encode()

    @classmethod
    def decode(cls, data: bytes) -> Command:
        client, seq, kind, key, value = json.loads(data)
        return cls(int(client), int(seq), KVOp(str(kind), str(key), str(value)))


class KVStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        # client -> (last applied seq, its result): makes re-applied commands no-ops.
        self.sessions: dict[int, tuple[int, str]] = {}

    def apply(self, cmd: Command) -> str:
        last = self.sessions.get(cmd.client)
        if last is not None and cmd.seq <= last[0]:
            return last[1] if cmd.seq == last[0] else ""
        result = self.execute(cmd.op)
        self.sessions[cmd.client] = (cmd.seq, result)
        return result

    def execute(self, op: KVOp) -> str:
        if op.kind == PUT:
            self.data[op.key] = op.value
            return "ok"
        if op.kind == APPEND:
            self.data[op.key] = self.data.get(op.key, "") + op.value
            return "ok"
        if op.kind == GET:
            return self.data.get(op.key, "")
        raise ValueError(f"unknown op {op.kind!r}")

    def read(self, key: str) -> str:
        return self.data.get(key, "")

    def encode(self) -> bytes:
        sessions = {str(c): [s, r] for c, (s, r) in sorted(self.sessions.items())}
        return json.dumps({"data": self.data, "sessions": sessions}, sort_keys=True).encode()

    @classmethod
    def decode(cls, blob: bytes) -> KVStore:
        store = cls()
        if blob:
            doc = json.loads(blob)
            store.data = {str(k): str(v) for k, v in doc["data"].items()}
            store.sessions = {int(c): (int(s), str(r)) for c, (s, r) in doc["sessions"].items()}
        return store


# --- sequential model for the linearizability checker: one key's value as the state ---


def _step_one_key(value: str, op: KVOp) -> tuple[str, str]:
    if op.kind == PUT:
        return op.value, "ok"
    if op.kind == APPEND:
        return value + op.value, "ok"
    if op.kind == GET:
        return value, value
    raise ValueError(f"unknown op {op.kind!r}")


def _by_key(history: Sequence[Operation[KVOp, str]]) -> Iterable[Sequence[Operation[KVOp, str]]]:
    parts: dict[str, list[Operation[KVOp, str]]] = defaultdict(list)
    for op in history:
        parts[op.input.key].append(op)
    return [parts[k] for k in sorted(parts)]


KV_MODEL: Model[str, KVOp, str] = Model(init="", step=_step_one_key, partition=_by_key)


def drop_unobserved_writes(history: Sequence[Operation[KVOp, str]]) -> list[Operation[KVOp, str]]:
    """Remove writes of unknown outcome whose value no read ever returned.

    Sound when every written value is a unique token that no other token contains (the
    simulation writes ``[client.seq]``): had such a write taken effect, any read before
    the next put of that key would contain its token; no read does, so a linearization
    with the write exists exactly when one without it does. Without this, each pending
    append multiplies the orders the checker must consider.
    """
    observed: dict[str, list[str]] = defaultdict(list)
    for op in history:
        if op.input.kind == GET and op.output:
            observed[op.input.key].append(op.output)
    kept = []
    for op in history:
        if op.ret is None and op.input.kind in (PUT, APPEND):
            token = op.input.value
            if not any(token in seen for seen in observed[op.input.key]):
                continue
        kept.append(op)
    return kept
