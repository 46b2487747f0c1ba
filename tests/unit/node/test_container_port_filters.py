"""`docker ps --filter publish=… / expose=…` read as dockerd reads them, with its error texts."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.node.container_port_filters import port_filters

BOUND = [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
         {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
EXPOSED = [{"PrivatePort": 81, "Type": "tcp"}]


@pytest.mark.parametrize(("filters", "shown"), [
    ({"publish": ["8080"]}, True),
    ({"publish": ["8080/tcp"]}, True),
    ({"publish": ["8080/udp"]}, False),
    ({"publish": ["8080/TCP"]}, False),  # the protocol is compared as written
    ({"publish": ["8000-8085"]}, True),
    ({"publish": ["80"]}, False),
    ({"expose": ["80"]}, True),
    ({"expose": ["81"]}, True),
    ({"expose": ["80/tcp"]}, True),
    ({"publish": ["0"]}, True),  # dockerd's quirk: an exposed port's PublicPort reads as 0
    ({"publish": ["9000"], "expose": ["81"]}, True),
    ({}, True),
])
def test_what_a_port_filter_keeps(filters: dict[str, list[str]], shown: bool) -> None:
    assert port_filters(filters).keeps(BOUND + EXPOSED) is shown


def test_a_container_without_ports_is_left_out_by_any_port_filter() -> None:
    assert not port_filters({"expose": ["1-65535"]}).keeps([])
    assert port_filters({"name": ["x"]}).keeps([])


@pytest.mark.parametrize(("filters", "message"), [
    ({"publish": ["a"]}, 'error while looking up for publish a: strconv.ParseUint: parsing "a": invalid syntax'),
    ({"publish": ["1:2"]}, "filter for 'publish' should not contain ':': 1:2"),
    ({"expose": ["70000"]}, 'error while looking up for expose 70000: strconv.ParseUint: parsing "70000": value out '
                            "of range"),
    ({"expose": [""]}, "error while looking up for expose : Empty string specified for ports."),
    ({"expose": ["81-80"]}, "error while looking up for expose 81-80: Invalid range specified for the Port: 81-80"),
    ({"publish": ["80-x"]}, 'error while looking up for publish 80-x: strconv.ParseUint: parsing "x": invalid syntax'),
])
def test_a_value_dockerd_cannot_parse_is_refused_with_its_text(filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(errors.Unknown) as refused:
        port_filters(filters)
    assert str(refused.value) == message
