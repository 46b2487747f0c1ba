"""The worker side of a node: a session with a dispatcher, one TaskManager per assigned task, and
batched status reports. Tasks found running from an earlier daemon are re-adopted, not restarted."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

from shoal.agent.health import HealthBook, HealthChecks
from shoal.agent.runtime import task_files, task_runtime
from shoal.agent.taskmanager import TaskManager
from shoal.api import errors
from shoal.api.defaults import HEARTBEAT_GRACE_MULTIPLIER
from shoal.api.dispatch import Assignments, DispatcherClient, Session, StatusUpdate
from shoal.api.objects import Obj
from shoal.base.clock import Clock
from shoal.executor.base import AdoptedTask, Executor
from shoal.executor.errors import ExecutorError

log = logging.getLogger(__name__)
REPORT_INTERVAL = 0.05
RETRY_DELAY = 1.0


class Agent:
    def __init__(self, node_id: str, addr: str, executor: Executor, dispatcher: DispatcherClient,
                 clock: Clock, on_tasks_changed: Callable[[], None] | None = None, hostname: str = "",
                 on_node: Callable[[Obj], None] | None = None, health_book: HealthBook | None = None) -> None:
        """``hostname`` overrides the host's own in the node description (shoald's --node-name);
        ``on_node`` is told this node's own object whenever the managers send it (its desired role);
        ``health_book`` is where the tasks' health is kept for `docker ps` and `docker inspect`."""
        self.node_id = node_id
        self._addr = addr
        self._executor = executor
        self._dispatcher = dispatcher
        self._clock = clock
        self._managers: dict[str, TaskManager] = {}
        self._adopted: dict[str, AdoptedTask] = {}
        self._outbox: dict[str, Obj] = {}
        self._session: Session | None = None
        self._hostname = ""
        self._on_tasks_changed = on_tasks_changed
        self._hostname_override = hostname
        self._on_node = on_node
        self.node: Obj | None = None
        """This node's own object as the managers last sent it (with its load-balancer addresses)."""
        self.health = HealthChecks(executor, clock, health_book)
        self.registered = asyncio.Event()
        """Set once a dispatcher has taken this node's first session (the node is Ready)."""
        self.removed = asyncio.Event()
        """Set when the managers refuse this node because it was removed from the swarm (`node rm`
        while it was away): whatever it still runs as a manager must stop (node/roles.py)."""

    @property
    def managers(self) -> dict[str, TaskManager]:
        return self._managers

    async def run(self) -> None:
        description = await self._executor.describe()
        if self._hostname_override:
            description = dataclasses.replace(description, hostname=self._hostname_override)
        self._hostname = description.hostname
        self._adopted = {a.runtime.task_id: a for a in await self._executor.adopt()}
        if self._adopted:
            log.info("re-adopting %d task(s) from an earlier run", len(self._adopted))
        while True:
            try:
                self._session = await self._dispatcher.register(self.node_id, description.to_docker(), self._addr)
                self.registered.set()
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._heartbeats())
                    group.create_task(self._reporter())
                    async for assignments in self._dispatcher.assignments(self.node_id, self._session.session_id):
                        await self._reconcile(assignments)
                        if assignments.node is not None:
                            self.node = assignments.node
                        if assignments.node is not None and self._on_node is not None:
                            self._on_node(assignments.node)
            except asyncio.CancelledError:
                raise
            except errors.Forbidden as exc:
                if not self._refused_as_removed(exc):
                    log.exception("agent session refused; retrying")
                await self._clock.sleep(RETRY_DELAY)
            except Exception:
                log.exception("agent session ended; retrying")
                await self._clock.sleep(RETRY_DELAY)

    def _refused_as_removed(self, exc: errors.Forbidden) -> bool:
        """Whether the managers refused this node because it was removed (the cluster port's refusal
        names the node), logged once rather than at every retry. The agent keeps trying: its tasks
        run on, as on a Swarm worker whose certificate is refused."""
        if f"node {self.node_id} was removed from the swarm" not in str(exc):
            return False
        if not self.removed.is_set():
            log.warning("the managers refuse this node: it was removed from the swarm (%s)", exc)
            self.removed.set()
        return True

    async def _heartbeats(self) -> None:
        """A heartbeat every half period, each on its own: one stuck behind TCP's retransmission backoff on
        a lossy link must not hold back the next, which can get through on another connection. The
        session ends when the dispatcher refuses one, or when none was answered for a whole grace."""
        assert self._session is not None
        session_id = self._session.session_id
        period = self._session.heartbeat_period
        answered = self._clock.monotonic()
        refusal: list[BaseException] = []

        async def beat() -> None:
            nonlocal period, answered
            try:
                told = await self._dispatcher.heartbeat(self.node_id, session_id)
                answered = self._clock.monotonic()
                if told != period:
                    log.info("heartbeat period now %g s", told)
                period = told
            except errors.Unavailable:
                return  # unreachable for now: a later heartbeat may get through (the grace decides)
            except Exception as exc:  # refused (e.g. the dispatcher forgot this session): register again
                refusal.append(exc)

        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._clock.sleep(period / 2)
                if refusal:
                    raise refusal[0]
                if self._clock.monotonic() - answered > period * HEARTBEAT_GRACE_MULTIPLIER:
                    raise errors.Unavailable("no heartbeat answered within the grace period")
                sent = asyncio.create_task(beat())
                in_flight.add(sent)
                sent.add_done_callback(in_flight.discard)
        finally:
            for sent in in_flight:
                sent.cancel()

    async def _reporter(self) -> None:
        assert self._session is not None
        while True:
            await self._clock.sleep(REPORT_INTERVAL)
            if self._outbox:
                batch, self._outbox = self._outbox, {}
                updates = [StatusUpdate(task_id, status) for task_id, status in batch.items()]
                try:
                    await self._dispatcher.update_status(self.node_id, self._session.session_id, updates)
                except BaseException:
                    # Keep them for the next session (reports made since are newer and win): a task
                    # manager never repeats a report, so a dropped batch would leave e.g. a dead
                    # task "running" in the store for good.
                    self._outbox = {**batch, **self._outbox}
                    raise

    def _report(self, task_id: str, status: Obj) -> None:
        self._outbox[task_id] = status
        if self._on_tasks_changed is not None:
            self._on_tasks_changed()

    async def _reconcile(self, assignments: Assignments) -> None:
        for task_id, task in assignments.tasks.items():
            manager = self._managers.get(task_id)
            if manager is not None:
                manager.update(task)
                continue
            self._managers[task_id] = manager = self._new_manager(task, assignments)
            manager.start()
        for task_id in [t for t in self._managers if t not in assignments.tasks]:
            await self._managers.pop(task_id).remove()
        for task_id in [t for t in self._adopted if t not in assignments.tasks]:
            orphan = self._adopted.pop(task_id)
            log.info("removing task %s left from an earlier run: no longer assigned", task_id)
            with contextlib.suppress(Exception):
                await self._executor.controller(orphan.runtime).remove()

    def _new_manager(self, task: Obj, assignments: Assignments) -> TaskManager:
        adopted = self._adopted.pop(task["ID"], None)
        if adopted is not None:
            # files are never persisted with the runtime: a task adopted before it started gets
            # them again from this assignment (a running one already has its tmpfs)
            runtime = adopted.runtime
            with contextlib.suppress(ValueError):
                runtime = dataclasses.replace(runtime, files=task_files(
                    task, self.node_id, self._hostname, assignments.secrets, assignments.configs))
            controller = self._executor.controller(runtime)
            return TaskManager(task, controller, self._report, self._clock, adopted=adopted.status,
                               health=self.health)
        try:
            runtime = task_runtime(task, self.node_id, self._hostname, assignments.secrets, assignments.configs)
            controller = self._executor.controller(runtime)
        except (ValueError, ExecutorError) as exc:
            # One task the executor cannot run must not stop the others: it is rejected alone.
            return TaskManager(task, None, self._report, self._clock, rejection=str(exc))
        return TaskManager(task, controller, self._report, self._clock, health=self.health)

    async def stop(self) -> None:
        """Leave workloads running for the next daemon to adopt."""
        for manager in self._managers.values():
            await manager.stop()

    async def remove_all(self) -> None:
        """Leaving the swarm: kill and delete every task container at once, without the stop grace
        period (dockerd force-removes a leaving node's containers). A task that cannot be killed (it
        never had a container, or it is already gone) must not stop the others."""

        async def kill_and_remove(manager: TaskManager) -> None:
            if manager.controller is not None:
                with contextlib.suppress(ExecutorError):
                    await manager.controller.terminate()
            await manager.remove()

        managers, self._managers = list(self._managers.values()), {}
        results = await asyncio.gather(*(kill_and_remove(m) for m in managers), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("removing a task while leaving the swarm failed: %s", result)
