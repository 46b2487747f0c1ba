"""The Backend contract suite: every test here runs against both backends, the FakeBackend (behind the
real Engine API server) and a real shoald on a one-node swarm, through the same HTTP calls. A case
the fake passes and the product fails (or the reverse) fails here, so the fake the front-door tests
rely on cannot drift from what shoald does.

Use the `api` fixture (contract_api.Api): `api.call(method, path, body)` returns (status, decoded JSON
or None); `api.ok(...)` asserts a 2xx and returns the body. `api.kind` is "fake" or "shoald"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_api import Api, FakeServer

from shoal.testing.daemon import ShoalDaemon, cli_requirement

BACKENDS = ("fake", "shoald")


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A one-node swarm on the backend named by the parameter."""
    if request.param == "fake":
        server = FakeServer()
        try:
            api = Api("fake", server.socket_path)
            api.ok("POST", "/swarm/init", {"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})
            yield api
        finally:
            server.close()
        return
    requirement = cli_requirement()
    if requirement["condition"]:
        pytest.skip(requirement["reason"])
    daemon = ShoalDaemon(Path(tmp_path_factory.mktemp("contract")))
    daemon.start()
    try:
        daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        yield Api("shoald", str(daemon.socket_path))
    finally:
        daemon.leave_and_stop()
