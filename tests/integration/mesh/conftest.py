from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator

import pytest
from mesh_netns import BACKEND_PORT, Case, NetnsNetwork, can_use_netns


@pytest.fixture(scope="module")
def test_network(request: pytest.FixtureRequest) -> Iterator[NetnsNetwork]:
    """A bridge with three backend namespaces (a, b, c), each serving its name on BACKEND_PORT (TCP
    and UDP), and a "client" namespace standing for another host. Shared by a module's tests, which
    keep apart through their own instance names and published ports (see `case`)."""
    reason = can_use_netns()
    if reason:
        pytest.skip(reason)
    network = NetnsNetwork(re.sub(r"\W", "", request.node.nodeid))
    try:
        network.create()
        backends = [network.add_namespace(label) for label in ("a", "b", "c")]
        network.start_name_servers(backends, BACKEND_PORT)
        network.add_namespace("client")
        yield network
    finally:
        network.destroy()


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Case:
    """Names and ports of one test, spread by its id (and the pid) so tests and runs rarely meet."""
    digest = int(hashlib.sha256(f"{request.node.nodeid}-{os.getpid()}".encode()).hexdigest(), 16)
    return Case(tag=f"{digest % 16**6:06x}", port=20000 + (digest >> 24) % 9000)
