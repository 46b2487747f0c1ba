"""Errors keep their gRPC code across the cluster port, including codes shoal has no class of its own
for (Swarm's Internal, raised when a root cannot be cross-signed), so a call forwarded to the leader
fails with the same text as one served where it was made."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.ca.rotation import Internal
from shoal.rpc import codec


def round_trip(error: errors.ShoalError) -> errors.ShoalError:
    with pytest.raises(errors.ShoalError) as raised:
        codec.decode_response(codec.encode_error(error))
    return raised.value


def test_a_known_category_comes_back_as_itself() -> None:
    back = round_trip(errors.NotFound("service x not found", grpc=True))
    assert type(back) is errors.NotFound and str(back) == "rpc error: code = NotFound desc = service x not found"


def test_an_unlisted_code_keeps_its_text_and_is_still_an_unknown() -> None:
    sent = Internal("unable to generate a cross-signed certificate for root rotation", grpc=True)
    back = round_trip(sent)
    assert isinstance(back, errors.Unknown)
    assert str(back) == str(sent) == ("rpc error: code = Internal desc = unable to generate a cross-signed "
                                      "certificate for root rotation")
