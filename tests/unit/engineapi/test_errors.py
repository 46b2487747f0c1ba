"""One mapping from error categories to HTTP, and Docker's exact error bodies."""

from __future__ import annotations

import json

import docker
import pytest

from shoal.api import errors
from shoal.engineapi.errors import status_for
from shoal.engineapi.gojson import decode_object

from .conftest import EngineServer, needs_cli, needs_cli_version, request


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.NotFound("x"), 404),
        (errors.InvalidArgument("x"), 400),
        (errors.AlreadyExists("x"), 409),
        (errors.Conflict("x"), 409),
        (errors.FailedPrecondition("x"), 400),
        (errors.Unavailable("x"), 503),
        (errors.NotAManager(), 503),
        (errors.AlreadyInSwarm(), 503),
        (errors.Forbidden("x"), 403),
        (errors.NotImplementedYet("x"), 501),
        (errors.Unknown("x"), 500),
        (errors.OutOfSequence(), 500),
    ],
)
def test_each_category_has_its_status(error: errors.ShoalError, status: int) -> None:
    assert status_for(error) == status


def test_not_found_body_is_exact_json(swarm_engine: EngineServer) -> None:
    response = request(swarm_engine, "DELETE", "/v1.41/services/nosuchservice")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == b'{"message":"service nosuchservice not found"}\n'


def test_unknown_route_is_page_not_found(engine: EngineServer) -> None:
    for method, path in [("GET", "/v1.41/nope"), ("GET", "/nope/deeper"), ("PUT", "/v1.41/services")]:
        response = request(engine, method, path)
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.body == b'{"message":"page not found"}\n'


def test_unexpected_exception_is_a_500_and_the_server_keeps_serving(
    swarm_engine: EngineServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(filters: object) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(swarm_engine.backend, "tasks_list", broken)
    response = request(swarm_engine, "GET", "/v1.41/tasks")
    assert response.status == 500
    assert json.loads(response.body) == {"message": "disk on fire"}
    assert "disk on fire" in caplog.text
    assert request(swarm_engine, "GET", "/_ping").status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b"", "got EOF while reading request body"),
        (b'{"Name": ', "unexpected EOF"),
        (b'{"Name" 1}', "invalid character '1' after object key"),
        (b'{"Name":"a",}', "invalid character '}' looking for beginning of object key string"),
        (b'{"Name":"a"} x', "invalid character 'x' after top-level value"),
        (b'["a"]', "json: cannot unmarshal array into Go value of type swarm.ServiceSpec"),
        (b'"a"', "json: cannot unmarshal string into Go value of type swarm.ServiceSpec"),
    ],
)
def test_malformed_bodies_get_go_messages(swarm_engine: EngineServer, body: bytes, message: str) -> None:
    response = request(swarm_engine, "POST", "/v1.41/services/create", data=body)
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {"message": message}


def test_null_body_decodes_as_empty_object() -> None:
    assert decode_object(b"null", "swarm.Spec") == {}


def test_docker_py_sees_conflict_and_not_a_manager(engine: EngineServer) -> None:
    client = docker.DockerClient(base_url=engine.base_url, version="1.41")
    try:
        with pytest.raises(docker.errors.APIError) as not_manager:
            client.services.list()
        assert not_manager.value.status_code == 503
        assert "This node is not a swarm manager." in str(not_manager.value.explanation)
        client.swarm.init()
        with pytest.raises(docker.errors.APIError) as already:
            client.api.init_swarm()
        assert already.value.status_code == 503
        assert "already part of a swarm" in str(already.value.explanation)
    finally:
        client.close()


@needs_cli_version((23, 0), "the daemon's error text printed verbatim")
def test_cli_prints_daemon_message(swarm_engine: EngineServer) -> None:
    result = swarm_engine.cli("service", "rm", "zz")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error response from daemon: service zz not found"


@needs_cli
def test_cli_prints_not_a_manager(engine: EngineServer) -> None:
    result = engine.cli("node", "ls")
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error response from daemon: {errors.NOT_A_MANAGER}"
