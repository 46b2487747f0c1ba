"""A network create request whose values have the wrong JSON type gets Go's decoding error (a 400), as
dockerd answers it, instead of failing inside shoal (a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api import errors
from shoal.controlapi.networks import network_spec


@pytest.mark.parametrize(("request_body", "message"), [
    ({"IPAM": {"Config": "x"}}, "Go struct field NetworkCreateRequest.IPAM.Config of type []IPAMConfig"),
    ({"Options": [1]}, "cannot unmarshal array into Go struct field NetworkCreateRequest.Options"),
    ({"Labels": "x"}, "Go struct field NetworkCreateRequest.Labels of type map[string]string"),
    ({"Attachable": "yes"}, "Go struct field NetworkCreateRequest.Attachable of type bool"),
])
def test_values_of_the_wrong_type_are_refused_as_go_decodes(request_body: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        network_spec({"Name": "n1", "Driver": "overlay", **request_body})
    assert message in str(caught.value)
