from __future__ import annotations

import pytest

from shoal.allocator.component import Planner
from shoal.orchestrator.components import planners
from shoal.testing.store_harness import StoreHarness


@pytest.fixture
def harness() -> StoreHarness:
    return StoreHarness()


@pytest.fixture
def all_planners() -> list[Planner]:
    """One set of planners per test (the orchestrator keeps a little memory between passes)."""
    return planners()
