"""The orchestrator: for every service, restart what ended, keep the right number of tasks (slots for
replicated services, one per node for global ones, completions for jobs), roll out spec changes, and
release held replacements; tasks of deleted services get desired REMOVE (the reaper deletes them once stopped)."""

from __future__ import annotations

from datetime import datetime

from shoal.api import states
from shoal.api.objects import CLUSTER, NODES, SERVICES, TASKS, is_global
from shoal.orchestrator.global_service import reconcile_global
from shoal.orchestrator.jobs import reconcile_job
from shoal.orchestrator.pass_state import Pass, ServiceTasks
from shoal.orchestrator.replicated import reconcile_replicated
from shoal.orchestrator.task import desired, is_job, set_desired
from shoal.orchestrator.update import Updater
from shoal.planner import Plan, PlanBuilder
from shoal.store.memory import ReadView
from shoal.store.watch import Event


class OrchestratorPlanner:
    name = "orchestrator"

    def __init__(self) -> None:
        self.updater = Updater()

    def interested(self, event: Event) -> bool:
        return event.table in (SERVICES, TASKS, NODES, CLUSTER)

    def plan(self, view: ReadView, now: datetime) -> Plan:
        run = Pass(PlanBuilder(), {n["ID"]: n for n in view.objects(NODES)}, now)
        services = {s["ID"]: s for s in view.objects(SERVICES)}
        for task in view.objects(TASKS):
            if task.get("ServiceID") not in services and states.rank(desired(task)) < states.rank(states.REMOVE):
                set_desired(run.builder.edit(TASKS, task), states.REMOVE)
        for service in services.values():
            group = ServiceTasks(run, service, list(view.tasks_of_service(service["ID"])))
            if is_job(service):
                reconcile_job(group)  # jobs are not rolled: an update runs them again
                group.promote_held()
                continue
            if is_global(service):
                slots = {f"node:{k}": v for k, v in reconcile_global(group).items()}
            else:
                slots = {str(k): v for k, v in reconcile_replicated(group).items()}
            self.updater.roll(group, slots)
            group.promote_held()
        self.updater.forget({t["ID"] for t in view.objects(TASKS)}, set(services))
        return run.builder.plan

