"""Query parsing: Go's ParseBool, filters in both shapes, versions, times, tail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shoal.api.errors import InvalidArgument
from shoal.engineapi.query import (
    bool_param,
    log_options,
    parse_filters,
    parse_go_bool,
    parse_timestamp,
    tail_param,
    version_param,
)

from .conftest import EngineServer, request


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_spellings(text: str) -> None:
    assert parse_go_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_spellings(text: str) -> None:
    assert parse_go_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "tRUE", "2", " true", "on"])
def test_other_bool_spellings_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid value for force"):
        bool_param({"force": text}, "force")


def test_missing_or_empty_bool_is_the_default() -> None:
    assert bool_param({}, "force") is False
    assert bool_param({"force": ""}, "force", default=True) is True


def test_filters_in_both_formats_parse_the_same() -> None:
    cli = parse_filters(json.dumps({"name": {"frontend": True, "skipped": False}, "label": {"a=b": True}}))
    docker_py = parse_filters(json.dumps({"name": ["frontend"], "label": ["a=b"]}))
    assert cli == docker_py == {"name": ["frontend"], "label": ["a=b"]}


@pytest.mark.parametrize("raw", ["{", '{"name": 3}', '{"name": [1]}', "[1]"])
def test_malformed_filters_are_invalid_arguments(raw: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_filters(raw)


def test_service_version_must_be_an_unsigned_integer() -> None:
    assert version_param({"version": "17"}, "service") == 17
    with pytest.raises(InvalidArgument) as missing:
        version_param({}, "service")
    assert str(missing.value) == "invalid service version '': strconv.ParseUint: parsing \"\": invalid syntax"
    with pytest.raises(InvalidArgument, match="invalid node version '-1'"):
        version_param({"version": "-1"}, "node")


def test_timestamps_as_unix_seconds_or_rfc3339() -> None:
    expected = datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert parse_timestamp("1700000000.500000000") == expected
    assert parse_timestamp("1700000000") == expected.replace(microsecond=0)
    assert parse_timestamp("2023-11-14T22:13:20.5Z") == expected
    with pytest.raises(InvalidArgument):
        parse_timestamp("yesterday")


def test_tail_all_or_a_count() -> None:
    assert tail_param({}) is None
    assert tail_param({"tail": "all"}) is None
    assert tail_param({"tail": "3"}) == 3
    with pytest.raises(InvalidArgument):
        tail_param({"tail": "many"})


def test_logs_need_at_least_one_stream() -> None:
    with pytest.raises(InvalidArgument, match="you must choose at least one stream"):
        log_options({"stdout": "0", "stderr": "False"})


def test_http_bool_spellings_reach_the_backend(swarm_engine: EngineServer) -> None:
    node_id = swarm_engine.backend.node_id
    refused = request(swarm_engine, "POST", "/v1.41/swarm/leave?force=False")
    assert refused.status == 503  # force=False: the last manager may not leave
    bad = request(swarm_engine, "POST", "/v1.41/swarm/leave?force=maybe")
    assert bad.status == 400
    assert json.loads(bad.body)["message"].startswith("invalid value for force")
    left = request(swarm_engine, "POST", "/v1.41/swarm/leave?force=1")
    assert left.status == 200
    assert left.body == b""
    assert "Content-Type" not in left.headers
    assert swarm_engine.backend.swarm is None
    assert node_id not in swarm_engine.backend.nodes


def test_http_filters_in_both_formats(swarm_engine: EngineServer) -> None:
    backend = swarm_engine.backend
    for name in ("frontend", "backend"):
        spec = {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
        swarm_engine.run(backend.service_create(spec, None))
    for filters in ({"name": {"front": True}}, {"name": ["front"]}):
        response = request(swarm_engine, "GET", "/v1.41/services?filters=" + json.dumps(filters))
        assert response.status == 200
        assert [s["Spec"]["Name"] for s in json.loads(response.body)] == ["frontend"]
    unknown = request(swarm_engine, "GET", "/v1.41/services?filters=" + json.dumps({"bogus": ["x"]}))
    assert unknown.status == 400
    assert json.loads(unknown.body) == {"message": "Invalid filter 'bogus'"}
    malformed = request(swarm_engine, "GET", "/v1.41/services?filters={")
    assert malformed.status == 400
