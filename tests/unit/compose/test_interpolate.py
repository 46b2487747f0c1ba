"""Variable interpolation: every form the compose format has, the CLI's error texts, and the casts that
let `replicas: ${N}` validate as a number."""

from __future__ import annotations

import pytest

from shoal.api.errors import InvalidArgument
from shoal.compose.interpolate import TemplateError, interpolate, substitute

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(("template", "expected"), [
    ("$SET", "value"), ("${SET}", "value"), ("pre-${SET}-post", "pre-value-post"), ("$SET-x", "value-x"),
    ("${UNSET}", ""), ("$UNSET", ""),
    ("${UNSET:-default}", "default"), ("${EMPTY:-default}", "default"), ("${SET:-default}", "value"),
    ("${UNSET-default}", "default"), ("${EMPTY-default}", ""), ("${SET-default}", "value"),
    ("${SET:?must be set}", "value"), ("${EMPTY?may be empty}", ""),
    ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("a $$ b", "a $ b"), ("no variables", "no variables"),
    ("${UNSET:-with spaces and $$}", "with spaces and $$"),
])
def test_substitution(template: str, expected: str) -> None:
    assert substitute(template, ENV) == expected


@pytest.mark.parametrize(("template", "message"), [
    ("${UNSET:?must be set}", "required variable UNSET is missing a value: must be set"),
    ("${EMPTY:?must-not-be-empty}", "required variable EMPTY is missing a value: must-not-be-empty"),
    ("${UNSET?}", "required variable UNSET is missing a value: "),
    ("${", "${"), ("$-x", "$-x"), ("${1BAD}", "${1BAD}"),
])
def test_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        substitute(template, ENV)
    assert str(caught.value) == message


def test_errors_name_the_path_as_the_cli() -> None:
    with pytest.raises(InvalidArgument) as caught:
        interpolate({"services": {"web": {"environment": ["A=${NOPE:?set NOPE}"]}}}, {})
    assert str(caught.value) == ('invalid interpolation format for services.web.environment.[]: "required variable '
                                 'NOPE is missing a value: set NOPE"; you may need to escape any $ with another $')


def test_substituted_values_are_cast_where_the_schema_wants_numbers_or_booleans() -> None:
    config = {"services": {"web": {"deploy": {"replicas": "${N}", "update_config": {"max_failure_ratio": "${R}"}},
                                   "ports": [{"target": "${P}", "published": "8080"}], "tty": "${T}",
                                   "read_only": "off", "hostname": "${N}"}},
              "networks": {"net": {"external": "${T}"}}}
    result = interpolate(config, {"N": "3", "R": "0.5", "P": "80", "T": "yes"})
    web = result["services"]["web"]
    assert web["deploy"]["replicas"] == 3
    assert web["deploy"]["update_config"]["max_failure_ratio"] == 0.5
    assert web["ports"] == [{"target": 80, "published": "8080"}]  # untouched strings are not cast
    assert web["tty"] is True
    assert web["read_only"] == "off"  # nothing substituted: left for the schema to judge
    assert web["hostname"] == "3"  # a string field stays a string
    assert result["networks"]["net"]["external"] is True


def test_a_bad_cast_is_an_error() -> None:
    with pytest.raises(InvalidArgument) as caught:
        interpolate({"services": {"web": {"deploy": {"replicas": "${N}"}}}}, {"N": "many"})
    assert str(caught.value).startswith("error while interpolating services.web.deploy.replicas: "
                                        "failed to cast to expected type: ")
