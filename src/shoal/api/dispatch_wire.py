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


# The keyed sets a message carries besides the tasks (sent in full first, then as changes).
DEPENDENCY_SETS = ("secrets", "configs")


def _changes(previous: Mapping[str, Obj], current: Mapping[str, Obj]) -> dict[str, Any]:
    update = {key: obj for key, obj in current.items() if previous.get(key) != obj}
    remove = [key for key in previous if key not in current]
    return {"update": update, "remove": remove} if update or remove else {}


@dataclass
class AssignmentDiffer:
    """The sending side: turns successive full sets (tasks, and the secrets and configs they use)
    into numbered messages."""

    seq: int = 0
    _sent: dict[str, Obj] | None = None
    _node: Obj | None = None
    _sent_sets: dict[str, dict[str, Obj]] = field(default_factory=dict)

    def message(self, tasks: Mapping[str, Obj], node: Obj | None = None,
                **sets: Mapping[str, Obj]) -> dict[str, Any] | None:
        """The next message for ``tasks`` (and the node's own object, sent when it changed, and the
        DEPENDENCY_SETS given by name), or None when nothing changed since the last one."""
        previous = self._sent
        if previous is None:
            body: dict[str, Any] = {"full": dict(tasks)}
            for name in DEPENDENCY_SETS:
                if sets.get(name):
                    body[name] = {"update": dict(sets[name]), "remove": []}
        else:
            body = _changes(previous, tasks)
            for name in DEPENDENCY_SETS:
                changed = _changes(self._sent_sets.get(name, {}), sets.get(name) or {})
                if changed:
                    body[name] = changed
        if node is not None and node != self._node:
            body["node"] = node
            self._node = node
        if previous is not None and not body:
            return None
        self._sent = dict(tasks)
        self._sent_sets = {name: dict(sets.get(name) or {}) for name in DEPENDENCY_SETS}
        self.seq += 1
        return {"seq": self.seq, **body}


@dataclass
class AssignmentReceiver:
    """The receiving side: rebuilds the full sets, refusing a message out of sequence."""

    seq: int = 0
    tasks: dict[str, Obj] = field(default_factory=dict)
    node: Obj | None = None
    sets: dict[str, dict[str, Obj]] = field(default_factory=dict)

    def apply(self, message: Any) -> dict[str, Obj]:
        if not isinstance(message, dict) or not isinstance(message.get("seq"), int):
            raise errors.InvalidArgument("malformed assignment message")
        if message["seq"] != self.seq + 1:
            raise errors.Unavailable(f"assignment stream out of sequence: got {message['seq']} after {self.seq}")
        full = "full" in message
        if full:
            self.tasks = dict(message["full"])
            self.sets = {}
        elif self.seq == 0:
            raise errors.Unavailable("assignment stream did not start with a full set")
        else:
            _apply_changes(self.tasks, message)
        for name in DEPENDENCY_SETS:
            changes = message.get(name)
            if isinstance(changes, dict):
                _apply_changes(self.sets.setdefault(name, {}), changes)
        if isinstance(message.get("node"), dict):
            self.node = message["node"]
        self.seq = message["seq"]
        return dict(self.tasks)

    def current(self, name: str) -> dict[str, Obj]:
        """A copy of one of the DEPENDENCY_SETS as it stands."""
        return dict(self.sets.get(name, {}))


def _apply_changes(target: dict[str, Obj], changes: Mapping[str, Any]) -> None:
    update = changes.get("update") or {}
    if not isinstance(update, dict):
        raise errors.InvalidArgument("malformed assignment message")
    target.update(update)
    for key in changes.get("remove") or []:
        target.pop(key, None)
