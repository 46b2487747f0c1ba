"""The docker executor's pure parts: framing, parsing, the create body, labels. No engine needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shoal.executor.base import STDERR, STDOUT, ContainerState, PortSpec, Resources, TaskRuntime
from shoal.executor.docker import labels
from shoal.executor.docker.address import EngineAddress
from shoal.executor.docker.containerspec import command_fields, create_body, stop_timeout_seconds
from shoal.executor.docker.engine import (
    EngineBadRequest,
    EngineConflict,
    EngineError,
    EngineNotFound,
    encode_params,
    error_for_status,
)
from shoal.executor.docker.executor import load_instance_id, node_description
from shoal.executor.docker.health import (
    HEALTHY,
    STOPPED,
    UNHEALTHY,
    current_health,
    has_health_check,
    verdict_from_event,
)
from shoal.executor.docker.hijack import build_request, parse_head
from shoal.executor.docker.images import reference_candidates
from shoal.executor.docker.logstream import log_lines, logs_params, parse_entry, unix_timestamp
from shoal.executor.docker.probe import capabilities_from_info
from shoal.executor.docker.status import (
    exec_info_from_inspect,
    info_from_list,
    status_from_inspect,
)
from shoal.executor.docker.stdcopy import FrameDecoder, LineSplitter, Stream, encode_frame
from shoal.executor.errors import InvalidTaskSpec


def runtime(**overrides: object) -> TaskRuntime:
    fields: dict[str, object] = {
        "task_id": "t0k3n1d",
        "service_id": "s3rv1c3",
        "service_name": "web",
        "node_id": "n0d3",
        "slot": 2,
        "image": "shoal-busybox:latest",
    }
    fields.update(overrides)
    return TaskRuntime(**fields)  # type: ignore[arg-type]


# --- stdcopy ------------------------------------------------------------------------------------


def test_frames_split_across_chunks_are_reassembled() -> None:
    wire = encode_frame(Stream.STDOUT, b"hello\n") + encode_frame(Stream.STDERR, b"oops\n")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(wire)):
        frames.extend(decoder.feed(wire[i : i + 1]))
    assert frames == [(Stream.STDOUT, b"hello\n"), (Stream.STDERR, b"oops\n")]
    assert decoder.pending == 0


def test_incomplete_frame_is_held_back() -> None:
    wire = encode_frame(Stream.STDOUT, b"abcdef")
    decoder = FrameDecoder()
    assert decoder.feed(wire[:-2]) == []
    assert decoder.pending == len(wire) - 2
    assert decoder.feed(wire[-2:]) == [(Stream.STDOUT, b"abcdef")]


def test_line_splitter_keeps_partial_line_until_flush() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\nb") == [b"a\n"]
    assert splitter.feed(b"c\nd") == [b"bc\n"]
    assert splitter.flush() == b"d"


# --- logs ---------------------------------------------------------------------------------------


def test_log_entry_timestamp_is_parsed_and_newline_added() -> None:
    line = parse_entry(STDERR, b"2026-11-26T15:53:45.410072123Z no newline")
    assert line.stream == STDERR
    assert line.timestamp == datetime(2026, 11, 26, 15, 53, 45, 410072, tzinfo=UTC)
    assert line.data == b"no newline\n"


def test_log_entry_without_timestamp_keeps_its_text() -> None:
    line = parse_entry(STDOUT, b"garbage entry\n")
    assert line.data == b"garbage entry\n"
    assert line.timestamp == datetime.fromtimestamp(0, UTC)


async def chunks_of(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_multiplexed_log_stream_gives_lines_per_stream() -> None:
    wire = encode_frame(Stream.STDOUT, b"2026-01-01T00:00:00.000000001Z out\n") + encode_frame(
        Stream.STDERR, b"2026-01-01T00:00:01Z err\n"
    )
    lines = [line async for line in log_lines(chunks_of(wire, 5), tty=False)]
    assert [(line.stream, line.data) for line in lines] == [(STDOUT, b"out\n"), (STDERR, b"err\n")]


async def test_tty_log_stream_is_all_stdout() -> None:
    wire = b"2026-01-01T00:00:00Z one\r\n2026-01-01T00:00:01Z two"
    lines = [line async for line in log_lines(chunks_of(wire, 3), tty=True)]
    assert [(line.stream, line.data) for line in lines] == [(STDOUT, b"one\r\n"), (STDOUT, b"two\n")]


# --- create body --------------------------------------------------------------------------------


def test_command_replaces_entrypoint_and_args_become_cmd() -> None:
    assert command_fields(runtime(command=("sh", "-c"), args=("echo hi",))) == {
        "Entrypoint": ["sh", "-c"],
        "Cmd": ["echo hi"],
    }
    # Command alone: the image's Cmd must not be appended to the new entrypoint.
    assert command_fields(runtime(command=("sleep", "5"))) == {"Entrypoint": ["sleep", "5"], "Cmd": []}


def test_args_alone_keep_the_image_entrypoint() -> None:
    assert command_fields(runtime(args=("-p", "8080"))) == {"Cmd": ["-p", "8080"]}
    assert command_fields(runtime()) == {}


def test_create_body_carries_spec_fields_and_no_restart_policy() -> None:
    body = create_body(
        runtime(
            env=("A=1",),
            workdir="/srv",
            user="nobody",
            hostname="web-2",
            stop_signal="usr1",
            stop_grace_period=2.5,
            resources=Resources(nano_cpus=500_000_000, memory_bytes=64 << 20, pids_limit=32),
            ports=(PortSpec(80),),
        ),
        image="shoal-busybox:latest",
        instance_id="inst",
        network="bridge",
    )
    assert body["Image"] == "shoal-busybox:latest"
    assert body["Env"] == ["A=1"]
    assert body["WorkingDir"] == "/srv"
    assert body["User"] == "nobody"
    assert body["Hostname"] == "web-2"
    assert body["StopSignal"] == "SIGUSR1"
    assert body["StopTimeout"] == 3
    assert "ExposedPorts" not in body  # an ingress port is the routing mesh's, not the container's
    host = body["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "no"}
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 500_000_000, 32)


def test_unset_fields_are_left_to_the_image() -> None:
    body = create_body(runtime(), image="img", instance_id="inst", network="bridge")
    for key in ("WorkingDir", "User", "Hostname", "Entrypoint", "Cmd", "ExposedPorts"):
        assert key not in body
    assert "Memory" not in body["HostConfig"]


def test_bad_stop_signal_rejects_the_task() -> None:
    with pytest.raises(InvalidTaskSpec, match="Invalid signal"):
        create_body(runtime(stop_signal="SIGNOPE"), image="img", instance_id="i", network="bridge")


def test_stop_timeout_rounds_up() -> None:
    assert [stop_timeout_seconds(g) for g in (0, 0.2, 1, 1.01, 10)] == [0, 1, 1, 2, 10]


# --- labels -------------------------------------------------------------------------------------


def test_swarm_labels_as_swarm_sets_them() -> None:
    found = labels.container_labels(runtime(labels={"team": "a"}), "inst-1")
    assert found["team"] == "a"
    assert found["com.docker.swarm.node.id"] == "n0d3"
    assert found["com.docker.swarm.service.id"] == "s3rv1c3"
    assert found["com.docker.swarm.service.name"] == "web"
    assert found["com.docker.swarm.task"] == ""
    assert found["com.docker.swarm.task.id"] == "t0k3n1d"
    assert found["com.docker.swarm.task.name"] == "web.2.t0k3n1d"
    assert found[labels.EXECUTOR_INSTANCE] == "inst-1"


def test_user_labels_cannot_mask_system_labels() -> None:
    found = labels.container_labels(runtime(labels={"com.docker.swarm.task.id": "forged"}), "inst")
    assert found["com.docker.swarm.task.id"] == "t0k3n1d"


def test_runtime_round_trips_through_labels() -> None:
    original = runtime(command=("sh",), env=("X=1",), resources=Resources(memory_bytes=1 << 20))
    assert labels.runtime_from_labels(labels.container_labels(original, "inst")) == original
    assert labels.runtime_from_labels({labels.RUNTIME: "{not json"}) is None
    assert labels.runtime_from_labels({}) is None


# --- engine answers -----------------------------------------------------------------------------


def inspect_answer(status: str, **state: object) -> dict[str, object]:
    return {
        "Id": "c" * 64,
        "Created": "2026-11-26T15:53:45.168189Z",
        "Config": {"Hostname": "cccccccccccc", "Labels": {}},
        "State": {
            "Status": status,
            "Pid": 0,
            "ExitCode": 0,
            "StartedAt": "0001-01-01T00:00:00Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            **state,
        },
        "NetworkSettings": {"IPAddress": "", "Networks": {"mynet": {"IPAddress": "10.9.0.5"}}},
    }


def test_running_container_status() -> None:
    status = status_from_inspect(inspect_answer("running", Pid=42, StartedAt="2026-11-26T15:53:46Z"))
    assert status.state is ContainerState.RUNNING
    assert (status.pid, status.exit_code, status.address) == (42, None, "10.9.0.5")
    assert status.started_at == datetime(2026, 11, 26, 15, 53, 46, tzinfo=UTC)
    assert status.finished_at is None
    assert status.hostname == "cccccccccccc"


def test_exited_container_status_has_exit_code_and_no_address() -> None:
    status = status_from_inspect(inspect_answer("exited", ExitCode=137, FinishedAt="2026-11-26T15:54:00Z"))
    assert status.state is ContainerState.EXITED
    assert (status.pid, status.exit_code, status.address) == (None, 137, None)


@pytest.mark.parametrize(
    ("engine_state", "expected"),
    [
        ("created", ContainerState.CREATED),
        ("paused", ContainerState.RUNNING),
        ("dead", ContainerState.EXITED),
        ("removing", ContainerState.EXITED),
    ],
)
def test_engine_states_map_to_protocol_states(engine_state: str, expected: ContainerState) -> None:
    assert status_from_inspect(inspect_answer(engine_state)).state is expected


def test_container_list_entry_hides_shoal_bookkeeping_labels() -> None:
    info = info_from_list(
        {
            "Id": "d" * 64,
            "Names": ["/web.1.abc"],
            "Image": "shoal-busybox:latest",
            "Command": "sleep 5",
            "Created": 1700000000,
            "State": "running",
            "Status": "Up 2 seconds",
            "Labels": {labels.RUNTIME: "{}", labels.EXECUTOR_INSTANCE: "i", labels.TASK_ID: "abc"},
            "Ports": [{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 80, "Type": "tcp", "IP": "::"}],
        }
    )
    assert info.labels == {labels.TASK_ID: "abc"}
    assert info.names == ("/web.1.abc",)
    assert info.ports == (PortSpec(80, "tcp"),)
    assert info.to_docker()["State"] == "running"


def test_exec_inspect_answer() -> None:
    info = exec_info_from_inspect(
        {
            "ID": "e" * 64,
            "ContainerID": "c" * 64,
            "Running": False,
            "ExitCode": 3,
            "Pid": 99,
            "ProcessConfig": {"entrypoint": "sh", "arguments": ["-c", ""]},
        }
    )
    assert info.argv == ("sh", "-c", "")
    assert (info.running, info.exit_code, info.pid) == (False, 3, 99)
    still_running = exec_info_from_inspect({"ID": "e", "Running": True, "ExitCode": 0})
    assert still_running.exit_code is None


def test_error_status_maps_to_error_category() -> None:
    assert isinstance(error_for_status(404, "No such container: x"), EngineNotFound)
    assert isinstance(error_for_status(409, "conflict"), EngineConflict)
    assert isinstance(error_for_status(400, "bad"), EngineBadRequest)
    other = error_for_status(500, "boom")
    assert type(other) is EngineError
    assert other.status == 500


def test_query_parameters_as_the_engine_reads_them() -> None:
    encoded = encode_params({"all": True, "follow": False, "tail": 5, "skip": None, "filters": {"label": ["a"]}})
    assert encoded == {"all": "1", "follow": "0", "tail": "5", "filters": json.dumps({"label": ["a"]})}


def test_digest_pinned_reference_falls_back_to_its_tag() -> None:
    assert reference_candidates("img:1@sha256:abc") == ["img:1@sha256:abc", "img:1"]
    assert reference_candidates("reg:5000/img@sha256:abc") == ["reg:5000/img@sha256:abc"]
    assert reference_candidates("img") == ["img:latest"]
    assert reference_candidates("localhost:5000/team/img") == ["localhost:5000/team/img:latest"]
    assert reference_candidates("localhost:5000/team/img:2") == ["localhost:5000/team/img:2"]


def test_hijack_request_and_answer_head() -> None:
    request = build_request("/v1.41/exec/x/start", {"Detach": False})
    assert request.startswith(b"POST /v1.41/exec/x/start HTTP/1.1\r\n")
    assert b"Upgrade: tcp\r\n" in request
    assert request.endswith(b'\r\n\r\n{"Detach": false}')
    status, headers = parse_head(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream")
    assert status == 101
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    with pytest.raises(ValueError):
        parse_head(b"garbage")


def test_capabilities_follow_the_engine_cgroup_flags() -> None:
    full = capabilities_from_info({"MemoryLimit": True, "PidsLimit": True, "CpuCfsQuota": True})
    assert "memory-limit" in full and "pids-limit" in full and "cpu-limit" in full
    partial = capabilities_from_info({"MemoryLimit": True, "PidsLimit": False, "CpuCfsQuota": True})
    assert "pids-limit" not in partial
    assert "PidsLimit=false" in partial.why_missing("pids-limit")


def test_node_description_from_engine_info() -> None:
    description = node_description(
        {
            "Name": "vm",
            "OSType": "linux",
            "Architecture": "x86_64",
            "NCPU": 2,
            "MemTotal": 1 << 30,
            "ServerVersion": "20.10.24",
            "Labels": ["zone=a", "bare"],
            "Plugins": {"Volume": ["local"], "Network": ["overlay", "bridge"], "Log": None},
        }
    )
    assert description.nano_cpus == 2_000_000_000
    assert description.engine_labels == {"zone": "a", "bare": ""}
    docker_shape = description.to_docker()
    assert docker_shape["Platform"] == {"Architecture": "x86_64", "OS": "linux"}
    assert docker_shape["Engine"]["Plugins"] == [
        {"Type": "Network", "Name": "bridge"},
        {"Type": "Network", "Name": "overlay"},
        {"Type": "Volume", "Name": "local"},
    ]


def test_instance_id_is_made_once_per_state_dir(tmp_path: Path) -> None:
    first = load_instance_id(tmp_path / "state")
    assert first == load_instance_id(tmp_path / "state")
    assert first != load_instance_id(tmp_path / "other")


# --- ContainerSpec fields read from the raw task ------------------------------------------------


def test_raw_task_container_spec_fields_reach_the_engine_shape() -> None:
    mounts = [{"Type": "tmpfs", "Target": "/scratch"}]
    health = {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000}
    raw = {
        "Spec": {
            "ContainerSpec": {
                "Mounts": mounts,
                "Init": True,
                "ReadOnly": True,
                "Hosts": ["10.0.0.5 db db.local"],
                "DNSConfig": {"Nameservers": ["10.0.0.53"], "Search": ["corp"], "Options": ["ndots:2"]},
                "CapabilityAdd": ["NET_ADMIN"],
                "Sysctls": {"net.ipv4.ip_forward": "1"},
                "Healthcheck": health,
                "Groups": [],
            }
        }
    }
    body = create_body(runtime(raw_task=raw), image="img", instance_id="i", network="bridge")
    host = body["HostConfig"]
    assert host["Mounts"] == mounts
    assert (host["Init"], host["ReadonlyRootfs"]) == (True, True)
    assert host["ExtraHosts"] == ["db:10.0.0.5", "db.local:10.0.0.5"]
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (["10.0.0.53"], ["corp"], ["ndots:2"])
    assert host["CapAdd"] == ["NET_ADMIN"]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert "GroupAdd" not in host
    assert host["RestartPolicy"] == {"Name": "no"}
    assert body["Healthcheck"] == health


def test_bad_hosts_entry_rejects_the_task() -> None:
    raw = {"Spec": {"ContainerSpec": {"Hosts": ["justonefield"]}}}
    with pytest.raises(InvalidTaskSpec, match="invalid host entry"):
        create_body(runtime(raw_task=raw), image="img", instance_id="i", network="bridge")


# --- health -------------------------------------------------------------------------------------


def test_health_check_detection_and_verdicts() -> None:
    assert has_health_check({"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}})
    assert not has_health_check({"Config": {"Healthcheck": {"Test": ["NONE"]}}})
    assert not has_health_check({"Config": {}})
    assert current_health({"State": {"Status": "running", "Health": {"Status": "starting"}}}) is None
    assert current_health({"State": {"Status": "running", "Health": {"Status": "healthy"}}}) == HEALTHY
    assert current_health({"State": {"Status": "exited"}}) == STOPPED
    assert verdict_from_event({"Action": "health_status: unhealthy"}) == UNHEALTHY
    assert verdict_from_event({"Action": "die"}) == STOPPED
    assert verdict_from_event({"Action": "exec_start: sh -c true"}) is None


def test_log_since_is_sent_exactly() -> None:
    moment = datetime(2026, 11, 26, 15, 53, 45, 410072, tzinfo=UTC)
    assert unix_timestamp(moment) == "1795708425.410072000"
    assert logs_params(follow=False, tail=None, since=moment)["since"] == "1795708425.410072000"
    assert logs_params(follow=True, tail=3, since=None) == {
        "stdout": True,
        "stderr": True,
        "timestamps": True,
        "follow": True,
        "tail": 3,
    }


def test_quick_exit_never_finishes_before_it_started() -> None:
    # dockerd 20.10 really reports this for `echo done`: FinishedAt 1 ms before StartedAt.
    status = status_from_inspect(
        inspect_answer("exited", StartedAt="2026-11-26T16:04:43.605050Z", FinishedAt="2026-11-26T16:04:43.604024Z")
    )
    assert status.started_at == status.finished_at == datetime(2026, 11, 26, 16, 4, 43, 604024, tzinfo=UTC)


def test_host_mode_ports_are_bound_by_the_engine_and_ingress_ones_are_not() -> None:
    raw = {
        "Endpoint": {
            "Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"},
                {"Protocol": "tcp", "TargetPort": 9000, "PublishMode": "host"},
            ]
        }
    }
    body = create_body(runtime(raw_task=raw), image="img", instance_id="i", network="bridge")
    assert body["ExposedPorts"] == {"53/udp": {}, "9000/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {"53/udp": [{"HostPort": "5353"}], "9000/tcp": [{"HostPort": ""}]}


def test_task_log_driver_becomes_the_container_log_config() -> None:
    raw = {"LogDriver": {"Name": "local", "Options": {"max-size": "1m"}}}
    body = create_body(runtime(raw_task=raw), image="img", instance_id="i", network="bridge")
    assert body["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {"max-size": "1m"}}


async def test_lines_written_out_of_time_order_come_out_in_order() -> None:
    # What dockerd sometimes writes: stderr's line stamped first but logged second.
    wire = encode_frame(Stream.STDOUT, b"2026-01-01T00:00:00.000002Z out\n") + encode_frame(
        Stream.STDERR, b"2026-01-01T00:00:00.000001Z err\n"
    )
    in_one_batch = [line.data async for line in log_lines(chunks_of(wire, len(wire)), tty=False)]
    assert in_one_batch == [b"err\n", b"out\n"]
    # Split across reads the order cannot be repaired, but time never goes back.
    split = [line async for line in log_lines(chunks_of(wire, len(wire) // 2), tty=False)]
    assert [line.data for line in split] == [b"out\n", b"err\n"]
    assert split[0].timestamp == split[1].timestamp


def test_host_network_means_no_task_address() -> None:
    capabilities = capabilities_from_info({}, network="host")
    assert "task-address" not in capabilities
    assert "host's network" in capabilities.why_missing("task-address")
    assert "task-address" in capabilities_from_info(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/var/run/docker.sock", EngineAddress(unix_path="/var/run/docker.sock")),
        ("unix:///tmp/d.sock", EngineAddress(unix_path="/tmp/d.sock")),
        ("tcp://10.0.0.5:2376", EngineAddress(host="10.0.0.5", port=2376)),
        ("tcp://docker-host", EngineAddress(host="docker-host", port=2375)),
        ("tcp://[::1]:2375", EngineAddress(host="::1", port=2375)),
    ],
)
def test_engine_addresses_as_docker_host_writes_them(text: str, expected: EngineAddress) -> None:
    assert EngineAddress.parse(text) == expected


def test_unsupported_engine_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported Docker host"):
        EngineAddress.parse("ssh://me@host")
    with pytest.raises(ValueError, match="expected tcp://host:port"):
        EngineAddress.parse("tcp://host:notaport")
