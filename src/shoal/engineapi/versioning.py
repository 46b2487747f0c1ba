"""API version prefixes: `/v1.12` to `/v1.41` and no prefix are served; anything else is refused
with dockerd's messages before the handler runs."""

from __future__ import annotations

from aiohttp import web

from shoal.engineapi.constants import API_VERSION, MIN_API_VERSION
from shoal.engineapi.errors import message_response

VERSION_PATTERN = r"v{api_version:[0-9][0-9.]*}"
"""The path segment aiohttp matches; each route is registered with and without it."""


def _as_tuple(version: str) -> tuple[int, ...]:
    """Components compared as Go's versions package does: missing ones count as 0 (1.41.0 == 1.41)."""
    parts = [int(part) if part.isdigit() else 0 for part in version.split(".")]
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def version_error(requested: str) -> web.Response | None:
    """None when `requested` (from the path) is servable, else dockerd's 400."""
    wanted = _as_tuple(requested)
    if wanted > _as_tuple(API_VERSION):
        return message_response(
            400,
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}",
        )
    if wanted < _as_tuple(MIN_API_VERSION):
        return web.Response(
            status=400,
            text=(
                f"client version {requested} is too old. Minimum supported API version is "
                f"{MIN_API_VERSION}, please upgrade your client to a newer version"
            ),
        )
    return None


def requested_version(request: web.Request) -> str:
    """The version the client speaks: the path's, or ours when the path had none."""
    return request.match_info.get("api_version", API_VERSION)
