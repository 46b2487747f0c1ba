"""Address arithmetic for swarm networks (pure): subnets carved from the cluster's default address
pool, a user's subnet checked against the ones in use, and free host addresses inside a subnet.

Swarm's defaults: the pool is 10.0.0.0/8 split in /24s (`swarm init --default-addr-pool` and
`--default-addr-pool-mask-length` change both; the cluster object keeps them as DefaultAddrPool and
SubnetSize). The first host address of a subnet is its gateway, as in libnetwork's IPAM."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.allocator.nodesubnets import NODE_SUBNET_RANGE
from shoal.api import errors
from shoal.api.objects import Obj

DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24
MAX_SUBNET_SIZE = 29
# libnetwork's wording (its IPAM refuses an overlapping pool with it).
POOL_OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
POOL_EXHAUSTED = ("could not find an available, non-overlapping IPv4 address pool among the defaults to assign "
                  "to the network")


def node_range_clash(subnet: ipaddress.IPv4Network) -> str | None:
    """Why `subnet` cannot be used for overlay networks here, or None: the nodes' task bridges take
    their subnets from NODE_SUBNET_RANGE, and a task on both would have two routes for one address."""
    if subnet.overlaps(NODE_SUBNET_RANGE):
        return f"{subnet} overlaps {NODE_SUBNET_RANGE}, the range shoal's nodes take their task bridge subnets from"
    return None


@dataclass(frozen=True)
class AddressPool:
    """Where network subnets come from: the pools in order, each cut in subnets of `size` bits."""

    pools: tuple[ipaddress.IPv4Network, ...]
    size: int

    @classmethod
    def of_cluster(cls, cluster: Obj | None) -> AddressPool:
        """The cluster's pool, checked as dockerd checks `swarm init --default-addr-pool` (a swarm
        whose pool is refused is not made)."""
        raw = (cluster or {}).get("DefaultAddrPool") or [DEFAULT_POOL]
        size = int((cluster or {}).get("SubnetSize") or DEFAULT_SUBNET_SIZE)
        # 29 at most: the smallest subnet that still leaves task addresses beside the 4 reserved
        if not 0 < size <= MAX_SUBNET_SIZE:
            raise errors.InvalidArgument(f"subnet size is out of range: {size}")
        pools = []
        for text in raw:
            try:
                pool = ipaddress.IPv4Network(str(text).strip(), strict=False)
            except ValueError as exc:
                raise errors.InvalidArgument(f"invalid base pool {text}: {exc}") from None
            if size < pool.prefixlen:
                raise errors.InvalidArgument(f'invalid CIDR: "{text}". Subnet size is too small for pool: {size}')
            clash = node_range_clash(pool)
            if clash:
                raise errors.InvalidArgument(f"invalid base pool {text}: {clash}")
            pools.append(pool)
        return cls(tuple(pools), size)

    def next_subnet(self, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
        """The first subnet of the pools that overlaps none in use (never one still in use)."""
        taken = sorted(used, key=lambda n: (int(n.network_address), n.prefixlen))
        for pool in self.pools:
            size = self.size
            candidate = int(pool.network_address)
            step = 1 << (32 - size)
            end = int(pool.broadcast_address)
            while candidate + step - 1 <= end:
                subnet = ipaddress.IPv4Network((candidate, size))
                clash = overlapping(subnet, taken)
                if clash is None:
                    return subnet
                # jump past the subnet in the way (it may be larger than one step)
                candidate = max(candidate + step, _aligned_after(int(clash.broadcast_address) + 1, step))
        raise errors.Unavailable(POOL_EXHAUSTED, grpc=True)


def _aligned_after(address: int, step: int) -> int:
    return (address + step - 1) // step * step


def overlapping(subnet: ipaddress.IPv4Network, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    for other in used:
        if subnet.overlaps(other):
            return other
    return None


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """A user's --subnet, as swarmkit validates it (an IPv6 subnet is refused: no IPv6 here)."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise errors.InvalidArgument(f"ipam configuration: invalid subnet {text}", grpc=True) from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise errors.NotImplementedYet(f"IPv6 subnets are not supported by shoal yet: {text}")
    return network


def gateway_of(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return subnet.network_address + 1


def free_address(subnet: ipaddress.IPv4Network, used: set[int],
                 within: ipaddress.IPv4Network | None = None) -> str | None:
    """The lowest host address of `subnet` (inside `within`, an --ip-range, when given) that nobody
    holds, as `addr/prefix`; it is added to `used` (addresses as integers). None when it is full."""
    area = within or subnet
    first, last = int(area.network_address), int(area.broadcast_address)
    if area.prefixlen < 31:  # not the network or broadcast address
        first, last = first + 1, last - 1
    low, high = int(subnet.network_address), int(subnet.broadcast_address)
    for number in range(max(first, low + 1), min(last, high - 1) + 1):
        if number not in used:
            used.add(number)
            return f"{ipaddress.IPv4Address(number)}/{subnet.prefixlen}"
    return None
