from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from shoal.network.tasknet import (
    AddressBook,
    TaskNetConfig,
    TaskNetError,
    firewall_rules,
    next_free_address,
    setup_script,
    veth_name,
)


def test_derived_config_is_stable_and_fits_interface_names(tmp_path: Path) -> None:
    a = TaskNetConfig.for_scope("/var/lib/shoal-a", tmp_path)
    b = TaskNetConfig.for_scope("/var/lib/shoal-b", tmp_path)
    assert a == TaskNetConfig.for_scope("/var/lib/shoal-a", tmp_path)
    assert a.bridge != b.bridge and a.subnet != b.subnet
    assert len(a.bridge) <= 15 and a.subnet.prefixlen == 20
    assert a.subnet.subnet_of(ipaddress.IPv4Network("10.192.0.0/10"))
    assert not a.subnet.overlaps(ipaddress.IPv4Network("10.254.0.0/16"))
    assert a.gateway == a.subnet.network_address + 1


def test_derived_subnets_spread_over_many_scopes(tmp_path: Path) -> None:
    subnets = {TaskNetConfig.for_scope(f"/data/{i}", tmp_path).subnet for i in range(50)}
    assert len(subnets) >= 45


def test_next_free_address_skips_gateway_and_taken() -> None:
    net = ipaddress.IPv4Network("10.1.0.0/29")
    assert next_free_address(net, []) == ipaddress.IPv4Address("10.1.0.2")
    taken = [ipaddress.IPv4Address("10.1.0.2"), ipaddress.IPv4Address("10.1.0.4")]
    assert next_free_address(net, taken) == ipaddress.IPv4Address("10.1.0.3")
    full = [ipaddress.IPv4Address(f"10.1.0.{i}") for i in range(2, 7)]
    with pytest.raises(TaskNetError, match="no free address"):
        next_free_address(net, full)


def test_address_book_persists_and_reuses(tmp_path: Path) -> None:
    config = TaskNetConfig("br-test", ipaddress.IPv4Network("10.9.0.0/24"), tmp_path)
    book = AddressBook(config)
    first = book.allocate("c1")
    second = book.allocate("c2")
    assert (str(first), str(second)) == ("10.9.0.2", "10.9.0.3")
    assert book.allocate("c1") == first  # idempotent per holder
    reopened = AddressBook(config)  # as after a restart
    assert reopened.holders() == {"c1": "10.9.0.2", "c2": "10.9.0.3"}
    reopened.release("c1")
    assert str(reopened.allocate("c3")) == "10.9.0.2"


def test_setup_script_wires_veth_address_and_route() -> None:
    config = TaskNetConfig("shoal0", ipaddress.IPv4Network("10.254.0.0/16"), Path("/x"))
    script = setup_script(config, "ab" * 32, ipaddress.IPv4Address("10.254.0.7"))
    assert f'ip link add {veth_name("ab" * 32)} type veth peer name eth0 netns "$1"' in script
    assert "master shoal0" in script
    assert "addr add 10.254.0.7/16 dev eth0" in script
    assert "route add default via 10.254.0.1" in script
    assert len(veth_name("ab" * 32)) <= 15


def test_firewall_rules_are_tagged_for_cleanup() -> None:
    config = TaskNetConfig("shoal0", ipaddress.IPv4Network("10.254.0.0/16"), Path("/x"))
    rules = firewall_rules(config)
    assert ("nat", "POSTROUTING") in [(t, c) for t, c, _ in rules]
    assert all("shoal:shoal0" in rule for _, _, rule in rules)
