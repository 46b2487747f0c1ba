from __future__ import annotations

from pathlib import Path

from shoal.network.mesh.hairpin import Hairpin, interface_for, parse_routes

# eth0 default route, a bridge for 10.199.0.0/16 and a more specific /24 on another bridge.
ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
br-wide\t0000C70A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
br-task\t0005C70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_routes_are_read_in_host_byte_order() -> None:
    routes = parse_routes(ROUTES)
    assert [str(r.network) for r in routes] == ["0.0.0.0/0", "10.199.0.0/16", "10.199.5.0/24"]


def test_the_longest_matching_route_wins() -> None:
    routes = parse_routes(ROUTES)
    assert interface_for("10.199.5.7", routes) == "br-task"
    assert interface_for("10.199.6.7", routes) == "br-wide"
    assert interface_for("8.8.8.8", routes) == "eth0"


def make_sysfs(root: Path) -> Path:
    net = root / "class-net"
    for port in ("veth1", "veth2"):
        (net / "br-task" / "bridge").mkdir(parents=True, exist_ok=True)
        flag = net / "br-task" / "brif" / port / "hairpin_mode"
        flag.parent.mkdir(parents=True)
        flag.write_text("0\n")
    (net / "eth0").mkdir()
    return net


def test_ports_of_the_backends_bridges_get_hairpin_mode_once(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(ROUTES)
    net = make_sysfs(tmp_path)
    hairpin = Hairpin(tmp_path / "route", net)
    assert hairpin.ensure(["10.199.5.2", "10.199.5.3", "192.0.2.9"]) == ["veth1", "veth2"]
    assert (net / "br-task" / "brif" / "veth1" / "hairpin_mode").read_text().strip() == "1"
    assert hairpin.ensure(["10.199.5.2"]) == []


def test_backends_not_behind_a_bridge_change_nothing(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(ROUTES)
    net = make_sysfs(tmp_path)
    assert Hairpin(tmp_path / "route", net).ensure(["8.8.8.8", "127.0.0.1"]) == []
    assert Hairpin(tmp_path / "missing", net).ensure(["10.199.5.2"]) == []
