"""Which addresses of each network are taken, read from the store on every pass (so a deleted
service or a finished task frees its addresses without bookkeeping): the gateway, the services'
VIPs and the addresses of tasks that have not stopped."""

from __future__ import annotations

from collections.abc import Iterable

from shoal.allocator.networks import gateway_address
from shoal.api import states
from shoal.api.objects import NETWORKS, SERVICES, TASKS, Obj, dig
from shoal.store.memory import ReadView

Used = dict[str, set[str]]  # network id -> host addresses (no prefix length)


def _host(address: object) -> str:
    return str(address or "").split("/")[0]


def holds_addresses(task: Obj) -> bool:
    """A task keeps its addresses until it has stopped (then they may go to a new task)."""
    return not states.is_terminal(str(dig(task, "Status", "State", default=states.NEW)))


def task_addresses(task: Obj) -> Iterable[tuple[str, str]]:
    for attachment in task.get("NetworksAttachments") or []:
        network_id = str(dig(attachment, "Network", "ID", default=""))
        for address in attachment.get("Addresses") or []:
            yield network_id, _host(address)


def addresses_in_use(view: ReadView) -> Used:
    used: Used = {}
    for network in view.objects(NETWORKS):
        gateway = gateway_address(network)
        used[str(network["ID"])] = {gateway} if gateway else set()
    for service in view.objects(SERVICES):
        for vip in dig(service, "Endpoint", "VirtualIPs", default=None) or []:
            used.setdefault(str(vip.get("NetworkID", "")), set()).add(_host(vip.get("Addr")))
    for task in view.objects(TASKS):
        if holds_addresses(task):
            for network_id, address in task_addresses(task):
                used.setdefault(network_id, set()).add(address)
    return used
