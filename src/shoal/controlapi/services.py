"""Service calls: validate, then one store transaction each. The orchestrators react to what is
written; nothing here starts or stops a task."""

from __future__ import annotations

import copy
from typing import Any

from shoal.allocator.ports import check_port_conflicts
from shoal.api import errors, states
from shoal.api.constraints import validate_constraints
from shoal.api.objects import SERVICES, Obj, clone, dig, is_global, replicas, service_name, version_of
from shoal.base.clock import Clock, rfc3339
from shoal.base.ids import new_id
from shoal.controlapi import filters as flt
from shoal.controlapi.defaults import (
    normalize_new_spec,
    registry_auth_for_update,
    with_defaults,
    with_registry_auth,
)
from shoal.controlapi.dockerd_checks import check_service_spec
from shoal.controlapi.healthcheck import check_healthcheck
from shoal.controlapi.hostname_template import check_container_templates
from shoal.controlapi.jobs import (
    MODE_FILTER_NAMES,
    check_job_spec,
    job_service_status,
    job_status,
    next_job_status,
    with_job_defaults,
)
from shoal.controlapi.payloads import check_service_references
from shoal.controlapi.resolve import resolve
from shoal.controlapi.schema import SERVICE_SPEC, conform
from shoal.controlapi.validate import check_service_networks, validate_service_spec
from shoal.store.memory import MemoryStore, ReadView, Tx

SERVICE_FILTERS = ("id", "name", "label", "mode")


def find_service(view: ReadView, ref: str) -> Obj:
    return resolve(view, SERVICES, ref, "service", service_name)


def _checked_spec(raw: Any) -> Obj:
    if not isinstance(raw, dict):
        raise errors.InvalidArgument("json: cannot unmarshal into Go value of type swarm.ServiceSpec")
    spec: Obj = conform(raw, SERVICE_SPEC, "ServiceSpec")
    check_service_spec(spec)  # dockerd's conversion checks come first, with its texts
    return spec


def _cluster_checks(tx: Tx, spec: Obj, service_id: str) -> None:
    """Checks that need the whole cluster: unique name, free published ports, and the secrets and
    configs it references exist (as swarmkit checks them), and its networks, resolved to their ids."""
    name = spec["Name"]
    for other in tx.objects(SERVICES):
        if other["ID"] != service_id and service_name(other) == name:
            raise errors.AlreadyExists(
                f"name conflicts with an existing object: service {name} already exists", grpc=True
            )
    check_port_conflicts(tx, spec, service_id)
    check_service_references(tx, spec)
    check_service_networks(tx, spec)


class ServiceControl:
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, raw_spec: Any, registry_auth: str | None = None) -> Obj:
        spec = with_registry_auth(with_job_defaults(normalize_new_spec(_checked_spec(raw_spec))), registry_auth)
        validate_service_spec(spec, validate_constraints)
        check_container_templates(dig(spec, "TaskTemplate", "ContainerSpec", default=None) or {})
        check_healthcheck(spec)
        check_job_spec(spec)
        # an Endpoint with nothing allocated yet, as dockerd shows every service
        service: Obj = {"ID": new_id(), "Spec": spec, "Endpoint": {"Spec": {}}}
        status = job_status(spec, self._clock.now())
        if status is not None:
            service["JobStatus"] = status

        def create(tx: Tx) -> Obj:
            _cluster_checks(tx, spec, "")
            return tx.create(SERVICES, service)

        service = await self._store.update(create)
        return {"ID": service["ID"], "Warnings": None}

    async def update(self, ref: str, version: int, raw_spec: Any, rollback: bool,
                     registry_auth: str | None = None, registry_auth_from: str = "spec") -> Obj:
        new_spec = _checked_spec(raw_spec)

        def update(tx: Tx) -> None:
            current = find_service(tx, ref)
            if version != version_of(current):
                raise errors.OutOfSequence()
            service = clone(current)
            if rollback:
                self._rollback(service)
            else:
                spec = with_job_defaults(normalize_new_spec(new_spec))
                # dockerd keeps the current (or previous) spec's credentials unless new ones come
                spec = with_registry_auth(spec, registry_auth_for_update(current, registry_auth, registry_auth_from))
                self._check_change(current, spec)
                validate_service_spec(spec, validate_constraints)
                check_container_templates(dig(spec, "TaskTemplate", "ContainerSpec", default=None) or {})
                check_healthcheck(spec)
                check_job_spec(spec)
                service["PreviousSpec"] = copy.deepcopy(current["Spec"])
                service["Spec"] = spec
                service.pop("UpdateStatus", None)
            if current.get("JobStatus") is not None:
                # as swarmkit: every update of a job (a rollback too) runs it again
                service["JobStatus"] = next_job_status(current["JobStatus"], self._clock.now())
            _cluster_checks(tx, service["Spec"], service["ID"])
            tx.update(SERVICES, service)

        await self._store.update(update)
        return {"Warnings": None}

    def _rollback(self, service: Obj) -> None:
        previous = service.get("PreviousSpec")
        if previous is None:
            raise errors.FailedPrecondition(
                f"service {service['ID']} does not have a previous spec", grpc=True
            )
        service["PreviousSpec"], service["Spec"] = service["Spec"], previous
        service["UpdateStatus"] = {
            "State": "rollback_started",
            "StartedAt": rfc3339(self._clock.now()),
            "Message": "manually requested rollback",
        }

    @staticmethod
    def _check_change(current: Obj, spec: Obj) -> None:
        if spec.get("Name") != service_name(current):
            raise errors.InvalidArgument("renaming services is not supported", grpc=True)
        if _mode_kind(current["Spec"]) != _mode_kind(spec):
            raise errors.InvalidArgument("service mode change is not allowed", grpc=True)

    async def remove(self, ref: str) -> None:
        def remove(tx: Tx) -> None:
            tx.delete(SERVICES, find_service(tx, ref)["ID"])

        await self._store.update(remove)

    def inspect(self, ref: str, insert_defaults: bool) -> Obj:
        service = find_service(self._store.view(), ref)
        return with_defaults(service) if insert_defaults else service

    def list(self, filters: flt.Filters, status: bool) -> list[Obj]:
        flt.check_keys(filters, SERVICE_FILTERS)
        view = self._store.view()
        modes = filters.get("mode")
        found = flt.keep(
            view.objects(SERVICES),
            lambda s: flt.any_prefix(filters.get("id"), s["ID"]),
            lambda s: flt.any_prefix(filters.get("name"), service_name(s)),
            lambda s: flt.labels_match(filters.get("label"), dig(s, "Spec", "Labels")),
            lambda s: not modes or MODE_FILTER_NAMES.get(_mode_kind(s["Spec"]), "replicated") in modes,
        )
        found.sort(key=lambda s: s.get("CreatedAt", ""))
        if not status:
            return found
        return [{**s, "ServiceStatus": service_status(view, s)} for s in found]


def _mode_kind(spec: Obj) -> str:
    """Which of the four modes a spec has (a change between them is refused, as Swarm does)."""
    mode = spec.get("Mode") or {}
    return next((k for k in ("Global", "ReplicatedJob", "GlobalJob") if mode.get(k) is not None), "Replicated")


def service_status(view: ReadView, service: Obj) -> Obj:
    tasks = view.tasks_of_service(service["ID"])
    if service.get("JobStatus") is not None:
        return job_service_status(service, tasks)
    live = [t for t in tasks if t.get("DesiredState") == states.RUNNING]
    running = sum(1 for t in live if dig(t, "Status", "State") == states.RUNNING)
    desired = len(live) if is_global(service) else replicas(service)
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": 0}
