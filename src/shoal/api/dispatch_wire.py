"""The dispatcher's protocol on the cluster port: route paths, and the assignment stream's messages.

The stream starts with the node's full task set and then sends only what changed, each message
numbered; an agent that sees a number out of order drops the stream and opens a new one (which starts
with a full set again), so a lost or repeated message can never leave it with a wrong task set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shoal.api import errors
from shoal.api.objects import Obj

LEADER_PATH = "/dispatcher/v1/leader"
REGISTER_PATH = "/dispatcher/v1/register"
HEARTBEAT_PATH = "/dispatcher/v1/heartbeat"
STATUS_PATH = "/dispatcher/v1/status"
ASSIGNMENTS_PATH = "/dispatcher/v1/assignments"


@dataclass
class AssignmentDiffer:
    """The sending side: turns successive full task sets into numbered messages."""

    seq: int = 0
    _sent: dict[str, Obj] | None = None
    _node: Obj | None = None

    def message(self, tasks: Mapping[str, Obj], node: Obj | None = None) -> dict[str, Any] | None:
        """The next message for ``tasks`` (and the node's own object, sent when it changed), or None
        when nothing changed since the last one."""
        previous = self._sent
        if previous is None:
            body: dict[str, Any] = {"full": dict(tasks)}
        else:
            update = {tid: task for tid, task in tasks.items() if previous.get(tid) != task}
            remove = [tid for tid in previous if tid not in tasks]
            body = {"update": update, "remove": remove} if update or remove else {}
        if node is not None and node != self._node:
            body["node"] = node
            self._node = node
        if previous is not None and not body:
            return None
        self._sent = dict(tasks)
        self.seq += 1
        return {"seq": self.seq, **body}


@dataclass
class AssignmentReceiver:
    """The receiving side: rebuilds the full task set, refusing a message out of sequence."""

    seq: int = 0
    tasks: dict[str, Obj] = field(default_factory=dict)
    node: Obj | None = None

    def apply(self, message: Any) -> dict[str, Obj]:
        if not isinstance(message, dict) or not isinstance(message.get("seq"), int):
            raise errors.InvalidArgument("malformed assignment message")
        if message["seq"] != self.seq + 1:
            raise errors.Unavailable(f"assignment stream out of sequence: got {message['seq']} after {self.seq}")
        if "full" in message:
            self.tasks = dict(message["full"])
        elif self.seq == 0:
            raise errors.Unavailable("assignment stream did not start with a full set")
        else:
            self.tasks.update(message.get("update") or {})
            for task_id in message.get("remove") or []:
                self.tasks.pop(task_id, None)
        if isinstance(message.get("node"), dict):
            self.node = message["node"]
        self.seq = message["seq"]
        return dict(self.tasks)
