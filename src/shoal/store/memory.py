"""The in-memory store: typed tables of Docker-shaped objects, read views, write transactions that go
through a Proposer before they are applied, and a watch queue of the applied changes.

Objects handed out are shared and read-only (store.frozen): clone() one, change the copy, and write it
back in a transaction. Installing a snapshot (restore) reaches watchers too: as the events that turn
the old state into the new one, closed by a Restored marker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from shoal.api import errors
from shoal.api.objects import TABLES, TASKS, Obj, version_of
from shoal.base.clock import Clock, rfc3339
from shoal.store.changes import Action, Change, decode_changes, encode_changes
from shoal.store.frozen import FrozenDict, freezing_object_hook
from shoal.store.proposer import Proposer
from shoal.store.watch import Commit, Event, Predicate, Restored, Subscription, WatchItem, WatchQueue

T = TypeVar("T")

SNAPSHOT_FORMAT = 1
"""The layout of snapshot(): bump it when a change would make an older shoald misread it."""


class ReadView:
    """Read access to tables. Subclassed by Tx, which overlays its staged writes."""

    def __init__(self, tables: dict[str, dict[str, Obj]], by_service: dict[str, set[str]],
                 by_node: dict[str, set[str]]) -> None:
        self._tables = tables
        self._by_service = by_service
        self._by_node = by_node

    def get(self, table: str, obj_id: str) -> Obj | None:
        return self._tables[table].get(obj_id)

    def objects(self, table: str) -> list[Obj]:
        return list(self._tables[table].values())

    def find(self, table: str, predicate: Callable[[Obj], bool]) -> list[Obj]:
        return [obj for obj in self.objects(table) if predicate(obj)]

    def tasks_of_service(self, service_id: str) -> list[Obj]:
        tasks = self._tables[TASKS]
        return [tasks[tid] for tid in self._by_service.get(service_id, ()) if tid in tasks]

    def tasks_of_node(self, node_id: str) -> list[Obj]:
        tasks = self._tables[TASKS]
        return [tasks[tid] for tid in self._by_node.get(node_id, ()) if tid in tasks]


class Tx(ReadView):
    """A write transaction: reads see the store plus this transaction's own staged writes."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store._tables, store._by_service, store._by_node)
        self._clock = store._clock
        self._staged: dict[tuple[str, str], tuple[Action, Obj]] = {}
        self._order: list[tuple[str, str]] = []

    # -- reads that see staged writes
    def get(self, table: str, obj_id: str) -> Obj | None:
        staged = self._staged.get((table, obj_id))
        if staged is not None:
            return None if staged[0] == "delete" else staged[1]
        return super().get(table, obj_id)

    def objects(self, table: str) -> list[Obj]:
        merged = dict(self._tables[table])
        for (tbl, obj_id), (action, obj) in self._staged.items():
            if tbl != table:
                continue
            if action == "delete":
                merged.pop(obj_id, None)
            else:
                merged[obj_id] = obj
        return list(merged.values())

    def tasks_of_service(self, service_id: str) -> list[Obj]:
        return [t for t in self.objects(TASKS) if t.get("ServiceID") == service_id]

    def tasks_of_node(self, node_id: str) -> list[Obj]:
        return [t for t in self.objects(TASKS) if t.get("NodeID") == node_id]

    # -- writes
    def create(self, table: str, obj: Obj) -> Obj:
        obj_id = obj["ID"]
        if self.get(table, obj_id) is not None:
            raise errors.AlreadyExists(f"{table[:-1]} {obj_id} already exists")
        now = rfc3339(self._clock.now())
        obj.setdefault("CreatedAt", now)
        obj["UpdatedAt"] = obj.get("UpdatedAt") or now
        self._stage(table, obj_id, "create", obj)
        return obj

    def update(self, table: str, obj: Obj, *, touch: bool = True) -> Obj:
        """Stage a new version of obj. Its Version.Index must equal the stored one (else
        `update out of sequence`): callers clone what they read, change it, and write it back."""
        current = self.get(table, obj["ID"])
        if current is None:
            raise errors.NotFound(f"{table[:-1]} {obj['ID']} not found")
        if version_of(obj) != version_of(current):
            raise errors.OutOfSequence()
        if touch:
            obj["UpdatedAt"] = rfc3339(self._clock.now())
        staged = self._staged.get((table, obj["ID"]))
        self._stage(table, obj["ID"], staged[0] if staged else "update", obj)
        return obj

    def delete(self, table: str, obj_id: str) -> None:
        current = self.get(table, obj_id)
        if current is None:
            raise errors.NotFound(f"{table[:-1]} {obj_id} not found")
        staged = self._staged.get((table, obj_id))
        if staged is not None and staged[0] == "create":
            del self._staged[(table, obj_id)]
            self._order.remove((table, obj_id))
            return
        self._stage(table, obj_id, "delete", current)

    def _stage(self, table: str, obj_id: str, action: Action, obj: Obj) -> None:
        key = (table, obj_id)
        if key not in self._staged:
            self._order.append(key)
        self._staged[key] = (action, obj)

    def changes(self) -> list[Change]:
        return [Change(self._staged[key][0], key[0], self._staged[key][1]) for key in self._order]


class MemoryStore:
    def __init__(self, proposer: Proposer, clock: Clock) -> None:
        self._proposer = proposer
        self._clock = clock
        self._tables: dict[str, dict[str, Obj]] = {table: {} for table in TABLES}
        self._by_service: dict[str, set[str]] = {}
        self._by_node: dict[str, set[str]] = {}
        self._watch = WatchQueue()
        self._write_lock = asyncio.Lock()
        self.last_index = 0
        proposer.set_apply(self.apply)

    def view(self) -> ReadView:
        return ReadView(self._tables, self._by_service, self._by_node)

    def watch(self, predicate: Predicate | None = None) -> Subscription:
        """Subscribe to applied changes. view() taken right after sees exactly the state the first
        event will follow (asyncio: nothing runs in between)."""
        return self._watch.subscribe(predicate)

    def watchers(self) -> int:
        """How many watch subscriptions are open."""
        return len(self._watch)

    async def update(self, fn: Callable[[Tx], T]) -> T:
        """Run fn in a transaction and commit what it staged. fn must not await: a transaction sees
        one consistent state. Raises what fn raises (and then commits nothing)."""
        async with self._write_lock:
            tx = Tx(self)
            result = fn(tx)
            changes = tx.changes()
            if changes:
                await self._proposer.propose(encode_changes(changes))
            return result

    def apply(self, index: int, payload: bytes) -> None:
        """Apply one committed transaction (called by the Proposer, in index order, on every replica)."""
        items: list[WatchItem] = []
        for change in decode_changes(payload):
            items.append(self._apply_change(index, change))
        self.last_index = index
        items.append(Commit(index))
        self._watch.publish(items)

    def _apply_change(self, index: int, change: Change) -> Event:
        table = self._tables[change.table]
        obj_id = change.obj["ID"]
        old = table.get(obj_id)
        if change.action == "delete":
            table.pop(obj_id, None)
            self._unindex(change.table, old)
            return Event("delete", change.table, old or change.obj, old)
        obj = FrozenDict({**change.obj, "Version": FrozenDict({"Index": index})})
        table[obj_id] = obj
        self._unindex(change.table, old)
        self._index(change.table, obj)
        return Event(change.action, change.table, obj, old)

    def _index(self, table: str, obj: Obj) -> None:
        if table != TASKS:
            return
        self._by_service.setdefault(obj.get("ServiceID", ""), set()).add(obj["ID"])
        self._by_node.setdefault(obj.get("NodeID") or "", set()).add(obj["ID"])

    def _unindex(self, table: str, obj: Obj | None) -> None:
        if table != TASKS or obj is None:
            return
        self._by_service.get(obj.get("ServiceID", ""), set()).discard(obj["ID"])
        self._by_node.get(obj.get("NodeID") or "", set()).discard(obj["ID"])

    # -- snapshots (for journal compaction and Raft snapshots)
    def snapshot(self) -> bytes:
        doc = {"format": SNAPSHOT_FORMAT, "index": self.last_index, "tables": self._tables}
        return json.dumps(doc, separators=(",", ":")).encode()

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's, and tell watchers what changed (see Restored).
        A snapshot of a newer format is refused before anything changes."""
        doc = json.loads(data, object_hook=freezing_object_hook)
        check_snapshot_format(doc.get("format", 1))
        old_tables = self._tables
        self._tables = {table: dict(doc["tables"].get(table, {})) for table in TABLES}
        self._by_service.clear()
        self._by_node.clear()
        for task in self._tables[TASKS].values():
            self._index(TASKS, task)
        self.last_index = int(doc["index"])
        items: list[WatchItem] = []
        for table in TABLES:
            items.extend(_differences(table, old_tables[table], self._tables[table]))
        items.append(Restored(self.last_index))
        self._watch.publish(items)


def check_snapshot_format(found: object) -> None:
    """Snapshots written before the format was recorded are format 1."""
    if found != SNAPSHOT_FORMAT:
        raise errors.FailedPrecondition(
            f"cluster state snapshot has format {found!r}, this shoald reads format {SNAPSHOT_FORMAT}: "
            "run the same shoald version on every manager (upgrade this one)")


def _differences(table: str, old: dict[str, Obj], new: dict[str, Obj]) -> list[Event]:
    """The events that turn table `old` into `new` (an object whose version is unchanged is the same)."""
    events = [Event("delete", table, obj, obj) for obj_id, obj in old.items() if obj_id not in new]
    for obj_id, obj in new.items():
        before = old.get(obj_id)
        if before is None:
            events.append(Event("create", table, obj, None))
        elif version_of(before) != version_of(obj):
            events.append(Event("update", table, obj, before))
    return events


def objects_changed(items: Iterable[WatchItem], table: str) -> list[Event]:
    return [item for item in items if isinstance(item, Event) and item.table == table]
