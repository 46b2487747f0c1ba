"""Tasks as the orchestrators create and read them: new_task() builds one from its service, and small
readers name the questions every orchestrator asks of a task (its states, its slot, its times)."""

from __future__ import annotations

from datetime import UTC, datetime

from shoal.api import states
from shoal.api.objects import Obj, clone, dig, version_of
from shoal.base.clock import parse_rfc3339, rfc3339
from shoal.base.ids import new_id

CREATED_MESSAGE = "created"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_task(service: Obj, now: datetime, *, slot: int = 0, node_id: str = "", desired: str = states.RUNNING) -> Obj:
    """A task in state NEW for `service`: a copy of its task template and endpoint, bound to `slot`
    (replicated) or to `node_id` (global). A job's task carries the job iteration it runs for."""
    spec = service.get("Spec", {})
    stamp = rfc3339(now)
    task: Obj = {
        "ID": new_id(),
        "Version": {"Index": 0},
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        "Labels": {},
        "Spec": clone(spec.get("TaskTemplate", {})),
        "SpecVersion": {"Index": version_of(service)},
        "ServiceID": service["ID"],
        "ServiceAnnotations": {"Name": spec.get("Name", ""), "Labels": clone(spec.get("Labels") or {})},
        "Slot": slot,
        "NodeID": node_id,
        "Status": {"Timestamp": stamp, "State": states.NEW, "Message": CREATED_MESSAGE},
        "DesiredState": desired,
    }
    if service.get("JobStatus") is not None:
        task["JobIteration"] = _version(job_iteration(service))
    endpoint = _task_endpoint(service)
    if endpoint is not None:
        task["Endpoint"] = endpoint
    return task


def is_job(service: Obj) -> bool:
    """A ReplicatedJob or GlobalJob: its tasks run to completion (desired state COMPLETE)."""
    mode = dig(service, "Spec", "Mode", default={}) or {}
    return mode.get("ReplicatedJob") is not None or mode.get("GlobalJob") is not None


def job_iteration(service: Obj) -> int:
    """Which run of a job is current (bumped by every `service update`); 0 for other services."""
    return int(dig(service, "JobStatus", "JobIteration", "Index", default=0) or 0)


def task_job_iteration(task: Obj) -> int | None:
    """The job run a task belongs to; None for tasks of services that are not jobs."""
    iteration = task.get("JobIteration")
    return None if iteration is None else int(iteration.get("Index") or 0)


def _version(index: int) -> Obj:
    """A swarm Version as Docker's JSON shows it (Index omitted when 0)."""
    return {"Index": index} if index else {}


def _task_endpoint(service: Obj) -> Obj | None:
    """The service's endpoint as the task carries it (the allocator refreshes it on NEW → PENDING).
    Its Spec is always the service's current EndpointSpec, even when the allocator has not caught
    up yet, so a new task is never born out of date."""
    endpoint = clone(service.get("Endpoint") or {})
    endpoint_spec = dig(service, "Spec", "EndpointSpec")
    if endpoint_spec:
        endpoint["Spec"] = clone(endpoint_spec)
    return endpoint or None


def observed(task: Obj) -> str:
    return str(dig(task, "Status", "State", default=states.NEW))


def desired(task: Obj) -> str:
    return str(task.get("DesiredState") or states.RUNNING)


def is_live(task: Obj) -> bool:
    """The orchestrator still wants this task (desired ready or running)."""
    return states.rank(desired(task)) <= states.rank(states.RUNNING)


def has_stopped(task: Obj) -> bool:
    return states.is_terminal(observed(task))


def ended_on_its_own(task: Obj) -> bool:
    """Stopped without being asked (exit, failure, rejection), as opposed to observed SHUTDOWN."""
    return observed(task) in (states.COMPLETE, states.FAILED, states.REJECTED)


def slot_key(task: Obj) -> str:
    """Replicated tasks group by slot number, global ones by node."""
    slot = int(task.get("Slot") or 0)
    return str(slot) if slot else f"node:{task.get('NodeID', '')}"


def parse_time(text: object) -> datetime:
    """An RFC 3339 stamp as a datetime (the epoch when missing or malformed)."""
    if not text:
        return _EPOCH
    try:
        return parse_rfc3339(str(text))
    except ValueError:
        return _EPOCH


def created_at(task: Obj) -> datetime:
    return parse_time(task.get("CreatedAt"))


def status_time(task: Obj) -> datetime:
    """When the task last changed observed state (the agent's timestamp)."""
    return parse_time(dig(task, "Status", "Timestamp")) if dig(task, "Status", "Timestamp") else created_at(task)


def creation_order(task: Obj) -> tuple[int, datetime, str]:
    """Sort key for tasks of one slot, oldest first: the service's raft index when the task was made
    (never goes back, unlike a wall clock), then the creation time, then the id."""
    return (int(dig(task, "SpecVersion", "Index", default=0) or 0), created_at(task), str(task["ID"]))


def set_desired(task: Obj, state: str) -> bool:
    """Raise a task's desired state (never lower it). Returns whether it changed."""
    if states.rank(state) <= states.rank(desired(task)):
        return False
    task["DesiredState"] = state
    return True
