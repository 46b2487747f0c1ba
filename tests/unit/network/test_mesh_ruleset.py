"""The kernel path's rules, generated purely and checked against an in-memory iptables."""

from __future__ import annotations

import asyncio

from fake_iptables import FakeIptables
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.network.mesh.chains import ChainNames
from shoal.network.mesh.ruleset import (
    balance_rules,
    desired_tables,
    parse_save,
    render_apply,
    render_teardown,
)
from shoal.network.mesh.state import Backend, PublishedPort

NAMES = ChainNames.for_instance("node1")
WEB = PublishedPort(8080)
DNS = PublishedPort(53, "udp")
A, B, C = Backend("10.0.0.2", 80), Backend("10.0.0.3", 80), Backend("10.0.0.4", 80)


def snapshot(fake: FakeIptables) -> dict[str, object]:
    return {t: parse_save(asyncio.run(fake.save(t)))[t] for t in ("nat", "filter")}


def apply(fake: FakeIptables, ports: dict[PublishedPort, tuple[Backend, ...]]) -> str:
    text = render_apply(ports, NAMES, snapshot(fake))  # type: ignore[arg-type]
    if text:
        asyncio.run(fake.restore(text))
    return text


def test_round_robin_takes_every_nth_of_what_reaches_each_rule() -> None:
    assert balance_rules(WEB, (A, B, C)) == [
        "-p tcp -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.0.3:80",
        "-p tcp -j DNAT --to-destination 10.0.0.4:80",
    ]
    assert balance_rules(DNS, (A,)) == ["-p udp -j DNAT --to-destination 10.0.0.2:80"]


def test_round_robin_rules_give_each_backend_an_equal_share() -> None:
    # Simulate the nth counters: each rule counts the connections that reach it.
    backends = tuple(Backend(f"10.0.0.{i}", 80) for i in range(2, 7))
    rules = balance_rules(WEB, backends)
    counters = [0] * len(rules)
    chosen = []
    for _ in range(50):
        for index, rule in enumerate(rules):
            if "--every" in rule:
                every = int(rule.split("--every ")[1].split()[0])
                hit = counters[index] % every == 0
                counters[index] += 1
                if not hit:
                    continue
            chosen.append(rule.rsplit(" ", 1)[1])
            break
    assert chosen[:5] == [f"{b.ip}:80" for b in backends]
    assert all(chosen.count(f"{b.ip}:80") == 10 for b in backends)


def test_each_ingress_port_gets_dispatch_balance_masquerade_and_forward_rules() -> None:
    tables = desired_tables({WEB: (A, B), DNS: (C,)}, NAMES)
    assert tables["nat"][NAMES.mesh] == [
        "-p udp -m udp --dport 53 -j SHOAL-NODE1-U53",
        "-p tcp -m tcp --dport 8080 -j SHOAL-NODE1-T8080",
    ]
    assert tables["nat"]["SHOAL-NODE1-T8080"] == balance_rules(WEB, (A, B))
    assert tables["nat"][NAMES.postrouting] == [
        "-p udp -m conntrack --ctstate DNAT --ctorigdstport 53 -j MASQUERADE",
        "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j MASQUERADE",
    ]
    assert tables["filter"][NAMES.forward] == [
        "-p udp -m conntrack --ctstate DNAT --ctorigdstport 53 -j ACCEPT",
        "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT",
    ]


def test_a_mesh_routing_nothing_owns_no_chains_or_jumps() -> None:
    fake = FakeIptables()
    apply(fake, {WEB: (A,)})
    apply(fake, {WEB: (), PublishedPort(9000, mode="host"): (B,)})
    assert fake.tables == FakeIptables().tables
    assert render_apply({}, NAMES, snapshot(fake)) == ""  # type: ignore[arg-type]


def test_host_mode_ports_and_ports_without_backends_get_no_rules() -> None:
    tables = desired_tables({PublishedPort(9000, mode="host"): (A,), WEB: ()}, NAMES)
    assert tables == {"nat": {NAMES.mesh: [], NAMES.postrouting: []}, "filter": {NAMES.forward: []}}


def test_first_apply_creates_chains_and_jumps_in_one_restore_per_table() -> None:
    text = render_apply({WEB: (A,)}, NAMES, {})
    assert text.count("COMMIT") == 2
    assert "-I PREROUTING 1 -m addrtype --dst-type LOCAL -j SHOAL-NODE1-MESH" in text
    assert "-I OUTPUT 1 -m addrtype --dst-type LOCAL -j SHOAL-NODE1-MESH" in text
    assert "-I POSTROUTING 1 -j SHOAL-NODE1-POST" in text
    assert "-I FORWARD 1 -j SHOAL-NODE1-FWD" in text


def test_applying_what_is_already_there_renders_nothing() -> None:
    fake = FakeIptables()
    assert apply(fake, {WEB: (A, B)})
    assert apply(fake, {WEB: (A, B)}) == ""


def test_only_changed_chains_are_rewritten() -> None:
    fake = FakeIptables()
    apply(fake, {WEB: (A, B), DNS: (C,)})
    text = apply(fake, {WEB: (A, C), DNS: (C,)})
    assert ":SHOAL-NODE1-T8080 - [0:0]" in text
    assert "U53" not in text
    assert "*filter" not in text


def test_removed_ports_lose_their_chain_and_stale_chains_of_a_previous_run_go() -> None:
    fake = FakeIptables()
    apply(fake, {WEB: (A,), DNS: (B,)})
    fake.tables["nat"]["SHOAL-NODE1-T1234"] = ["-p tcp -j DNAT --to-destination 10.9.9.9:1"]
    apply(fake, {DNS: (B,)})
    assert "SHOAL-NODE1-T8080" not in fake.tables["nat"]
    assert "SHOAL-NODE1-T1234" not in fake.tables["nat"]
    assert fake.tables["nat"][NAMES.mesh] == ["-p udp -m udp --dport 53 -j SHOAL-NODE1-U53"]


def test_forward_jump_is_moved_back_to_the_top_when_someone_inserted_above_it() -> None:
    fake = FakeIptables()
    apply(fake, {WEB: (A,)})
    fake.tables["filter"]["FORWARD"].insert(0, "-j DOCKER-USER")
    fake.tables["filter"]["FORWARD"].append(f"-j {NAMES.forward}")  # and a duplicate
    text = apply(fake, {WEB: (A,)})
    assert "*nat" not in text
    assert fake.tables["filter"]["FORWARD"] == [f"-j {NAMES.forward}", "-j DOCKER-USER"]


def test_teardown_removes_ours_and_nothing_else() -> None:
    fake = FakeIptables()
    other = ChainNames.for_instance("node2")
    fake.tables["nat"]["PREROUTING"].append("-m addrtype --dst-type LOCAL -j DOCKER")
    apply(fake, {WEB: (A,), DNS: (B,)})
    text = render_apply({WEB: (C,)}, other, snapshot(fake))  # type: ignore[arg-type]
    asyncio.run(fake.restore(text))
    before_other = {t: {c: r for c, r in chains.items() if other.owns(c)} for t, chains in fake.tables.items()}

    asyncio.run(fake.restore(render_teardown(NAMES, snapshot(fake))))  # type: ignore[arg-type]
    assert not any(NAMES.owns(c) for chains in fake.tables.values() for c in chains)
    assert not any(NAMES.prefix in r for chains in fake.tables.values() for rs in chains.values() for r in rs)
    after_other = {t: {c: r for c, r in chains.items() if other.owns(c)} for t, chains in fake.tables.items()}
    assert after_other == before_other
    assert "-m addrtype --dst-type LOCAL -j DOCKER" in fake.tables["nat"]["PREROUTING"]
    assert render_teardown(NAMES, snapshot(fake)) == ""  # type: ignore[arg-type]


def test_parse_save_reads_chains_rules_and_skips_comments() -> None:
    text = """# Warning: iptables-legacy tables present
*nat
:PREROUTING ACCEPT [3:180]
:SHOAL-X-MESH - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j SHOAL-X-MESH
COMMIT
*filter
:FORWARD DROP [0:0]
COMMIT
"""
    tables = parse_save(text)
    assert tables["nat"].chains == {"PREROUTING", "SHOAL-X-MESH"}
    assert tables["nat"].rules["PREROUTING"] == ["-m addrtype --dst-type LOCAL -j SHOAL-X-MESH"]
    assert tables["nat"].rules["SHOAL-X-MESH"] == []
    assert tables["filter"].rules == {"FORWARD": []}


backend_sets = st.lists(
    st.builds(Backend, st.sampled_from(["10.0.0.2", "10.0.0.3", "10.1.0.9"]), st.sampled_from([80, 8080])),
    max_size=3,
    unique=True,
)
states = st.dictionaries(
    st.builds(PublishedPort, st.sampled_from([53, 80, 30000]), st.sampled_from(["tcp", "udp"])),
    backend_sets.map(lambda b: tuple(sorted(b))),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(states, min_size=1, max_size=4))
def test_any_sequence_of_states_converges_and_tears_down_cleanly(sequence: list[dict]) -> None:  # type: ignore[type-arg]
    fake = FakeIptables()
    for ports in sequence:
        apply(fake, ports)
        assert render_apply(ports, NAMES, snapshot(fake)) == ""  # type: ignore[arg-type]
        if not any(ports.values()):
            assert fake.tables == FakeIptables().tables
            continue
        wanted = desired_tables(ports, NAMES)
        for table, chains in wanted.items():
            owned = {c: r for c, r in fake.tables[table].items() if NAMES.owns(c)}
            assert owned == chains
    asyncio.run(fake.restore(render_teardown(NAMES, snapshot(fake))))  # type: ignore[arg-type]
    assert fake.tables == FakeIptables().tables


def test_daemons_sharing_a_machine_do_not_fight_over_the_top_of_forward() -> None:
    fake = FakeIptables()
    fake.tables["filter"]["FORWARD"].append("-j DOCKER-USER")
    other = ChainNames.for_instance("node2")
    apply(fake, {WEB: (A,)})
    asyncio.run(fake.restore(render_apply({DNS: (B,)}, other, snapshot(fake))))  # type: ignore[arg-type]
    assert apply(fake, {WEB: (A,)}) == ""
    assert render_apply({DNS: (B,)}, other, snapshot(fake)) == ""  # type: ignore[arg-type]
    assert fake.tables["filter"]["FORWARD"][-1] == "-j DOCKER-USER"
