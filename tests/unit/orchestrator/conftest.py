from __future__ import annotations

import pytest

from shoal.node.manager_components import planners
from shoal.planner import Planner
from shoal.testing.store_harness import StoreHarness


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


@pytest.fixture
def all_planners() -> list[Planner]:
    """One set of planners per test (the orchestrator keeps a little memory between passes)."""
    return planners()
