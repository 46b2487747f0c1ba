"""Which addresses of each network are taken, read from the store on every pass (so a deleted
service or a finished task frees its addresses without bookkeeping): the gateway, the services'
VIPs and the addresses of tasks that have not stopped."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from shoal.allocator.networks import gateway_address
from shoal.api import states
from shoal.api.objects import NETWORKS, SERVICES, TASKS, Obj, dig
from shoal.store.memory import ReadView

Used = dict[str, set[int]]  # network id -> host addresses taken, as integers (cheap to scan)


def host_number(address: object) -> int | None:
    """`10.0.1.3/24` or `10.0.1.3` as an integer; None when it is not an IPv4 address."""
    try:
        return int(ipaddress.IPv4Address(str(address or "").split("/")[0]))
    except ValueError:
        return None


def holds_addresses(task: Obj) -> bool:
    """A task keeps its addresses until it has stopped (then they may go to a new task)."""
    return not states.is_terminal(str(dig(task, "Status", "State", default=states.NEW)))


def task_addresses(task: Obj) -> Iterable[tuple[str, int]]:
    for attachment in task.get("NetworksAttachments") or []:
        network_id = str(dig(attachment, "Network", "ID", default=""))
        for address in attachment.get("Addresses") or []:
            number = host_number(address)
            if number is not None:
                yield network_id, number


def addresses_in_use(view: ReadView) -> Used:
    used: Used = {}
    for network in view.objects(NETWORKS):
        gateway = host_number(gateway_address(network))
        used[str(network["ID"])] = {gateway} if gateway is not None else set()
    for service in view.objects(SERVICES):
        for vip in dig(service, "Endpoint", "VirtualIPs", default=None) or []:
            number = host_number(vip.get("Addr"))
            if number is not None:
                used.setdefault(str(vip.get("NetworkID", "")), set()).add(number)
    for task in view.objects(TASKS):
        if holds_addresses(task):
            for network_id, address in task_addresses(task):
                used.setdefault(network_id, set()).add(address)
    return used
