"""Fixtures of the RaftNode tests; the harness itself is in raftnode_harness.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from raftnode_harness import Cluster, LocalNetwork

from shoal.testing.clock import FakeClock


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster(FakeClock(), LocalNetwork())
    yield c
    for node_id in list(c.members):
        await c.stop(node_id)
