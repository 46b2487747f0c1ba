"""The planner runtime every manager component shares: a Planner decides over a store snapshot and
returns a Plan; run_component runs it against the store's watch stream and writes its plans back."""

from shoal.planner.loop import Planner, PlanObserver, run_component
from shoal.planner.plan import Plan, PlanBuilder, apply_plan

__all__ = ["Plan", "PlanBuilder", "PlanObserver", "Planner", "apply_plan", "run_component"]
