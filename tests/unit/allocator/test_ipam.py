"""The default address pool: subnets carved in order, around the ones in use; dockerd's checks on
`swarm init --default-addr-pool` / `--default-addr-pool-mask-length`."""

from __future__ import annotations

import ipaddress

import pytest

from shoal.allocator.ipam import AddressPool, free_address
from shoal.api import errors


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_defaults_and_carving_around_subnets_in_use() -> None:
    pool = AddressPool.of_cluster({"DefaultAddrPool": None, "SubnetSize": 24})
    assert pool.pools == (net("10.0.0.0/8"),) and pool.size == 24
    assert pool.next_subnet([]) == net("10.0.0.0/24")
    assert pool.next_subnet([net("10.0.0.0/24"), net("10.0.1.0/24")]) == net("10.0.2.0/24")
    # a user's bigger subnet in the way is jumped over whole
    assert pool.next_subnet([net("10.0.0.0/16")]) == net("10.1.0.0/24")
    assert pool.next_subnet([net("10.0.0.128/25")]) == net("10.0.1.0/24")


def test_pools_in_order_then_exhausted() -> None:
    pool = AddressPool.of_cluster({"DefaultAddrPool": ["10.20.0.0/25", "10.30.0.0/26"], "SubnetSize": 26})
    taken: list[ipaddress.IPv4Network] = []
    for expected in ("10.20.0.0/26", "10.20.0.64/26", "10.30.0.0/26"):
        subnet = pool.next_subnet(taken)
        assert subnet == net(expected)
        taken.append(subnet)
    with pytest.raises(errors.Unavailable, match="could not find an available, non-overlapping IPv4 address pool"):
        pool.next_subnet(taken)


@pytest.mark.parametrize(("cluster", "message"), [
    ({"SubnetSize": 30}, "subnet size is out of range: 30"),
    ({"DefaultAddrPool": ["10.30.0.0/16"], "SubnetSize": 8},
     'invalid CIDR: "10.30.0.0/16". Subnet size is too small for pool: 8'),
    ({"DefaultAddrPool": ["10.30.0.0/40"]}, "invalid base pool 10.30.0.0/40"),
    ({"DefaultAddrPool": ["172.16.0.0/12"]},
     "invalid base pool 172.16.0.0/12: 172.16.0.0/12 overlaps 172.24.0.0/14, the range shoal's nodes take"),
])
def test_pools_dockerd_refuses(cluster: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        AddressPool.of_cluster(cluster)
    assert str(caught.value).startswith(message)


def test_free_address_skips_held_ones_and_keeps_to_the_range() -> None:
    used = {int(ipaddress.IPv4Address("10.5.0.1")), int(ipaddress.IPv4Address("10.5.0.2"))}
    assert free_address(net("10.5.0.0/24"), used) == "10.5.0.3/24"
    assert free_address(net("10.5.0.0/24"), used, net("10.5.0.128/25")) == "10.5.0.129/24"
    assert free_address(net("10.5.0.0/30"), {int(ipaddress.IPv4Address("10.5.0.1")),
                                             int(ipaddress.IPv4Address("10.5.0.2"))}) is None
