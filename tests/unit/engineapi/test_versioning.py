"""Version prefixes, /_ping, and the daemon headers every response carries."""

from __future__ import annotations

import re

import docker
import pytest

from .conftest import EngineServer, needs_cli_version, request

DAEMON_HEADERS = {
    "Api-Version": "1.41",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": "Docker/20.10.24+shoal (linux)",
}


@pytest.mark.parametrize("prefix", ["", "/v1.41", "/v1.12", "/v1.24"])
def test_ping_get_answers_ok_with_daemon_and_cache_headers(engine: EngineServer, prefix: str) -> None:
    response = request(engine, "GET", f"{prefix}/_ping")
    assert response.status == 200
    assert response.body == b"OK"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert response.headers["Pragma"] == "no-cache"
    for name, value in DAEMON_HEADERS.items():
        assert response.headers[name] == value


@pytest.mark.parametrize("prefix", ["", "/v1.41"])
def test_ping_head_is_empty_with_the_same_headers(engine: EngineServer, prefix: str) -> None:
    response = request(engine, "HEAD", f"{prefix}/_ping")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Api-Version"] == "1.41"


def test_every_response_carries_daemon_headers_even_errors(engine: EngineServer) -> None:
    response = request(engine, "GET", "/v1.41/services")  # 503: not in a swarm
    assert response.status == 503
    for name, value in DAEMON_HEADERS.items():
        assert response.headers[name] == value


def test_too_new_version_is_refused_with_json(engine: EngineServer) -> None:
    response = request(engine, "GET", "/v1.99/info")
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == (b'{"message":"client version 1.99 is too new. Maximum supported API version is 1.41"}\n')


def test_too_old_version_is_refused_with_text(engine: EngineServer) -> None:
    response = request(engine, "GET", "/v1.11/info")
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert b"client version 1.11 is too old" in response.body


def test_unprefixed_and_prefixed_paths_reach_the_same_handler(swarm_engine: EngineServer) -> None:
    plain = request(swarm_engine, "GET", "/swarm")
    prefixed = request(swarm_engine, "GET", "/v1.30/swarm")
    assert plain.status == prefixed.status == 200
    assert plain.body == prefixed.body


def test_docker_py_auto_negotiation_picks_1_41(engine: EngineServer) -> None:
    client = docker.APIClient(base_url=engine.base_url, version="auto")
    try:
        assert client.api_version == "1.41"
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.41"
    finally:
        client.close()


@needs_cli_version((23, 0), "a CLI whose own API is newer than 1.41, so that it negotiates down")
def test_cli_version_shows_downgrade(engine: EngineServer) -> None:
    result = engine.cli("version")
    assert result.returncode == 0, result.stderr
    # A newer CLI than 20.10 negotiates down to shoal's 1.41 and says from which version it came.
    assert re.search(r"API version:\s+1\.41 \(downgraded from 1\.\d+\)", result.stdout), result.stdout
    assert "20.10.24+shoal" in result.stdout


def test_version_components_compare_like_go() -> None:
    from shoal.engineapi.versioning import version_error

    assert version_error("1.41") is None
    assert version_error("1.41.0") is None
    assert version_error("1.12") is None
    assert version_error("1.9") is not None  # 1.9 < 1.12: components are numbers, not decimals
    assert version_error("1.100") is not None
