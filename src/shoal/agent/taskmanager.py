"""One task on this node: drive its controller from the task's desired state and report every
observed state it passes through, in Swarm's order and wording. A task with a health check stays
STARTING until its first healthy probe and fails once it turns unhealthy, as Swarm's does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from shoal.agent.health import HEALTHY, UNHEALTHY, UNHEALTHY_ERROR, HealthChecks, HealthMonitor
from shoal.api import states
from shoal.api.objects import Obj, dig
from shoal.base.clock import Clock, rfc3339
from shoal.executor.base import ContainerState, ContainerStatus, Controller, host_mode_bindings
from shoal.executor.errors import ExecutorError

log = logging.getLogger(__name__)
Report = Callable[[str, Obj], None]


class TaskManager:
    def __init__(self, task: Obj, controller: Controller | None, report: Report, clock: Clock,
                 adopted: ContainerStatus | None = None, rejection: str = "",
                 health: HealthChecks | None = None) -> None:
        """`controller` is None when the task could not even be described to the executor; it is then
        rejected with `rejection` as its error. `health` runs the task's health checks, if any."""
        self.task = task
        self._controller = controller
        self._rejection = rejection
        self._report = report
        self._clock = clock
        self._adopted = adopted
        self._observed = dig(task, "Status", "State", default=states.ASSIGNED)
        self._changed = asyncio.Event()
        self._container: ContainerStatus | None = adopted
        self._job: asyncio.Task[None] | None = None
        self._health = health
        self._monitor: HealthMonitor | None = None

    @property
    def controller(self) -> Controller | None:
        return self._controller

    def start(self) -> None:
        self._job = asyncio.create_task(self._run(), name=f"task {self.task['ID']}")

    def update(self, task: Obj) -> None:
        self.task = task
        self._changed.set()

    async def remove(self) -> None:
        """The task is gone from the assignments: stop it if needed and delete its container."""
        await self.stop()
        if self._container is not None and self._health is not None:
            self._health.book.forget(self._container.container_id)
        if self._controller is not None:
            with contextlib.suppress(ExecutorError):
                await self._controller.remove()

    async def stop(self) -> None:
        """shoald is going away: leave the workload running (it is re-adopted on start)."""
        if self._job is not None:
            self._job.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._job

    # -- the state machine
    def _live(self) -> Controller:
        assert self._controller is not None, "a rejected task never drives a controller"
        return self._controller

    def _desired(self) -> str:
        return str(self.task.get("DesiredState", states.RUNNING))

    def _set(self, state: str, message: str, err: str = "", status: ContainerStatus | None = None) -> None:
        # Only progress is reported: re-reporting the state the task already has would just move its
        # Status.Timestamp ("Running 2 seconds ago" for a re-adopted task that never stopped).
        if states.rank(state) <= states.rank(self._observed):
            return
        self._observed = state
        body: Obj = {"Timestamp": rfc3339(self._clock.now()), "State": state, "Message": message}
        if err:
            body["Err"] = err
        container = status or self._container
        if container is not None:
            body["ContainerStatus"] = {
                "ContainerID": container.container_id,
                "PID": container.pid or 0,
                "ExitCode": container.exit_code or 0,
            }
            if container.address:
                body["ContainerStatus"]["Addr"] = container.address
        ports = self._host_ports(container) if container is not None else []
        body["PortStatus"] = {"Ports": ports} if ports else {}
        self._report(self.task["ID"], body)

    def _host_ports(self, container: ContainerStatus) -> list[Obj]:
        """The host-mode ports the task's container publishes on this node (what `docker service ps`
        shows in PORTS), as Swarm's agent reports them once the container exists: the ones the runtime
        says it bound (it chose the port of one published as 0), else the spec's. One entry per port,
        though an engine binds it on 0.0.0.0 and :: both."""
        bound = container.host_ports or host_mode_bindings(self.task)
        ports: list[Obj] = []
        for b in bound:
            port = {"Protocol": b.protocol, "TargetPort": b.target, "PublishedPort": b.host_port, "PublishMode": "host"}
            if port not in ports:
                ports.append(port)
        return ports

    async def _run(self) -> None:
        try:
            await self._drive()
        except asyncio.CancelledError:
            raise
        except ExecutorError as exc:
            state = states.REJECTED if states.rank(self._observed) < states.rank(states.STARTING) else states.FAILED
            self._set(state, "rejected" if state == states.REJECTED else "failed", err=str(exc))
        except Exception as exc:
            log.exception("task %s failed in the agent", self.task["ID"])
            self._set(states.FAILED, "failed", err=str(exc))

    async def _drive(self) -> None:
        if states.is_terminal(self._observed):
            return
        # A container prepared but never started (e.g. held for its restart delay when shoald
        # stopped) carries on through the normal path: prepare and start are idempotent.
        if self._adopted is not None and self._adopted.state is not ContainerState.CREATED:
            await self._after_adoption()
            return
        if self._stop_requested():
            self._set(states.SHUTDOWN, "shutdown")
            return
        if self._controller is None:
            self._set(states.REJECTED, "rejected", err=self._rejection)
            return
        if self._adopted is None and states.rank(self._observed) >= states.rank(states.STARTING):
            # The store says this task started here, but its container is gone (removed behind our
            # back, or its state lost): starting a new one would hide that; fail it so the
            # orchestrator replaces it, as Swarm does.
            self._set(states.FAILED, "failed", err="task: container lost while shoald was not watching it")
            return
        self._set(states.ACCEPTED, "accepted")
        self._set(states.PREPARING, "preparing")
        await self._live().prepare()
        self._set(states.READY, "prepared")
        while self._desired() == states.READY:  # restart delay: wait until promoted to running
            await self._next_change()
        if self._stop_requested():
            self._set(states.SHUTDOWN, "shutdown")
            return
        self._set(states.STARTING, "starting")
        await self._live().start()
        self._container = await self._live().inspect()
        if not self._watch_health(self._container):
            self._set(states.RUNNING, "started")
        await self._watch_running()

    async def _after_adoption(self) -> None:
        assert self._adopted is not None
        if self._adopted.running:
            # a task still STARTING when shoald stopped waits for its health check again
            if not self._watch_health(self._adopted) or self._observed == states.RUNNING:
                self._set(states.RUNNING, "started")
            await self._watch_running()
        else:
            self._finish(self._adopted)

    def _watch_health(self, container: ContainerStatus) -> bool:
        """Start probing the task if it has a health check; returns whether it has one."""
        if self._health is None:
            return False
        spec_check = dig(self.task, "Spec", "ContainerSpec", "Healthcheck")
        self._monitor = self._health.monitor_for(spec_check, self._controller, container.container_id,
                                                 container.started_at)
        return self._monitor is not None

    async def _watch_running(self) -> None:
        waiter = asyncio.create_task(self._live().wait())
        probes = asyncio.create_task(self._monitor.run()) if self._monitor is not None else None
        try:
            while not waiter.done():
                if self._stop_requested():
                    await self._live().shutdown()
                    self._set(states.SHUTDOWN, "shutdown", status=await self._live().inspect())
                    return
                if self._monitor is not None and self._monitor.status == HEALTHY:
                    self._set(states.RUNNING, "started")  # once: progress only
                if self._monitor is not None and self._monitor.status == UNHEALTHY:
                    await self._live().shutdown()
                    self._finish(await waiter, cause=UNHEALTHY_ERROR)
                    return
                wakers = {waiter, asyncio.create_task(self._next_change())}
                if self._monitor is not None:
                    wakers.add(asyncio.create_task(self._next_health_change(self._monitor)))
                await asyncio.wait(wakers, return_when=asyncio.FIRST_COMPLETED)
                for waker in wakers - {waiter}:
                    waker.cancel()
            self._finish(waiter.result())
        finally:
            for job in (waiter, probes):
                if job is not None and not job.done():
                    job.cancel()

    def _finish(self, status: ContainerStatus, cause: str = "") -> None:
        self._container = status
        cause = cause or status.error  # e.g. the docker executor's unhealthy container
        message = "starting" if self._observed == states.STARTING else "started"
        if self._stop_requested():
            self._set(states.SHUTDOWN, "shutdown", status=status)
        elif status.exit_code == 0 and not cause:
            self._set(states.COMPLETE, "finished", status=status)
        elif status.exit_code == 0:
            self._set(states.FAILED, message, err=cause, status=status)
        else:
            err = f"task: non-zero exit ({status.exit_code})" + (f": {cause}" if cause else "")
            self._set(states.FAILED, message, err=err, status=status)

    def _stop_requested(self) -> bool:
        """Desired SHUTDOWN or later; a job's task (desired COMPLETE) runs until it ends."""
        desired = self._desired()
        return desired not in (states.READY, states.COMPLETE) and states.rank(desired) > states.rank(states.RUNNING)

    @staticmethod
    async def _next_health_change(monitor: HealthMonitor) -> None:
        await monitor.changed.wait()
        monitor.changed.clear()

    async def _next_change(self) -> None:
        await self._changed.wait()
        self._changed.clear()
