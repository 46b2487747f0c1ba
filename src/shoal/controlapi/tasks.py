"""Task reads: list with swarmkit's filters (incl. the CLI's internal `_up-to-date`) and inspect."""

from __future__ import annotations

from collections.abc import Callable

from shoal.api import errors, states
from shoal.api.names import task_name
from shoal.api.objects import NODES, SERVICES, TASKS, Obj, dig, node_name, service_name
from shoal.controlapi import filters as flt
from shoal.controlapi.resolve import resolve
from shoal.orchestrator.dirty import is_task_dirty
from shoal.store.memory import ReadView

TASK_FILTERS = ("id", "name", "service", "node", "label", "desired-state", "_up-to-date", "runtime")


def find_task(view: ReadView, ref: str) -> Obj:
    return resolve(view, TASKS, ref, "task", lambda t: "")


def _ids(view: ReadView, table: str, kind: str, name_of: Callable[[Obj], str], refs: list[str]) -> set[str]:
    """Objects named by id, name or id prefix; an unknown one matches nothing (as dockerd)."""
    ids: set[str] = set()
    for ref in refs:
        try:
            ids.add(resolve(view, table, ref, kind, name_of)["ID"])
        except errors.NotFound:
            continue
    return ids


def list_tasks(view: ReadView, filters: flt.Filters) -> list[Obj]:
    flt.check_keys(filters, TASK_FILTERS)
    wanted_states = _desired_states(filters.get("desired-state", []))
    tasks = view.objects(TASKS)
    if "service" in filters:
        service_ids = _ids(view, SERVICES, "service", service_name, filters["service"])
        tasks = [t for t in tasks if t.get("ServiceID") in service_ids]
    if "node" in filters:
        node_ids = _ids(view, NODES, "node", node_name, filters["node"])
        tasks = [t for t in tasks if t.get("NodeID") in node_ids]
    up_to_date = filters.get("_up-to-date")
    services = {s["ID"]: s for s in view.objects(SERVICES)}

    def fresh(task: Obj) -> bool:
        service = services.get(task.get("ServiceID", ""))
        node = view.get(NODES, task.get("NodeID") or "")
        return service is not None and not is_task_dirty(service, task, node)

    def named(task: Obj) -> bool:
        svc = services.get(task.get("ServiceID", ""))
        name = task_name(service_name(svc), int(task.get("Slot") or 0), str(task.get("NodeID") or "")) if svc else ""
        return flt.any_prefix(filters.get("name"), name)

    return flt.keep(
        tasks,
        lambda t: flt.any_prefix(filters.get("id"), t["ID"]),
        named,
        lambda t: not wanted_states or t.get("DesiredState", "") in wanted_states,
        lambda t: flt.any_exact(filters.get("runtime"), _runtime(t)),
        lambda t: flt.labels_match(
            filters.get("label"), dig(services.get(t.get("ServiceID", "")), "Spec", "Labels")
        ),
        lambda t: not up_to_date or fresh(t),
    )


def _desired_states(values: list[str]) -> set[str]:
    """Any task state, in any case (dockerd maps them onto swarmkit's enum); empty ones are ignored.
    dockerd's error is a plain one, which it answers with 500."""
    wanted = set()
    for value in values:
        if not value:
            continue
        if not states.is_valid(value.lower()):
            raise errors.Unknown(f"Invalid desired-state filter: '{value}'")
        wanted.add(value.lower())
    return wanted


def _runtime(task: Obj) -> str:
    """swarmkit's naming.Runtime: the task spec's Runtime, else what its spec holds."""
    spec = task.get("Spec") or {}
    if spec.get("Runtime"):
        return str(spec["Runtime"])
    if spec.get("PluginSpec") is not None:
        return "plugin"
    if spec.get("NetworkAttachmentSpec") is not None:
        return "attachment"
    return "container"
