"""The dispatcher: node sessions and heartbeats, each node's assignment stream, and the batched write
of task statuses reported by agents. A node whose heartbeats stop is marked down; the orchestrators
then replace its tasks.

Refusals are typed errors with swarmkit's dispatcher texts (an agent tells "register again" from
"give up" by them): an unknown node, a node without a session, a stale session, a report for a task
on another node."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from functools import partial

from shoal.api import errors, states
from shoal.api.defaults import HEARTBEAT_GRACE_MULTIPLIER, HEARTBEAT_PERIOD, seconds
from shoal.api.dispatch import Assignments, Session, StatusUpdate
from shoal.api.objects import (
    CONFIGS,
    NETWORKS,
    NODE_ATTACHMENTS,
    NODES,
    SECRETS,
    SENT_ATTACHMENTS_FIELD,
    TASKS,
    Obj,
    clone,
    dig,
)
from shoal.base.clock import Clock
from shoal.base.ids import new_id
from shoal.store.memory import MemoryStore, ReadView, Tx
from shoal.store.watch import Commit, Event

log = logging.getLogger(__name__)
FLUSH_INTERVAL = 0.05
STALL_TOLERANCE = 1.0
# The least time a new leader gives the nodes it has not heard from yet (see _expect_known_nodes), on top
# of their grace: an agent whose leader was cut off (not killed: its calls hang instead of failing) needs a
# call timeout to notice, a retry delay, and another call timeout per unreachable manager to find the new
# leader. This is what Swarm's default grace gives (3 periods of 5 s); a shorter heartbeat must not shorten it.
LEADER_CHANGE_GRACE = 15.0


DEFAULT_PERIOD = seconds(HEARTBEAT_PERIOD)


class Dispatcher:
    def __init__(self, store: MemoryStore, clock: Clock,
                 heartbeat_period: float | Callable[[], float] = DEFAULT_PERIOD) -> None:
        """``heartbeat_period`` in seconds, or a function giving it (the cluster spec's, read each time,
        so `swarm update --dispatcher-heartbeat` applies at once)."""
        self._store = store
        self._clock = clock
        self._period_of: Callable[[], float] = (
            heartbeat_period if callable(heartbeat_period) else (lambda: float(heartbeat_period))
        )
        self._sessions: dict[str, str] = {}
        # when each node goes down unless heard from: set with the period it was told, so a changed
        # period applies to a node only once its answer carried it (as swarmkit's heartbeat expiry)
        self._deadline: dict[str, float] = {}
        self._pending: dict[str, tuple[str, Obj]] = {}

    async def register(self, node_id: str, description: Obj, addr: str) -> Session:
        session_id = new_id()

        def mark_ready(tx: Tx) -> None:
            node = tx.get(NODES, node_id)
            if node is None:
                raise errors.NotFound("node not found", grpc=True)
            described = {**description, "TLSInfo": dig(node, "Description", "TLSInfo") or {}}
            status = {"State": "ready", "Addr": addr}
            if clone(node.get("Description") or {}) == described and clone(node.get("Status") or {}) == status:
                return  # a re-registration that changes nothing a client sees writes nothing
            node = clone(node)
            node["Description"] = described
            node["Status"] = status
            tx.update(NODES, node)

        await self._store.update(mark_ready)
        self._sessions[node_id] = session_id
        return Session(session_id, self._heard_from(node_id))

    async def heartbeat(self, node_id: str, session_id: str) -> float:
        self._check_session(node_id, session_id)
        return self._heard_from(node_id)

    def _heard_from(self, node_id: str) -> float:
        """The period to tell the node, which sets its next deadline."""
        period = self._period_of()
        self._deadline[node_id] = self._clock.monotonic() + period * HEARTBEAT_GRACE_MULTIPLIER
        return period

    def _check_session(self, node_id: str, session_id: str) -> None:
        current = self._sessions.get(node_id)
        if current is None:
            raise errors.NotFound("node not registered", grpc=True)
        if current != session_id:
            raise errors.InvalidArgument("session invalid", grpc=True)

    async def assignments(self, node_id: str, session_id: str) -> AsyncIterator[Assignments]:
        """The node's task set and its own node object now, then again after each commit that touched
        either."""
        self._check_session(node_id, session_id)

        def touches_node(event: Event) -> bool:
            if event.table in (NODES, NODE_ATTACHMENTS):  # its own object, and its load-balancer addresses
                return bool(event.obj.get("ID") == node_id)
            if event.table != TASKS:
                return False
            return node_id in (event.obj.get("NodeID"), (event.old or {}).get("NodeID"))

        with self._store.watch(touches_node) as sub:
            yield self._snapshot(node_id)
            while True:
                item = await sub.get()
                if isinstance(item, Commit):  # or Restored: a snapshot replaced the state
                    # drain whatever else is already queued, then send one snapshot
                    while (extra := sub.get_nowait()) is not None:
                        del extra
                    yield self._snapshot(node_id)

    def _snapshot(self, node_id: str) -> Assignments:
        view = self._store.view()
        tasks = {t["ID"]: t for t in view.tasks_of_node(node_id) if t.get("NodeID") == node_id}
        secrets, configs = _dependencies(view, tasks.values())
        return Assignments(tasks, _with_attachments(view, view.get(NODES, node_id)), secrets, configs)

    async def update_status(self, node_id: str, session_id: str, updates: list[StatusUpdate]) -> None:
        """Queue reported statuses for the next batch. A report naming a task of another node or a
        state that does not exist refuses the whole call (nothing is queued); a task that is gone
        already is skipped (deleting it raced the report)."""
        self._check_session(node_id, session_id)
        view = self._store.view()
        for update in updates:
            task = view.get(TASKS, update.task_id)
            if task is not None and task.get("NodeID") != node_id:
                raise errors.Forbidden("cannot update a task not assigned this node", grpc=True)
            state = update.status.get("State")
            if state is not None and not states.is_valid(state):
                raise errors.InvalidArgument(f"task {update.task_id}: invalid task state {state!r}", grpc=True)
        for update in updates:
            self._pending[update.task_id] = (node_id, update.status)

    def queued_reports(self) -> int:
        """How many task statuses wait for the next batch."""
        return len(self._pending)

    async def run(self) -> None:
        """Write queued statuses in batches (a burst of reports becomes one transaction) and watch
        heartbeats."""
        self._expect_known_nodes()
        while True:
            before = self._clock.monotonic()
            await self._clock.sleep(FLUSH_INTERVAL)
            self._forgive_own_stall(self._clock.monotonic() - before - FLUSH_INTERVAL)
            if self._pending:
                batch, self._pending = self._pending, {}
                try:
                    await self._store.update(partial(_write_statuses, batch=batch))
                except Exception:
                    # Agents report a state once; a dropped batch would leave tasks wrong for good.
                    # Newer reports for the same task win.
                    self._pending = {**batch, **self._pending}
                    raise
            await self._mark_silent_nodes_down()

    def _expect_known_nodes(self) -> None:
        """A new leader has heard from nobody yet: every node the store does not hold down gets a
        deadline, so one that never comes back goes down. It counts from now, with a second grace
        period (at least LEADER_CHANGE_GRACE) on top (swarmkit gives such "unknown" nodes twice the usual
        time), so a leader change
        alone marks no node down while the agents find the new leader."""
        grace = self._period_of() * HEARTBEAT_GRACE_MULTIPLIER
        deadline = self._clock.monotonic() + max(grace, LEADER_CHANGE_GRACE) + grace
        for node in self._store.view().objects(NODES):
            if dig(node, "Status", "State") != "down":
                self._deadline.setdefault(node["ID"], deadline)

    def _forgive_own_stall(self, lateness: float) -> None:
        """If this loop itself woke late (process stopped, machine suspended, event loop blocked),
        heartbeats could not have been received either: move every deadline by that much rather than
        declaring nodes down for our own silence."""
        if lateness > STALL_TOLERANCE:
            self._deadline = {node_id: due + lateness for node_id, due in self._deadline.items()}

    async def _mark_silent_nodes_down(self) -> None:
        now = self._clock.monotonic()
        silent = [node_id for node_id, due in self._deadline.items() if due < now]
        if not silent:
            return
        for node_id in silent:
            self._deadline.pop(node_id, None)
            self._sessions.pop(node_id, None)

        def mark_down(tx: Tx) -> None:
            for node_id in silent:
                node = tx.get(NODES, node_id)
                if node is None:
                    continue
                node = clone(node)
                node["Status"] = {**node.get("Status", {}), "State": "down", "Message": "heartbeat failure"}
                tx.update(NODES, node)

        log.warning("nodes down after missed heartbeats: %s", ", ".join(silent))
        await self._store.update(mark_down)


def _dependencies(view: ReadView, tasks: Iterable[Obj]) -> tuple[dict[str, Obj], dict[str, Obj]]:
    """The secrets and configs the node needs: those referenced by its tasks that have not finished
    (Swarm's rule: once a task is past RUNNING, what it alone used is taken back from the node)."""
    wanted: dict[str, dict[str, Obj]] = {SECRETS: {}, CONFIGS: {}}
    for task in tasks:
        if states.rank(dig(task, "Status", "State", default=states.NEW)) > states.rank(states.RUNNING):
            continue
        container = dig(task, "Spec", "ContainerSpec") or {}
        for table, refs, key in ((SECRETS, "Secrets", "SecretID"), (CONFIGS, "Configs", "ConfigID")):
            for ref in container.get(refs) or ():
                obj_id = ref.get(key) if isinstance(ref, dict) else None
                obj = view.get(table, obj_id) if isinstance(obj_id, str) else None
                if obj is not None:
                    wanted[table][obj["ID"]] = obj
    return wanted[SECRETS], wanted[CONFIGS]


def _write_statuses(tx: Tx, *, batch: dict[str, tuple[str, Obj]]) -> None:
    """Apply reported statuses; a report from the wrong node or one that would move a task's state
    backwards is dropped (states only move forward)."""
    for task_id, (node_id, status) in batch.items():
        task = tx.get(TASKS, task_id)
        if task is None or task.get("NodeID") != node_id:
            continue
        current = dig(task, "Status", "State", default=states.NEW)
        new = status.get("State", current)
        if not states.is_valid(new) or states.rank(new) < states.rank(current):
            continue
        updated = clone(task)
        updated["Status"] = status
        tx.update(TASKS, updated)


def _with_attachments(view: ReadView, node: Obj | None) -> Obj | None:
    """The node's object with its load-balancer addresses, each with its whole network (a worker shows
    ingress, which none of its tasks may be on), as Swarm's session carries Node.Attachments."""
    record = None if node is None else view.get(NODE_ATTACHMENTS, str(node["ID"]))
    if node is None or record is None:
        return node
    attachments = []
    for attachment in record.get("Attachments") or []:
        network = view.get(NETWORKS, str(dig(attachment, "Network", "ID") or ""))
        if network is not None:
            attachments.append({**attachment, "Network": network})
    return {**node, SENT_ATTACHMENTS_FIELD: attachments}
