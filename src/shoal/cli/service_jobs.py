"""Jobs in the `shoal service` commands, printed as the docker CLI prints them: MODE `replicated job`,
REPLICAS `running/desired (completed/total completed)`, and the wait for a job to complete."""

from __future__ import annotations

import time
from typing import Any

import docker

POLL = 0.2
_MODES = (("ReplicatedJob", "replicated job"), ("GlobalJob", "global job"), ("Global", "global"))


def mode_name(spec: dict[str, Any]) -> str:
    mode = spec.get("Mode") or {}
    return next((name for key, name in _MODES if mode.get(key) is not None), "replicated")


def job_replicas(spec: dict[str, Any], status: dict[str, Any]) -> str:
    """The REPLICAS column. A global job's total is what is still to complete plus what completed."""
    running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
    completed = status.get("CompletedTasks", 0)
    mode = spec.get("Mode") or {}
    if mode.get("ReplicatedJob") is not None:
        total = mode["ReplicatedJob"].get("TotalCompletions", 0)
        return f"{running}/{desired} ({completed}/{total} completed)"
    if mode.get("GlobalJob") is not None:
        return f"{running}/{desired} ({completed}/{desired + completed} completed)"
    return f"{running}/{desired}"


def wait_job_complete(api: docker.APIClient, ref: str, echo: Any, timeout: float = 600) -> bool:
    """Poll until every task of the job's current run completed: `job progress: k out of N complete`,
    then `job complete`. False when the deadline passes."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        service = api.inspect_service(ref)
        iteration = int(((service.get("JobStatus") or {}).get("JobIteration") or {}).get("Index") or 0)
        tasks = [t for t in api.tasks(filters={"service": service["ID"]})
                 if t.get("JobIteration") is not None and int(t["JobIteration"].get("Index") or 0) == iteration]
        job = (service["Spec"].get("Mode") or {}).get("ReplicatedJob")
        total = int(job.get("TotalCompletions") or 0) if job is not None else len({t["NodeID"] for t in tasks})
        completed = sum(1 for t in tasks if t["Status"]["State"] == "complete")
        text = f"job progress: {completed} out of {total} complete"
        if text != last:
            echo(text)
            last = text
        if total and completed >= total:
            echo("job complete")
            return True
        time.sleep(POLL)
    return False
