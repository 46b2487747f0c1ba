"""The one place where error categories become HTTP statuses and Docker's `{"message": ...}` bodies."""

from __future__ import annotations

import logging

from aiohttp import web

from shoal.api import errors as api_errors
from shoal.engineapi import gojson
from shoal.engineapi.constants import JSON_CONTENT_TYPE

log = logging.getLogger(__name__)

# Checked in order, so subclasses (AlreadyInSwarm is an Unavailable...) resolve by their category.
_STATUS_BY_CATEGORY: tuple[tuple[type[api_errors.ShoalError], int], ...] = (
    (api_errors.NotFound, 404),
    (api_errors.InvalidArgument, 400),
    (api_errors.AlreadyExists, 409),
    (api_errors.Conflict, 409),
    (api_errors.FailedPrecondition, 400),
    (api_errors.Unavailable, 503),
    (api_errors.Forbidden, 403),
    (api_errors.Unauthenticated, 401),
    (api_errors.NotImplementedYet, 501),
    (api_errors.Unknown, 500),
)


def status_for(err: api_errors.ShoalError) -> int:
    for category, status in _STATUS_BY_CATEGORY:
        if isinstance(err, category):
            return status
    return 500


def message_response(status: int, message: str) -> web.Response:
    body = gojson.encode({"message": message})
    return web.Response(status=status, body=body, headers={"Content-Type": JSON_CONTENT_TYPE})


def error_response(err: BaseException) -> web.Response:
    """The response for anything a handler raised; unexpected exceptions are logged, never fatal."""
    if isinstance(err, api_errors.ShoalError):
        return message_response(status_for(err), str(err))
    log.error("engine API handler failed", exc_info=err)
    return message_response(500, str(err) or type(err).__name__)
