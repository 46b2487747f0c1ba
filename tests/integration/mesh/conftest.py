from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from mesh_netns import NetnsNetwork, can_use_netns

BACKEND_PORT = 8000


@pytest.fixture
def test_network(request: pytest.FixtureRequest) -> Iterator[NetnsNetwork]:
    """A bridge with three backend namespaces, each serving its name on BACKEND_PORT (TCP and UDP)."""
    reason = can_use_netns()
    if reason:
        pytest.skip(reason)
    network = NetnsNetwork(re.sub(r"\W", "", request.node.nodeid))
    try:
        network.create()
        for label in ("a", "b", "c"):
            network.start_name_server(network.add_namespace(label), BACKEND_PORT)
        yield network
    finally:
        network.destroy()


def published_port(seed: str) -> int:
    """A published port for one test, spread by the test's id so parallel runs rarely meet."""
    return 20000 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 9000
