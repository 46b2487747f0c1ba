"""A test harness for the manager's planners: an in-memory store whose writes commit at once, a fake
clock, builders for nodes/services in Docker's JSON shape, a record of every plan written, and a fake
agent that moves task states forward the way a worker would."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from shoal.api import states
from shoal.api.defaults import NANOS
from shoal.api.objects import CLUSTER, NODES, SERVICES, TASKS, Obj, clone, dig
from shoal.base.clock import rfc3339
from shoal.base.ids import new_id
from shoal.planner import Plan, Planner, apply_plan
from shoal.store.memory import MemoryStore, ReadView, Tx
from shoal.store.proposer import ApplyFn
from shoal.testing.clock import FakeClock

GIB = 1024**3
CPU = 1_000_000_000  # NanoCPUs in one CPU
SECOND = NANOS  # nanoseconds, as Docker durations


class InstantProposer:
    """Commits every proposal at once, in order (a one-member log without disk)."""

    def __init__(self) -> None:
        self._apply: ApplyFn | None = None
        self.index = 0

    def set_apply(self, apply: ApplyFn) -> None:
        self._apply = apply

    async def propose(self, payload: bytes) -> int:
        assert self._apply is not None
        self.index += 1
        self._apply(self.index, payload)
        return self.index

    def is_leader(self) -> bool:
        return True


def node_object(
    hostname: str,
    *,
    role: str = "worker",
    state: str = "ready",
    availability: str = "active",
    labels: dict[str, str] | None = None,
    engine_labels: dict[str, str] | None = None,
    cpus: float = 4,
    memory: int = 8 * GIB,
    os: str = "linux",
    arch: str = "x86_64",
    addr: str = "10.1.0.1",
) -> Obj:
    return {
        "ID": new_id(),
        "Spec": {"Role": role, "Availability": availability, "Labels": dict(labels or {})},
        "Description": {
            "Hostname": hostname,
            "Platform": {"Architecture": arch, "OS": os},
            "Resources": {"NanoCPUs": int(cpus * CPU), "MemoryBytes": memory},
            "Engine": {"EngineVersion": "shoal", "Labels": dict(engine_labels or {})},
        },
        "Status": {"State": state, "Addr": addr},
    }


def service_spec(
    name: str,
    *,
    replicas: int | None = 1,
    global_mode: bool = False,
    image: str = "busybox:latest",
    restart: dict[str, Any] | None = None,
    constraints: list[str] | None = None,
    preferences: list[str] | None = None,
    max_replicas: int = 0,
    reservations: dict[str, int] | None = None,
    ports: list[dict[str, Any]] | None = None,
    update: dict[str, Any] | None = None,
    rollback: dict[str, Any] | None = None,
) -> Obj:
    template: Obj = {"ContainerSpec": {"Image": image}, "ForceUpdate": 0}
    if restart is not None:
        template["RestartPolicy"] = restart
    placement: Obj = {}
    if constraints:
        placement["Constraints"] = list(constraints)
    if preferences:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": d}} for d in preferences]
    if max_replicas:
        placement["MaxReplicas"] = max_replicas
    if placement:
        template["Placement"] = placement
    if reservations:
        template["Resources"] = {"Reservations": dict(reservations)}
    spec: Obj = {
        "Name": name,
        "Labels": {},
        "TaskTemplate": template,
        "Mode": {"Global": {}} if global_mode else {"Replicated": {"Replicas": replicas}},
    }
    if ports is not None:
        spec["EndpointSpec"] = {"Mode": "vip", "Ports": ports}
    if update is not None:
        spec["UpdateConfig"] = update
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    return spec


class StoreHarness:
    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.proposer = InstantProposer()
        self.store = MemoryStore(self.proposer, self.clock)
        self.plans: list[tuple[str, Plan]] = []

    # -- reading
    @property
    def view(self) -> ReadView:
        return self.store.view()

    def get(self, table: str, obj_id: str) -> Obj:
        obj = self.view.get(table, obj_id)
        assert obj is not None, f"{table} {obj_id} not found"
        return obj

    def tasks(self, service_id: str | None = None) -> list[Obj]:
        tasks = self.view.objects(TASKS)
        if service_id is not None:
            tasks = [t for t in tasks if t.get("ServiceID") == service_id]
        return sorted(tasks, key=lambda t: (t.get("CreatedAt", ""), t["ID"]))

    def live_tasks(self, service_id: str) -> list[Obj]:
        """Tasks the orchestrator still wants (desired ready or running)."""
        return [
            t
            for t in self.tasks(service_id)
            if states.rank(t.get("DesiredState", states.RUNNING)) <= states.rank(states.RUNNING)
        ]

    # -- writing
    async def write(self, fn: Callable[[Tx], Any]) -> Any:
        return await self.store.update(fn)

    async def create(self, table: str, obj: Obj) -> Obj:
        await self.write(lambda tx: tx.create(table, obj))
        return self.get(table, obj["ID"])

    async def add_node(self, hostname: str, **kwargs: Any) -> Obj:
        return await self.create(NODES, node_object(hostname, **kwargs))

    async def add_service(self, name: str, **kwargs: Any) -> Obj:
        service = {"ID": new_id(), "Spec": service_spec(name, **kwargs), "Endpoint": {"Spec": {}}}
        return await self.create(SERVICES, service)

    async def edit(self, table: str, obj_id: str, mutate: Callable[[Obj], None]) -> Obj:
        def change(tx: Tx) -> None:
            current = tx.get(table, obj_id)
            assert current is not None
            copy = clone(current)
            mutate(copy)
            tx.update(table, copy)

        await self.write(change)
        return self.get(table, obj_id)

    async def update_service_spec(self, service_id: str, mutate: Callable[[Obj], None]) -> Obj:
        """What controlapi does on `docker service update`: keep the old spec as PreviousSpec, clear
        the update status, apply the change."""

        def change(service: Obj) -> None:
            service["PreviousSpec"] = clone(service["Spec"])
            service.pop("UpdateStatus", None)
            mutate(service["Spec"])

        return await self.edit(SERVICES, service_id, change)

    async def delete(self, table: str, obj_id: str) -> None:
        await self.write(lambda tx: tx.delete(table, obj_id))

    async def set_history_limit(self, limit: int) -> None:
        cluster = {"ID": new_id(), "Spec": {"Orchestration": {"TaskHistoryRetentionLimit": limit}}}
        existing = self.view.objects(CLUSTER)
        if existing:
            await self.edit(
                CLUSTER,
                existing[0]["ID"],
                lambda c: c.setdefault("Spec", {}).update(Orchestration={"TaskHistoryRetentionLimit": limit}),
            )
        else:
            await self.create(CLUSTER, cluster)

    # -- planners
    async def run(self, planner: Planner) -> Plan:
        """One planning pass over the current state, written back and recorded."""
        plan = planner.plan(self.view, self.clock.now())
        if not plan.is_empty():
            await self.write(lambda tx: apply_plan(tx, plan))
            self.plans.append((planner.name, plan))
        return plan

    async def settle(self, planners: Iterable[Planner], *, agent: bool = True, rounds: int = 50) -> None:
        """Run the planners (and the fake agent) until nothing changes any more."""
        planners = list(planners)
        for _ in range(rounds):
            changed = False
            for planner in planners:
                changed |= not (await self.run(planner)).is_empty()
            if agent:
                changed |= await self.agent_step()
            if not changed:
                return
        raise AssertionError(f"no fixpoint after {rounds} rounds")

    # -- a fake agent
    async def set_task_state(self, task_id: str, state: str, *, exit_code: int | None = None, err: str = "") -> Obj:
        def change(task: Obj) -> None:
            status: Obj = {"Timestamp": rfc3339(self.clock.now()), "State": state, "Message": state}
            if err:
                status["Err"] = err
            if exit_code is not None:
                status["ContainerStatus"] = {"ExitCode": exit_code}
            task["Status"] = status

        return await self.edit(TASKS, task_id, change)

    async def agent_step(self) -> bool:
        """Move every placed task on a live node one step toward its desired state: up to RUNNING
        (READY while held), or to SHUTDOWN once asked to stop. Returns whether anything changed."""
        changed = False
        for task in self.view.objects(TASKS):
            target = _agent_target(task, self.view)
            if target is not None:
                await self.set_task_state(task["ID"], target)
                changed = True
        return changed


def _agent_target(task: Obj, view: ReadView) -> str | None:
    node = view.get(NODES, str(task.get("NodeID") or ""))
    if node is None or dig(node, "Status", "State") == "down":
        return None
    state = str(dig(task, "Status", "State", default=states.NEW))
    if states.rank(state) < states.rank(states.ASSIGNED) or states.is_terminal(state):
        return None
    wanted = str(task.get("DesiredState", states.RUNNING))
    if states.rank(wanted) >= states.rank(states.SHUTDOWN):
        return states.SHUTDOWN
    if wanted == states.READY:
        return states.READY if states.rank(state) < states.rank(states.READY) else None
    return states.RUNNING if state != states.RUNNING else None
