"""A service's networks as dockerd stores them (ids, whatever the client sent) and refused as
dockerd and swarmkit refuse them."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.allocator.networks import allocate_network, new_ingress_network, new_network
from shoal.api import errors
from shoal.api.objects import NETWORKS, Obj
from shoal.controlapi.validate import check_service_networks
from shoal.testing.store_harness import StoreHarness, service_spec


async def network(harness: StoreHarness, name: str) -> Obj:
    spec = {"Name": name, "DriverConfiguration": {"Name": "overlay"}, "Scope": "swarm"}
    return await harness.create(NETWORKS, allocate_network(harness.view, new_network(spec)))


def spec_on(*targets: str, ports: list[dict[str, Any]] | None = None) -> Obj:
    spec = service_spec("web", ports=ports)
    spec["TaskTemplate"]["Networks"] = [{"Target": t, "Aliases": ["a"]} for t in targets]
    return spec


@pytest.fixture
async def harness() -> StoreHarness:
    harness = StoreHarness()
    await harness.create(NETWORKS, new_ingress_network(harness.view))
    return harness


async def test_names_and_prefixes_become_ids(harness: StoreHarness) -> None:
    back, front = await network(harness, "back"), await network(harness, "front")
    spec = spec_on("back", front["ID"][:6])
    check_service_networks(harness.view, spec)
    assert spec["TaskTemplate"]["Networks"] == [{"Target": back["ID"], "Aliases": ["a"]},
                                               {"Target": front["ID"], "Aliases": ["a"]}]


async def test_unknown_network_is_refused_with_dockerds_words(harness: StoreHarness) -> None:
    with pytest.raises(errors.NotFound) as caught:
        check_service_networks(harness.view, spec_on("nosuch"))
    assert str(caught.value) == "network nosuch not found"


async def test_ingress_cannot_be_named(harness: StoreHarness) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        check_service_networks(harness.view, spec_on("ingress"))
    assert str(caught.value) == ('rpc error: code = InvalidArgument desc = Service cannot be explicitly attached '
                                 'to the ingress network "ingress"')


async def test_published_ports_need_an_ingress_network() -> None:
    bare = StoreHarness()
    check_service_networks(bare.view, spec_on(ports=[{"TargetPort": 80, "PublishMode": "host"}]))
    with pytest.raises(errors.InvalidArgument) as caught:
        check_service_networks(bare.view, spec_on(ports=[{"TargetPort": 80}]))
    assert str(caught.value) == ("rpc error: code = InvalidArgument desc = service needs ingress network, but no "
                                 "ingress network is present")
