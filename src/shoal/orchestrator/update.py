"""Rolling updates and rollbacks. When a service's tasks are out of date (dirty) the updater replaces
them slot by slot: at most Parallelism slots in flight (0 = all), a slot stays in flight until its new
task runs and then for Delay; stop-first stops the old task before the new one starts, start-first
stops it once the new one runs. New tasks that fail before running, or within Monitor after, count
as failures; past MaxFailureRatio the FailureAction applies (pause, continue, or rollback to
PreviousSpec). UpdateStatus carries Swarm's states and messages.

Progress is read from the store each pass: a slot is done when it holds a task of the current spec
made by this update, i.e. whose SpecVersion (the service's raft index when the task was created) is
at least the service's index when the update began. That index is kept in memory; a leader that picks
up an update half-way also counts tasks created since UpdateStatus.StartedAt. When each task was
first seen running is kept in memory too, to tell early failures from late ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shoal.api import states
from shoal.api.defaults import UPDATE_DEFAULTS, seconds
from shoal.api.objects import SERVICES, Obj, clone, dig, version_of
from shoal.base.clock import rfc3339
from shoal.orchestrator.dirty import is_task_dirty
from shoal.orchestrator.pass_state import ServiceTasks
from shoal.orchestrator.restart import is_restart
from shoal.orchestrator.task import created_at, creation_order, is_live, observed, parse_time, slot_key, status_time

UPDATING = "updating"
PAUSED = "paused"
COMPLETED = "completed"
ROLLBACK_STARTED = "rollback_started"
ROLLBACK_PAUSED = "rollback_paused"
ROLLBACK_COMPLETED = "rollback_completed"
IN_PROGRESS = (UPDATING, ROLLBACK_STARTED)
_EARLY_END = (states.FAILED, states.REJECTED, states.COMPLETE)


@dataclass(frozen=True)
class UpdateConfig:
    parallelism: int = UPDATE_DEFAULTS["Parallelism"]
    delay: float = 0.0  # seconds
    failure_action: str = UPDATE_DEFAULTS["FailureAction"]
    monitor: float = seconds(UPDATE_DEFAULTS["Monitor"])
    max_failure_ratio: float = UPDATE_DEFAULTS["MaxFailureRatio"]
    order: str = UPDATE_DEFAULTS["Order"]


def update_config(service_spec: Obj, rollback: bool) -> UpdateConfig:
    """Spec.UpdateConfig (or RollbackConfig), with Swarm's defaults. A config given without
    Parallelism means 0, all at once, as the Go API decodes it."""
    config = service_spec.get("RollbackConfig" if rollback else "UpdateConfig")
    if not config:
        return UpdateConfig()
    monitor = seconds(int(config.get("Monitor") or 0))
    return UpdateConfig(
        parallelism=int(config.get("Parallelism") or 0),
        delay=seconds(int(config.get("Delay") or 0)),
        failure_action=str(config.get("FailureAction") or UpdateConfig.failure_action),
        monitor=monitor or UpdateConfig.monitor,
        max_failure_ratio=float(config.get("MaxFailureRatio") or 0.0),
        order=str(config.get("Order") or UpdateConfig.order),
    )


def _slot_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


@dataclass(frozen=True)
class _UpdateRun:
    """Which tasks belong to the update in progress."""

    status_key: tuple[str, str]  # (State, StartedAt) of the UpdateStatus it belongs to
    since_version: int  # tasks with a SpecVersion at least this were made by the update
    started: datetime
    by_time: bool  # picked up half-way: tasks created since StartedAt count too

    def made(self, task: Obj) -> bool:
        version = int(dig(task, "SpecVersion", "Index", default=0) or 0)
        return version >= self.since_version or (self.by_time and created_at(task) >= self.started)


class Updater:
    def __init__(self) -> None:
        # Manager-side times (agents' clocks may be skewed), as Swarm's updater keeps them.
        self._running_since: dict[str, datetime] = {}  # task id → when first seen running
        self._early_failure: dict[str, bool] = {}  # task id → verdict when first seen ended
        self._runs: dict[str, _UpdateRun] = {}  # service id → the update in progress
        # is_task_dirty verdicts by (task, task version, service version, node version): comparing
        # specs is the costliest part of a pass over thousands of unchanged tasks.
        self._dirty_cache: dict[tuple[str, int, int, int], bool] = {}

    def forget(self, live_task_ids: set[str], service_ids: set[str]) -> None:
        """Drop what is known about tasks and services that no longer exist."""
        for memory in (self._running_since, self._early_failure):
            for task_id in set(memory) - live_task_ids:
                del memory[task_id]
        for service_id in set(self._runs) - service_ids:
            del self._runs[service_id]
        # Keys of older versions are never asked for again; start afresh rather than grow.
        if len(self._dirty_cache) > 4 * max(len(live_task_ids), 1000):
            self._dirty_cache.clear()

    def roll(self, group: ServiceTasks, slots: dict[str, list[Obj]]) -> None:
        service = group.service
        status: Obj = service.get("UpdateStatus") or {}
        state = str(status.get("State") or "")
        if state in (PAUSED, ROLLBACK_PAUSED):
            return
        run = group.run
        self._settle_slots(group, slots)
        dirty = {key: tasks for key, tasks in slots.items() if self._is_dirty_slot(group, tasks)}
        started_here = False
        if state not in IN_PROGRESS:
            self._runs.pop(service["ID"], None)
            if not dirty:
                return
            state, started_here = UPDATING, True
            status = {"State": UPDATING, "StartedAt": rfc3339(run.now), "Message": "update in progress"}
            run.builder.edit(SERVICES, service)["UpdateStatus"] = status
        elif not status.get("StartedAt"):
            # A rollback requested through the API may come without a start time: stamp it once.
            status = {**status, "StartedAt": rfc3339(run.now)}
            run.builder.edit(SERVICES, service)["UpdateStatus"] = status
        update = self._run_for(service, status, picked_up=not started_here)
        rollback = state == ROLLBACK_STARTED
        config = update_config(service.get("Spec", {}), rollback)
        touched = {key: tasks for key, tasks in slots.items() if self._touched(group, tasks, update)}
        if config.failure_action != "continue" and self._handle_failures(
            group, touched, dirty, config, rollback, update
        ):
            return
        busy = self._advance_touched(group, touched, config)
        waiting = sorted((k for k in dirty if k not in touched), key=_slot_order)
        room = len(waiting) if config.parallelism <= 0 else max(config.parallelism - busy, 0)
        for key in waiting[:room]:
            self._update_slot(group, key, slots[key], config)
        if not waiting and not busy:
            self._maybe_complete(group, touched, config, rollback)

    # -- slot classification

    def _is_dirty_slot(self, group: ServiceTasks, tasks: list[Obj]) -> bool:
        return all(self._dirty(group, t) for t in tasks)

    def _dirty(self, group: ServiceTasks, task: Obj) -> bool:
        node = group.run.nodes.get(str(task.get("NodeID") or ""))
        key = (task["ID"], version_of(task), version_of(group.service), version_of(node) if node else 0)
        verdict = self._dirty_cache.get(key)
        if verdict is None:
            verdict = self._dirty_cache[key] = is_task_dirty(group.service, task, node)
        return verdict

    def _run_for(self, service: Obj, status: Obj, *, picked_up: bool) -> _UpdateRun:
        key = (str(status.get("State")), str(status.get("StartedAt")))
        known = self._runs.get(service["ID"])
        if known is None or known.status_key != key:
            known = _UpdateRun(key, version_of(service), parse_time(status["StartedAt"]), by_time=picked_up)
            self._runs[service["ID"]] = known
        return known

    def _touched(self, group: ServiceTasks, tasks: list[Obj], update: _UpdateRun) -> bool:
        """The slot holds a task of the current spec made by this update."""
        return any(not self._dirty(group, t) and update.made(t) for t in tasks)

    def _new_tasks(self, group: ServiceTasks, tasks: list[Obj]) -> list[Obj]:
        return [t for t in tasks if not self._dirty(group, t)]

    # -- progress

    def _settle_slots(self, group: ServiceTasks, slots: dict[str, list[Obj]]) -> None:
        """A slot whose current-spec task runs needs no other wanted task: stop the rest (the end of
        a start-first swap, or a duplicate left by a network partition)."""
        for tasks in slots.values():
            wanted = [t for t in tasks if is_live(t)]
            if len(wanted) < 2:
                continue
            running = [t for t in self._new_tasks(group, wanted) if observed(t) == states.RUNNING]
            if not running:
                continue
            keep = max(running, key=creation_order)
            for task in wanted:
                if task is not keep:
                    group.set_desired(task, states.SHUTDOWN)

    def _advance_touched(self, group: ServiceTasks, touched: dict[str, list[Obj]], config: UpdateConfig) -> int:
        """Count the updated slots still in flight: their new task is not running yet, or started
        less than Delay ago."""
        busy = 0
        for tasks in touched.values():
            running = [t for t in self._new_tasks(group, tasks) if observed(t) == states.RUNNING]
            for task in running:
                self._running_since.setdefault(task["ID"], group.run.now)
            if not running:
                busy += 1
                continue
            since = min(self._running_since[t["ID"]] for t in running)
            left = config.delay - (group.run.now - since).total_seconds()
            if left > 0:
                busy += 1
                group.run.builder.plan.wake_in(left)
        return busy

    def _update_slot(self, group: ServiceTasks, key: str, tasks: list[Obj], config: UpdateConfig) -> None:
        node_id = key[len("node:") :] if key.startswith("node:") else ""
        slot = 0 if node_id else int(key)
        wanted = [t for t in tasks if is_live(t)]
        if config.order == "start-first" and wanted:
            group.create(slot=slot, node_id=node_id)
            return
        for task in wanted:
            group.set_desired(task, states.SHUTDOWN)
        group.create(slot=slot, node_id=node_id, held=bool(wanted))

    def _maybe_complete(
        self, group: ServiceTasks, touched: dict[str, list[Obj]], config: UpdateConfig, rollback: bool
    ) -> None:
        run = group.run
        starts = [
            self._running_since[t["ID"]]
            for tasks in touched.values()
            for t in self._new_tasks(group, tasks)
            if t["ID"] in self._running_since
        ]
        if starts:
            # As Swarm: the last slot's Delay, then the monitor period (Delay + 1 s when the delay
            # is not shorter than the monitor), counted from when the last new task ran.
            period = config.monitor if config.delay < config.monitor else config.delay + 1
            left = config.delay + period - (run.now - max(starts)).total_seconds()
            if left > 0:
                run.builder.plan.wake_in(left)
                return
        status = clone(group.service.get("UpdateStatus") or {})
        status.update(
            State=ROLLBACK_COMPLETED if rollback else COMPLETED,
            CompletedAt=rfc3339(run.now),
            Message="rollback completed" if rollback else "update completed",
        )
        run.builder.edit(SERVICES, group.service)["UpdateStatus"] = status

    # -- failures

    def _handle_failures(
        self,
        group: ServiceTasks,
        touched: dict[str, list[Obj]],
        dirty: dict[str, list[Obj]],
        config: UpdateConfig,
        rollback: bool,
        update: _UpdateRun,
    ) -> bool:
        """Apply the failure action once too many new tasks failed; True when the update stops here."""
        slots = group.by_slot()
        failed = [
            task
            for task in group.all()
            if not self._dirty(group, task)
            and update.made(task)
            and not is_restart(task, slots.get(slot_key(task), []))
            and self._failed_early(task, config, group.run.now)
        ]
        total = len(touched) + len([k for k in dirty if k not in touched])
        if not failed or len(failed) <= config.max_failure_ratio * max(total, 1):
            return False
        culprit = max(failed, key=status_time)["ID"]
        service = group.service
        edited = group.run.builder.edit(SERVICES, service)
        status = clone(service.get("UpdateStatus") or {})
        if rollback:
            status.update(
                State=ROLLBACK_PAUSED, Message=f"rollback paused due to failure or early termination of task {culprit}"
            )
        elif config.failure_action == "rollback" and service.get("PreviousSpec"):
            # As Swarm: back to the previous spec, which is then forgotten; StartedAt stays.
            edited["Spec"] = clone(service["PreviousSpec"])
            edited.pop("PreviousSpec", None)
            status.update(
                State=ROLLBACK_STARTED,
                Message=f"update rolled back due to failure or early termination of task {culprit}",
            )
            # The rollback's own tasks are those made from now on.
            key = (ROLLBACK_STARTED, str(status.get("StartedAt")))
            self._runs[service["ID"]] = _UpdateRun(key, version_of(service), update.started, by_time=False)
        else:
            status.update(State=PAUSED, Message=f"update paused due to failure or early termination of task {culprit}")
        edited["UpdateStatus"] = status
        return True

    def _failed_early(self, task: Obj, config: UpdateConfig, now: datetime) -> bool:
        """Ended before running, or within Monitor of starting to run; judged once, when first seen
        ended (a task not seen running by this leader counts as an early end)."""
        if observed(task) not in _EARLY_END:
            if observed(task) == states.RUNNING:
                self._running_since.setdefault(task["ID"], now)
            return False
        if task["ID"] not in self._early_failure:
            since = self._running_since.get(task["ID"])
            self._early_failure[task["ID"]] = since is None or now - since <= timedelta(seconds=config.monitor)
        return self._early_failure[task["ID"]]
