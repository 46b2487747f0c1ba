"""A task container's published ports as dockerd shows them: which of a task's ports bind on the node
(host mode, with a published port), the `docker ps` Ports entries, and inspect's ExposedPorts,
PortBindings and NetworkSettings.Ports; the bindings survive the runtime's trip to disk (adopt())."""

from __future__ import annotations

from shoal.executor.base import ContainerInfo, ContainerState, PortBinding, PortSpec, TaskRuntime, host_mode_bindings
from shoal.executor.port_shapes import exposed_ports, network_ports, requested_bindings

PORTS = [
    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"},
    {"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 30443, "PublishMode": "ingress"},
    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"},
    {"Protocol": "tcp", "TargetPort": 9000, "PublishMode": "host"},  # no published port: nothing to bind
]


def test_only_host_mode_ports_with_a_published_port_bind() -> None:
    assert host_mode_bindings({"Endpoint": {"Ports": PORTS}}) == (
        PortBinding(80, "tcp", 8080), PortBinding(53, "udp", 5353))
    assert host_mode_bindings({"Endpoint": {"Spec": {"Ports": PORTS[:1]}}}) == (PortBinding(80, "tcp", 8080),)
    assert host_mode_bindings({}) == ()
    assert host_mode_bindings({"Endpoint": {"Ports": [{**PORTS[0], "Protocol": "TCP"}]}})[0].key == "80/tcp"


def test_the_bindings_survive_the_runtime_s_json_without_the_task() -> None:
    runtime = TaskRuntime(task_id="t", service_id="s", service_name="web", node_id="n", slot=1, image="img",
                          raw_task={"Endpoint": {"Ports": PORTS}})
    again = TaskRuntime.from_json(runtime.to_json())
    assert again.raw_task == {}
    assert again.host_bindings == runtime.host_bindings == (PortBinding(80, "tcp", 8080), PortBinding(53, "udp", 5353))
    assert again == runtime  # derived data: not part of a runtime's identity
    older = runtime.to_json()
    del older["host_ports"]  # a record written before host ports were kept
    assert TaskRuntime.from_json(older).host_bindings == ()


def test_docker_ps_lists_a_bound_port_once_per_address_and_an_exposed_one_alone() -> None:
    info = ContainerInfo(id="c" * 64, names=("/web.1.x",), image="img", command="httpd", created=0,
                         state=ContainerState.RUNNING, status="Up 1 second",
                         ports=(PortSpec(80), PortSpec(8443)),
                         bindings=(PortBinding(80, "tcp", 8080), PortBinding(80, "tcp", 8080, "::")))
    assert info.to_docker()["Ports"] == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 8443, "Type": "tcp"},
    ]


def test_inspect_shapes_as_dockerd_shows_a_swarm_task() -> None:
    bound = (PortBinding(80, "tcp", 8080), PortBinding(80, "tcp", 8080, "::"), PortBinding(53, "udp", 5353))
    assert requested_bindings(bound) == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                         "53/udp": [{"HostIp": "", "HostPort": "5353"}]}
    assert network_ports((PortSpec(8443),), bound) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
        "8443/tcp": None,
    }
    assert network_ports((), ()) == {} and requested_bindings(()) == {}
    assert exposed_ports(["80/tcp", "53/udp", "80/tcp"]) == {"53/udp": {}, "80/tcp": {}}
    assert exposed_ports([]) is None
