"""Networks, the same cases on the fake and on a real shoald (see conftest.py): swarm-scoped overlay
networks in the Engine API's shape, subnets from the default address pool, Docker's and swarmkit's
texts for every refusal, and each refusal changing nothing."""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

import pytest
from contract_api import Api, filters

from shoal.testing.daemon import wait_until

_names = itertools.count()


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def create(api: Api, name: str, **extra: Any) -> str:
    """A network as `docker network create -d overlay` asks for it."""
    body = {"Name": name, "Driver": "overlay", "Scope": "", "IPAM": {"Driver": "default", "Options": {},
                                                                      "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigOnly": False, "ConfigFrom": None,
            "Options": {}, "Labels": {}, "CheckDuplicate": True}
    body.update(extra)
    reply = api.ok("POST", "/networks/create", body)
    assert reply["Warning"] == "" and len(reply["Id"]) == 25
    return str(reply["Id"])


def refused(api: Api, method: str, path: str, body: Any, status: int) -> str:
    got, reply = api.call(method, path, body)
    assert got == status, f"{api.kind}: {method} {path} answered {got}: {reply}"
    return str(reply["message"])


def names(api: Api, query: str = "") -> list[str]:
    return [n["Name"] for n in api.ok("GET", "/networks" + (f"?{query}" if query else ""))]


def subnet(api: Api, ref: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(api.ok("GET", f"/networks/{ref}")["IPAM"]["Config"][0]["Subnet"])


def service(api: Api, name: str, *, networks: list[str] | None = None, ports: list[int] | None = None) -> str:
    spec: dict[str, Any] = {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest", "Args": ["sleep", "60"]}},
        "Mode": {"Replicated": {"Replicas": 0}},
    }
    if networks:
        spec["TaskTemplate"]["Networks"] = [{"Target": n} for n in networks]
    if ports:
        spec["EndpointSpec"] = {"Ports": [{"TargetPort": p, "PublishedPort": p} for p in ports]}
    return str(api.ok("POST", "/services/create", spec)["ID"])


def test_the_swarm_has_its_ingress_network(api: Api) -> None:
    ingress = api.ok("GET", "/networks/ingress")
    assert ingress["Ingress"] is True and ingress["Scope"] == "swarm" and ingress["Driver"] == "overlay"
    assert ingress["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert ingress["Options"] == {"com.docker.network.driver.overlay.vxlanid_list": "4096"}


def test_create_inspect_list_in_dockers_shape(api: Api) -> None:
    name = fresh("plain")
    network_id = create(api, name, Labels={"team": "a"}, Attachable=True)
    for ref in (name, network_id, network_id[:10]):
        shown = api.ok("GET", f"/networks/{ref}")
        assert shown["Id"] == network_id and shown["Name"] == name
        assert (shown["Scope"], shown["Driver"], shown["EnableIPv6"]) == ("swarm", "overlay", False)
        assert (shown["Attachable"], shown["Ingress"], shown["Internal"]) == (True, False, False)
        assert shown["Labels"] == {"team": "a"} and shown["Containers"] is None
        assert shown["ConfigFrom"] == {"Network": ""} and shown["ConfigOnly"] is False
        assert shown["IPAM"]["Driver"] == "default"
        [config] = shown["IPAM"]["Config"]
        net = ipaddress.IPv4Network(config["Subnet"])
        assert net.subnet_of(ipaddress.IPv4Network("10.0.0.0/8")) and net.prefixlen == 24
        assert config["Gateway"] == str(net.network_address + 1)
        assert shown["Created"].endswith("Z")
    assert name in names(api) and "ingress" in names(api)
    assert api.ok("GET", f"/networks/{name}?scope=swarm")["Id"] == network_id
    assert refused(api, "GET", f"/networks/{name}?scope=local", None, 404) == f"network {name} not found"


def test_subnets_are_distinct_and_never_reused_while_in_use(api: Api) -> None:
    first, second = create(api, fresh("a")), create(api, fresh("b"))
    assert subnet(api, first) != subnet(api, second)
    held = subnet(api, second)
    api.ok("DELETE", f"/networks/{first}")
    third = create(api, fresh("c"))
    assert subnet(api, third) != held


def test_user_subnet_gateway_and_range(api: Api) -> None:
    name = fresh("custom")
    create(api, name, IPAM={"Driver": "default", "Config": [
        {"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254", "IPRange": "10.77.0.128/25"}]},
        Options={"com.example.opt": "x"})
    shown = api.ok("GET", f"/networks/{name}")
    assert shown["IPAM"]["Config"] == [
        {"Subnet": "10.77.0.0/24", "IPRange": "10.77.0.128/25", "Gateway": "10.77.0.254"}
    ]
    assert shown["Options"]["com.example.opt"] == "x"


def test_overlapping_subnet_is_refused_and_changes_nothing(api: Api) -> None:
    before = names(api)
    for taken in ("10.0.0.0/16", "10.0.0.128/25"):  # around and inside ingress's 10.0.0.0/24
        message = refused(api, "POST", "/networks/create", {
            "Name": fresh("clash"), "Driver": "overlay", "IPAM": {"Config": [{"Subnet": taken}]}}, 403)
        assert message == "invalid pool request: Pool overlaps with other one on this address space"
    message = refused(api, "POST", "/networks/create", {
        "Name": fresh("nodes"), "Driver": "overlay", "IPAM": {"Config": [{"Subnet": "172.25.0.0/16"}]}}, 403)
    assert message == ("invalid pool request: 172.25.0.0/16 overlaps 172.24.0.0/14, the range shoal's nodes take "
                       "their task bridge subnets from")
    assert names(api) == before


def test_refusals_with_dockers_words(api: Api) -> None:
    before = names(api)
    ingress_id = api.ok("GET", "/networks/ingress")["Id"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"Name": "dup", "Driver": "overlay"}, 409, "network with name dup already exists"),
        ({"Name": fresh("i"), "Driver": "overlay", "Ingress": True}, 409,
         f"rpc error: code = AlreadyExists desc = ingress network ({ingress_id}) is already present"),
        ({"Name": fresh("ia"), "Driver": "overlay", "Ingress": True, "Attachable": True}, 400,
         "rpc error: code = InvalidArgument desc = ingress network cannot be attachable"),
        ({"Name": "host", "Driver": "overlay"}, 403, "host is a pre-defined network and cannot be created"),
        ({"Name": fresh("g"), "Driver": "overlay", "IPAM": {"Config": [{"Subnet": "10.88.0.0/24",
                                                                         "Gateway": "10.89.0.1"}]}}, 400,
         "rpc error: code = InvalidArgument desc = ipam configuration: subnet 10.88.0.0/24 does not contain "
         "gateway 10.89.0.1"),
        ({"Name": fresh("s"), "Driver": "overlay", "IPAM": {"Config": [{"Subnet": "10.88.0/33"}]}}, 400,
         "rpc error: code = InvalidArgument desc = ipam configuration: invalid subnet 10.88.0/33"),
    ]
    create(api, "dup")
    for body, status, message in cases:
        assert refused(api, "POST", "/networks/create", body, status) == message
    assert "IPsec" in refused(api, "POST", "/networks/create",
                              {"Name": fresh("e"), "Driver": "overlay", "Options": {"encrypted": ""}}, 501)
    assert "overlay" in refused(api, "POST", "/networks/create", {"Name": fresh("b"), "Driver": "bridge"}, 501)
    assert names(api) == sorted({*before, "dup"})


def test_list_filters(api: Api) -> None:
    labelled = fresh("flt")
    create(api, labelled, Labels={"tier": "back"})
    assert names(api, filters(label=["tier=back"])) == [labelled]
    assert names(api, filters(name=[labelled])) == [labelled]
    assert labelled in names(api, filters(driver=["overlay"], scope=["swarm"], type=["custom"]))
    assert names(api, filters(driver=["bridge"])) == []
    assert names(api, filters(type=["builtin"])) == []
    network_id = api.ok("GET", f"/networks/{labelled}")["Id"]
    assert names(api, filters(id=[network_id[:8]])) == [labelled]
    assert refused(api, "GET", "/networks?" + filters(bogus=["x"]), None, 400) == "Invalid filter 'bogus'"
    assert refused(api, "GET", "/networks?" + filters(type=["odd"]), None, 400) == "Invalid filter: 'type'='odd'"


def test_remove_refused_while_a_service_uses_it(api: Api) -> None:
    name = fresh("used")
    network_id = create(api, name)
    service_id = service(api, fresh("svc"), networks=[network_id])
    message = refused(api, "DELETE", f"/networks/{name}", None, 400)
    assert message == (f"rpc error: code = FailedPrecondition desc = network {network_id} is in use by service "
                       f"{service_id}")
    assert name in names(api)
    api.ok("DELETE", f"/services/{service_id}")
    status, _ = api.call("DELETE", f"/networks/{name}")
    assert status == 204
    assert refused(api, "DELETE", f"/networks/{name}", None, 404) == f"network {name} not found"
    assert refused(api, "GET", f"/networks/{network_id}", None, 404) == f"network {network_id} not found"


def test_ingress_removal_refused_while_a_service_publishes_through_it(api: Api) -> None:
    service_id = service(api, fresh("pub"), ports=[18080])
    message = refused(api, "DELETE", "/networks/ingress", None, 400)
    assert message == ("rpc error: code = FailedPrecondition desc = ingress network cannot be removed because "
                       f"service {service_id} depends on it")
    api.ok("DELETE", f"/services/{service_id}")


def test_scope_swarm_is_accepted_and_local_refused(api: Api) -> None:
    name = fresh("scoped")
    create(api, name, Scope="swarm")
    assert api.ok("GET", f"/networks/{name}")["Scope"] == "swarm"
    message = refused(api, "POST", "/networks/create", {"Name": fresh("local"), "Driver": "overlay", "Scope": "local"},
                      400)
    assert message == 'an overlay network has swarm scope: scope "local" is not supported'


def test_service_networks_are_stored_as_ids_and_checked(api: Api, request: pytest.FixtureRequest) -> None:
    name = fresh("attach")
    network_id = create(api, name)
    spec: dict[str, Any] = {"Name": fresh("svc"), "Mode": {"Replicated": {"Replicas": 0}},
                            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"},
                                             "Networks": [{"Target": name, "Aliases": ["a"]}]}}
    service_id = api.ok("POST", "/services/create", spec)["ID"]
    shown = api.ok("GET", f"/services/{service_id}")
    assert shown["Spec"]["TaskTemplate"]["Networks"] == [{"Target": network_id, "Aliases": ["a"]}]
    api.ok("DELETE", f"/services/{service_id}")
    for target, status, message in (
        ("nosuch", 404, "network nosuch not found"),
        ("ingress", 400, 'rpc error: code = InvalidArgument desc = Service cannot be explicitly attached to the '
                         'ingress network "ingress"'),
    ):
        spec["Name"] = fresh("bad")
        spec["TaskTemplate"]["Networks"] = [{"Target": target}]
        assert refused(api, "POST", "/services/create", spec, status) == message


def test_this_nodes_load_balancer_endpoint_on_ingress(api: Api) -> None:
    """Issue 9: every node holds an address of its own on ingress (swarmkit's node attachment), which
    `network inspect` on that node shows as dockerd's `ingress-sbox` endpoint; the list shows none."""

    def containers() -> Any:
        return api.ok("GET", "/networks/ingress")["Containers"]

    wait_until(lambda: containers() is not None, 20, f"{api.kind}: ingress never showed this node's endpoint")
    shown = containers()
    assert containers() == shown  # the same endpoint (id and address) on every look
    assert list(shown) == ["ingress-sbox"]
    endpoint = dict(shown["ingress-sbox"])
    assert len(endpoint.pop("EndpointID")) == 64
    # the first address after the gateway: the node's was taken before any service's VIP
    assert endpoint == {"Name": "ingress-endpoint", "MacAddress": "02:42:0a:00:00:02", "IPv4Address": "10.0.0.2/24",
                        "IPv6Address": ""}
    assert [n["Containers"] for n in api.ok("GET", "/networks") if n["Name"] == "ingress"] == [None]
