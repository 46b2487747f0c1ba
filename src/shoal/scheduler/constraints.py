"""Moved to shoal.api.constraints (the orchestrators match constraints too, and may not import the
scheduler). Kept only for controlapi/services.py, which still imports validate_constraints from here;
delete once it reads `from shoal.api.constraints import validate_constraints`."""

from shoal.api.constraints import validate_constraints

__all__ = ["validate_constraints"]
