"""`docker ps --filter publish=… / expose=…` through the real docker CLI on a task with a host-mode port,
and dockerd's refusal of a value it cannot parse."""

from __future__ import annotations

import pytest

from shoal.testing.daemon import ShoalDaemon, cli_requirement, wait_until
from shoal.testing.registry import free_port

pytestmark = pytest.mark.skipif(**cli_requirement())


def names(swarm: ShoalDaemon, *filters: str) -> list[str]:
    argv = [arg for value in filters for arg in ("--filter", value)]
    return [n.partition(".")[0] for n in swarm.docker("ps", "--format", "{{.Names}}", *argv).stdout.split()]


def test_publish_and_expose_filters(swarm: ShoalDaemon) -> None:
    port = free_port()
    swarm.docker("service", "create", "--detach", "--name", "filtered", "--publish",
                 f"mode=host,published={port},target=80", "busybox", "sleep", "3600")
    swarm.docker("service", "create", "--detach", "--name", "unfiltered", "busybox", "sleep", "3600")
    wait_until(lambda: sorted(names(swarm, "name=filtered")) == ["filtered", "unfiltered"], 60,
               "the two tasks did not start")
    assert names(swarm, f"publish={port}") == ["filtered"]
    assert names(swarm, f"publish={port}/tcp", "name=filtered") == ["filtered"]
    assert names(swarm, f"publish={port - 1}-{port}") == ["filtered"]
    assert names(swarm, f"publish={port}/udp") == []
    assert names(swarm, "expose=80") == ["filtered"]
    assert names(swarm, "publish=80") == []
    refused = swarm.docker("ps", "--filter", "publish=a", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ('Error response from daemon: error while looking up for publish a: '
                                      'strconv.ParseUint: parsing "a": invalid syntax')
    swarm.docker("service", "rm", "filtered", "unfiltered")
