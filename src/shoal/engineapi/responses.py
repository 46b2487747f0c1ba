"""Response shapes the Docker daemon uses: Go-encoded JSON, empty 200s, 204s, and streams."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shoal.engineapi import gojson
from shoal.engineapi.constants import JSON_CONTENT_TYPE


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=gojson.encode(value), headers={"Content-Type": JSON_CONTENT_TYPE})


def empty_ok() -> web.Response:
    """200 with Content-Length 0 and no Content-Type (DELETE /services, swarm leave/join/update...)."""
    return web.Response(status=200)


def no_content() -> web.Response:
    return web.Response(status=204)


class BareStreamResponse(web.StreamResponse):
    """A chunked stream sent without any Content-Type, as dockerd sends log streams (aiohttp would
    otherwise add application/octet-stream; the prepare hook in app.py removes it for this class)."""
