"""The converge display shown while a service is created, scaled or updated: per-slot state bars and
overall progress, then a verify window, as the docker CLI shows them (one line per update when the
output is not a terminal)."""

from __future__ import annotations

import time
from typing import Any

import docker

from shoal.api import states
from shoal.api.defaults import UPDATE_DEFAULTS, seconds

BAR_WIDTH = 50
RANKED = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
POLL = 0.2


def bar(state: str) -> str:
    rank = RANKED.index(state) + 1 if state in RANKED else 0
    filled = BAR_WIDTH * rank // len(RANKED)
    return "[" + "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (BAR_WIDTH - filled) + "]"


def wait_converged(api: docker.APIClient, ref: str, echo: Any, timeout: float = 600) -> bool:
    """Poll until every slot runs an up-to-date task for `monitor` seconds; False on an update that
    paused or when the deadline passes."""
    deadline = time.monotonic() + timeout
    converged_at: float | None = None
    last = ""
    while time.monotonic() < deadline:
        service = api.inspect_service(ref)
        update_state = (service.get("UpdateStatus") or {}).get("State", "")
        if update_state in ("paused", "rollback_paused"):
            echo(f"service update paused: {service['UpdateStatus'].get('Message', '')}")
            return False
        monitor = seconds((service["Spec"].get("UpdateConfig") or {}).get("Monitor") or UPDATE_DEFAULTS["Monitor"])
        tasks = api.tasks(filters={"service": service["ID"], "_up-to-date": "true"})
        desired = (service["Spec"].get("Mode", {}).get("Replicated") or {}).get("Replicas")
        slots: dict[Any, dict[str, Any]] = {}
        for task in tasks:
            if states.is_terminal(task["DesiredState"]) and task["DesiredState"] != "complete":
                continue
            key = task.get("Slot") or task.get("NodeID")
            slots[key] = task
        running = sum(1 for t in slots.values() if t["Status"]["State"] == "running")
        total = desired if desired is not None else len(slots)
        lines = [f"overall progress: {running} out of {total} tasks"]
        for key in sorted(slots, key=str):
            state = slots[key]["Status"]["State"]
            label = f"{key}/{total}" if desired is not None else str(key)[:12]
            lines.append(f"{label}: {state:<9} {bar(state)}")
        text = "\n".join(lines)
        if text != last:
            echo(text)
            last = text
        if running == total and total > 0:
            converged_at = converged_at or time.monotonic()
            remaining = monitor - (time.monotonic() - converged_at)
            if remaining <= 0:
                echo(f"verify: Service {ref} converged")
                return True
            echo(f"verify: Waiting {int(remaining) + 1} seconds to verify that tasks are stable...")
        else:
            converged_at = None
        time.sleep(POLL)
    return False
