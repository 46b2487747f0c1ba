"""dockerd's service and node event attributes and its `docker ps` COMMAND, on the pure functions the
requests added."""

from __future__ import annotations

from typing import Any

from shoal.store.watch import Event


def service(image: str = "web:1", replicas: int | None = 1, update_state: str | None = None) -> dict[str, Any]:
    mode: dict[str, Any] = {"Replicated": {"Replicas": replicas}} if replicas is not None else {"Global": {}}
    obj: dict[str, Any] = {"ID": "svc1", "Spec": {"Name": "web", "Mode": mode,
                                                   "TaskTemplate": {"ContainerSpec": {"Image": image}}}}
    if update_state is not None:
        obj["UpdateStatus"] = {"State": update_state}
    return obj


def attributes(new: dict[str, Any], old: dict[str, Any] | None, action: str = "update", table: str = "services"
               ) -> dict[str, str]:
    from shoal.node.events import store_event_message

    message = store_event_message(Event(action, table, new, old))
    assert message is not None
    return dict(message["Actor"]["Attributes"])


def test_service_update_attributes() -> None:
    assert attributes(service(), None, action="create") == {"name": "web"}
    assert attributes(service(), service()) == {"name": "web"}
    assert attributes(service(replicas=3), service()) == {"name": "web", "replicas.old": "1", "replicas.new": "3"}
    assert attributes(service(image="Web:2"), service()) == {"name": "web", "image.old": "web:1", "image.new": "Web:2"}
    assert attributes(service(update_state="updating"), service()) == {"name": "web", "updatestate.new": "updating"}
    assert attributes(service(update_state="completed"), service(update_state="updating")) == {
        "name": "web", "updatestate.old": "updating", "updatestate.new": "completed"}
    assert attributes(service(update_state="updating"), service(update_state="updating")) == {"name": "web"}
    # a global service has no replica count to compare; a removal carries the name only
    assert attributes(service(replicas=None), service(replicas=None)) == {"name": "web"}
    assert attributes(service(), service(image="old"), action="delete") == {"name": "web"}


def node(availability: str = "active", state: str = "ready", leader: bool | None = None,
         reachability: str = "reachable") -> dict[str, Any]:
    obj: dict[str, Any] = {"ID": "n1", "Description": {"Hostname": "host1"},
                           "Spec": {"Role": "manager" if leader is not None else "worker",
                                    "Availability": availability},
                           "Status": {"State": state}}
    if leader is not None:
        obj["ManagerStatus"] = {"Leader": leader, "Reachability": reachability}
    return obj


def test_node_update_attributes() -> None:
    assert attributes(node(), node(), table="nodes") == {"name": "host1"}
    assert attributes(node(availability="drain"), node(), table="nodes") == {
        "name": "host1", "availability.old": "active", "availability.new": "drain"}
    assert attributes(node(state="down"), node(), table="nodes") == {
        "name": "host1", "state.old": "ready", "state.new": "down"}
    assert attributes(node(leader=True), node(), table="nodes") == {
        "name": "host1", "role.old": "worker", "role.new": "manager"}
    assert attributes(node(leader=True), node(leader=False), table="nodes") == {
        "name": "host1", "leader.old": "false", "leader.new": "true"}
    assert attributes(node(leader=False, reachability="unreachable"), node(leader=False), table="nodes") == {
        "name": "host1", "reachability.old": "reachable", "reachability.new": "unreachable"}


def test_ps_command_quotes_arguments_holding_a_space() -> None:
    from shoal.executor.process.status import ps_command
    assert ps_command(("sleep", "600")) == "sleep 600"
    assert ps_command(("sh", "-c", "echo hi; sleep 600")) == "sh -c 'echo hi; sleep 600'"
    assert ps_command(("/bin/my prog", "a")) == "/bin/my prog a"  # dockerd leaves the path as it is
    assert ps_command(()) == ""
