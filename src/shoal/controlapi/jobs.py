"""Job services (ReplicatedJob, GlobalJob) in the control API: their defaults and checks, the
JobStatus that counts their runs, and the ServiceStatus `docker service ls` shows for them
(`1/2 (5/6 completed)`), counted as swarmkit's ListServiceStatuses does."""

from __future__ import annotations

from datetime import datetime

from shoal.api import errors, states
from shoal.api.objects import Obj, dig
from shoal.base.clock import rfc3339
from shoal.controlapi.schema import UINT, Struct, conform

# the `mode` filter of GET /services names each mode so
MODE_FILTER_NAMES = {"Replicated": "replicated", "Global": "global", "ReplicatedJob": "replicated-job",
                     "GlobalJob": "global-job"}
_REPLICATED_JOB = Struct("ReplicatedJob", {"MaxConcurrent": UINT, "TotalCompletions": UINT})


def is_job_spec(spec: Obj) -> bool:
    mode = spec.get("Mode") or {}
    return mode.get("ReplicatedJob") is not None or mode.get("GlobalJob") is not None


def with_job_defaults(spec: Obj) -> Obj:
    """A replicated job without sizes runs one task (MaxConcurrent 1) and completes as many as run at
    once (TotalCompletions = MaxConcurrent), as the API documents; the stored spec says so, so every
    client reads both numbers."""
    mode = spec.get("Mode") or {}
    job = mode.get("ReplicatedJob")
    if job is None:
        return spec
    job = conform(job, _REPLICATED_JOB, "ServiceSpec.Mode.ReplicatedJob")
    if job.get("MaxConcurrent") is None:
        job["MaxConcurrent"] = 1
    if job.get("TotalCompletions") is None:
        job["TotalCompletions"] = job["MaxConcurrent"]
    spec["Mode"] = {**mode, "ReplicatedJob": job}
    return spec


def check_job_spec(spec: Obj) -> None:
    """swarmkit's validateJob: a job has no rolling updates to configure."""
    if is_job_spec(spec) and spec.get("UpdateConfig") is not None:
        raise errors.InvalidArgument("Jobs may not have an update config", grpc=True)


def job_status(spec: Obj, now: datetime) -> Obj | None:
    """The JobStatus a new job starts with: iteration 0 (Docker's JSON omits a zero Index)."""
    if not is_job_spec(spec):
        return None
    return {"JobIteration": {}, "LastExecution": rfc3339(now)}


def next_job_status(status: Obj, now: datetime) -> Obj:
    index = int(dig(status, "JobIteration", "Index", default=0) or 0)
    return {"JobIteration": {"Index": index + 1}, "LastExecution": rfc3339(now)}


def job_service_status(service: Obj, tasks: list[Obj]) -> Obj:
    """Only the current iteration's tasks count. Desired: MaxConcurrent for a replicated job; for a
    global job, its tasks still meant to complete (the CLI adds the completed ones for the total)."""
    iteration = int(dig(service, "JobStatus", "JobIteration", "Index", default=0) or 0)
    current = [t for t in tasks
               if t.get("JobIteration") is not None and int(t["JobIteration"].get("Index") or 0) == iteration]
    observed = [str(dig(t, "Status", "State", default="")) for t in current]
    running = observed.count(states.RUNNING)
    completed = observed.count(states.COMPLETE)
    replicated = dig(service, "Spec", "Mode", "ReplicatedJob")
    if replicated is not None:
        desired = int(replicated.get("MaxConcurrent") or 0)
    else:
        desired = sum(1 for t, state in zip(current, observed, strict=True)
                      if t.get("DesiredState") in (states.RUNNING, states.COMPLETE) and state != states.COMPLETE)
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": completed}
