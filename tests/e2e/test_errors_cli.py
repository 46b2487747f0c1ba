"""Bad input gets Docker's errors and changes nothing: checked through the real docker CLI and raw HTTP."""

from __future__ import annotations

import json
import re
import socket

import pytest

from shoal.testing.daemon import CLI_DAEMON_ERRORS_VERBATIM, ShoalDaemon, cli_has, cli_requirement

pytestmark = pytest.mark.skipif(**cli_requirement())  # without a docker CLI these checks cannot run

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node '
    "to swarm and try again."
)


def raw_request(daemon: ShoalDaemon, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket_path))
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    header_blob, _, payload = data.partition(b"\r\n\r\n")
    lines = header_blob.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        decoded, rest = b"", payload
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2:]
        payload = decoded
    return status, headers, payload


def test_not_a_manager_before_init(daemon: ShoalDaemon) -> None:
    result = daemon.docker("service", "ls", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error response from daemon: {NOT_MANAGER}"
    status, headers, body = raw_request(daemon, "GET", "/v1.41/nodes")
    assert status == 503 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": NOT_MANAGER}


def test_a_valid_create_works(swarm: ShoalDaemon) -> None:
    """The baseline the refusals below are compared with."""
    out = swarm.docker("service", "create", "--detach", "--name", "keep", "--replicas", "1", "my-apache2:latest",
                       "sleep", "3600").stdout
    assert re.fullmatch(r"\w{25}\n", out)
    assert services(swarm) == ["keep"]


def services(daemon: ShoalDaemon) -> list[str]:
    return sorted(daemon.docker("service", "ls", "--format", "{{.Name}}").stdout.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "bad_name!", "my-apache2:latest", "true"],
         "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component"),
        (["--name", "img", "-name", "true"], "unknown shorthand flag"),
        (["--name", "img", "--", "-name", "true"],
         'rpc error: code = InvalidArgument desc = ContainerSpec: "-name" is not a valid repository/tag'),
        (["--name", "keep", "my-apache2:latest", "true"],
         "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service keep already exists"),
        (["--name", "neg", "--restart-delay", "-1s", "my-apache2:latest", "true"], "restart-delay cannot be negative"),
        (["--name", "ratio", "--update-max-failure-ratio", "2", "my-apache2:latest", "true"],
         "update-maxfailureratio cannot be less than 0 or bigger than 1"),
    ],
)
def test_bad_create_is_refused_and_creates_nothing(swarm: ShoalDaemon, args: list[str], message: str) -> None:
    before = services(swarm)
    result = swarm.docker("service", "create", "--detach", *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert services(swarm) == before


def test_stale_version_is_out_of_sequence(swarm: ShoalDaemon) -> None:
    service = json.loads(swarm.docker("service", "inspect", "keep").stdout)[0]
    spec = json.dumps(service["Spec"]).encode()
    stale = service["Version"]["Index"] - 1
    status, _, body = raw_request(swarm, "POST", f"/v1.41/services/{service['ID']}/update?version={stale}", spec)
    assert status == 500
    assert json.loads(body) == {"message": "rpc error: code = Unknown desc = update out of sequence"}
    after = json.loads(swarm.docker("service", "inspect", "keep").stdout)[0]
    assert after["Version"] == service["Version"]


def test_negative_replicas_and_wrong_types(swarm: ShoalDaemon) -> None:
    body = {"Name": "neg", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
            "Mode": {"Replicated": {"Replicas": -1}}}
    status, _, payload = raw_request(swarm, "POST", "/v1.41/services/create", json.dumps(body).encode())
    assert status == 400
    assert "cannot unmarshal number -1" in json.loads(payload)["message"]
    body["Mode"] = {"Replicated": {"Replicas": 1}}
    body["UpdateConfig"] = {"Delay": "5s"}
    status, _, payload = raw_request(swarm, "POST", "/v1.41/services/create", json.dumps(body).encode())
    assert status == 400
    assert "time.Duration" in json.loads(payload)["message"]
    assert "neg" not in services(swarm)


def test_malformed_json(swarm: ShoalDaemon) -> None:
    status, headers, payload = raw_request(swarm, "POST", "/v1.41/services/create", b"{not json")
    assert status == 400 and headers["content-type"] == "application/json"
    assert "invalid character" in json.loads(payload)["message"]


def test_mode_change_and_rename_refused(swarm: ShoalDaemon) -> None:
    service = json.loads(swarm.docker("service", "inspect", "keep").stdout)[0]
    version = service["Version"]["Index"]
    for change, message in (
        ({"Mode": {"Global": {}}}, "service mode change is not allowed"),
        ({"Name": "renamed"}, "renaming services is not supported"),
    ):
        spec = {**service["Spec"], **change}
        status, _, payload = raw_request(swarm, "POST", f"/v1.41/services/keep/update?version={version}",
                                         json.dumps(spec).encode())
        assert status == 400 and message in json.loads(payload)["message"]
    assert json.loads(swarm.docker("service", "inspect", "keep").stdout)[0]["Version"]["Index"] == version


def test_unknown_and_ambiguous_ids(swarm: ShoalDaemon) -> None:
    result = swarm.docker("service", "rm", "nosuchservice", check=False)
    assert result.returncode == 1
    if cli_has(CLI_DAEMON_ERRORS_VERBATIM, "service rm prints the daemon's not-found message"):
        assert "Error response from daemon: service nosuchservice not found" in result.stderr
    status, _, payload = raw_request(swarm, "GET", "/v1.41/tasks/nosuchtask")
    assert status == 404 and json.loads(payload) == {"message": "task nosuchtask not found"}
    status, _, payload = raw_request(swarm, "GET", "/v1.41/nodes/nosuchnode")
    assert status == 404 and json.loads(payload) == {"message": "node nosuchnode not found"}
    status, _, payload = raw_request(swarm, "GET", "/v1.41/services?filters=" + '{"bogus":["x"]}')
    assert status == 400 and json.loads(payload) == {"message": "Invalid filter 'bogus'"}


def test_unknown_fields_are_ignored_as_docker_does(swarm: ShoalDaemon) -> None:
    body = {"Name": "extra", "Bogus": 1, "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Args": ["true"],
                                                                            "Nonsense": True}}}
    status, _, _ = raw_request(swarm, "POST", "/v1.41/services/create", json.dumps(body).encode())
    assert status == 201
    service = json.loads(swarm.docker("service", "inspect", "extra").stdout)[0]
    assert "Bogus" not in service["Spec"] and "Nonsense" not in service["Spec"]["TaskTemplate"]["ContainerSpec"]
    swarm.docker("service", "rm", "extra")
