"""Moved to shoal.planner. Kept only for shoal.testing.store_harness, which still imports it from
here; delete once that import reads `from shoal.planner import Plan, Planner, apply_plan`."""

from shoal.planner import Plan, Planner, apply_plan

__all__ = ["Plan", "Planner", "apply_plan"]
